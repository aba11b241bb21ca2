// Quantized blocks widened to float32 with AVX2: the operations of llm/format/gguf's dequantizers,
// in their order (products and differences rounded one by one, no fused multiply-add), so the same
// floats. A long prompt on a quantized model widens each layer this way before its matrix products.

#include "textflag.h"

// UNPACK4(op, Yb, Xb) widens the 32 bytes of Yb into Y7, Y10, Y12, Y13 (8 each, in order) with op
// (VPMOVZXBD or VPMOVSXBD), as float32. Uses X11.
#define UNPACK4(op, Yb, Xb) \
	op Xb, Y7 \
	VPSRLDQ $8, Xb, X11 \
	op X11, Y10 \
	VEXTRACTI128 $1, Yb, X11 \
	op X11, Y12 \
	VPSRLDQ $8, X11, X11 \
	op X11, Y13 \
	VCVTDQ2PS Y7, Y7 \
	VCVTDQ2PS Y10, Y10 \
	VCVTDQ2PS Y12, Y12 \
	VCVTDQ2PS Y13, Y13

// STORE4(off) stores Y7, Y10, Y12, Y13 at off(DI).
#define STORE4(off) \
	VMOVUPS Y7, off(DI) \
	VMOVUPS Y10, (off+32)(DI) \
	VMOVUPS Y12, (off+64)(DI) \
	VMOVUPS Y13, (off+96)(DI)

// SCALE4(s) multiplies the four by s (q·s: the same product as gguf's s·q).
#define SCALE4(s) \
	VMULPS s, Y7, Y7 \
	VMULPS s, Y10, Y10 \
	VMULPS s, Y12, Y12 \
	VMULPS s, Y13, Y13

// SUB4(m) subtracts m from the four.
#define SUB4(m) \
	VSUBPS m, Y7, Y7 \
	VSUBPS m, Y10, Y10 \
	VSUBPS m, Y12, Y12 \
	VSUBPS m, Y13, Y13

// F16(off, Y) broadcasts the float16 at off(SI) into Y as float32.
#define F16(off, Y, X) \
	MOVWLZX off(SI), AX \
	VMOVD AX, X \
	VCVTPH2PS X, X \
	VBROADCASTSS X, Y

// func widenQ8_0AVX2(dst *float32, src *byte, nb int)
// x = float32(q)·d per 32-value block.
TEXT ·widenQ8_0AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ nb+16(FP), CX
	TESTQ CX, CX
	JEQ q8wdone
q8wloop:
	F16(0, Y0, X0)
	VMOVDQU 2(SI), Y2
	UNPACK4(VPMOVSXBD, Y2, X2)
	SCALE4(Y0)
	STORE4(0)
	ADDQ $34, SI
	ADDQ $128, DI
	DECQ CX
	JNE q8wloop
q8wdone:
	VZEROUPPER
	RET

// func widenQ4_KAVX2(dst *float32, src *byte, nb int)
// x = d·sc_j·q − dmin·m_j for sub-block j (d·sc_j and dmin·m_j rounded first, as gguf does); the eight
// of each are kept in the frame for broadcasts.
TEXT ·widenQ4_KAVX2(SB), NOSPLIT, $64-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ nb+16(FP), CX
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	TESTQ CX, CX
	JEQ q4wdone
q4wloop:
	F16(0, Y0, X0)
	F16(2, Y1, X1)
	MOVL 4(SI), AX
	ANDL $0x3f3f3f3f, AX
	VMOVD AX, X8
	MOVL 4(SI), AX
	SHRL $6, AX
	ANDL $0x03030303, AX
	SHLL $4, AX
	MOVL 12(SI), BX
	ANDL $0x0f0f0f0f, BX
	ORL BX, AX
	VPINSRD $1, AX, X8, X8 // scales 0-7
	MOVL 8(SI), AX
	ANDL $0x3f3f3f3f, AX
	VMOVD AX, X9
	MOVL 8(SI), AX
	SHRL $6, AX
	ANDL $0x03030303, AX
	SHLL $4, AX
	MOVL 12(SI), BX
	SHRL $4, BX
	ANDL $0x0f0f0f0f, BX
	ORL BX, AX
	VPINSRD $1, AX, X9, X9 // mins 0-7
	VPMOVZXBD X8, Y8
	VCVTDQ2PS Y8, Y8
	VMULPS Y8, Y0, Y8      // d·sc
	VPMOVZXBD X9, Y9
	VCVTDQ2PS Y9, Y9
	VMULPS Y9, Y1, Y9      // dmin·m
	VMOVUPS Y8, ds-64(SP)
	VMOVUPS Y9, ms-32(SP)

#define Q4W_CHUNK(c) \
	VMOVDQU (16+32*c)(SI), Y2 \
	VPSRLW $4, Y2, Y3 \
	VPAND Y15, Y2, Y2 \
	VPAND Y15, Y3, Y3 \
	VBROADCASTSS ds-(64-8*c)(SP), Y5 \
	VBROADCASTSS ms-(32-8*c)(SP), Y6 \
	UNPACK4(VPMOVZXBD, Y2, X2) \
	SCALE4(Y5) \
	SUB4(Y6) \
	STORE4(256*c) \
	VBROADCASTSS ds-(60-8*c)(SP), Y5 \
	VBROADCASTSS ms-(28-8*c)(SP), Y6 \
	UNPACK4(VPMOVZXBD, Y3, X3) \
	SCALE4(Y5) \
	SUB4(Y6) \
	STORE4(256*c+128)

	Q4W_CHUNK(0)
	Q4W_CHUNK(1)
	Q4W_CHUNK(2)
	Q4W_CHUNK(3)
	ADDQ $144, SI
	ADDQ $1024, DI
	DECQ CX
	JNE q4wloop
q4wdone:
	VZEROUPPER
	RET

// func widenQ6_KAVX2(dst *float32, src *byte, nb int)
// x = d·s_g·(q − 32) for 16-value group g (d·s_g rounded first); the sixteen d·s_g are kept in the
// frame for broadcasts.
TEXT ·widenQ6_KAVX2(SB), NOSPLIT, $64-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ nb+16(FP), CX
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x30303030, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x20202020, AX
	VMOVD AX, X9
	VPBROADCASTD X9, Y9
	TESTQ CX, CX
	JEQ q6wdone
q6wloop:
	F16(208, Y0, X0)
	VPMOVSXBD 192(SI), Y8
	VCVTDQ2PS Y8, Y8
	VMULPS Y8, Y0, Y8
	VMOVUPS Y8, ds-64(SP)
	VPMOVSXBD 200(SI), Y8
	VCVTDQ2PS Y8, Y8
	VMULPS Y8, Y0, Y8
	VMOVUPS Y8, ds-32(SP)

// Q6W_PART(h, j, src, shift) widens values 32j..32j+31 of half h: Y4 holds their low four bits (in
// place), the two high bits come from QH (Y1) shifted by shift into bits 4-5.
#define Q6W_PART(h, j) \
	VPOR Y5, Y4, Y4 \
	VPSUBB Y9, Y4, Y4 \
	VBROADCASTSS ds-(64-32*h-8*j)(SP), Y5 \
	UNPACK4(VPMOVSXBD, Y4, X4) \
	VMULPS Y5, Y7, Y7 \
	VMULPS Y5, Y10, Y10 \
	VBROADCASTSS ds-(60-32*h-8*j)(SP), Y5 \
	VMULPS Y5, Y12, Y12 \
	VMULPS Y5, Y13, Y13 \
	STORE4(512*h+128*j)

#define Q6W_HALF(h) \
	VMOVDQU (64*h)(SI), Y2 \
	VMOVDQU (64*h+32)(SI), Y3 \
	VMOVDQU (128+32*h)(SI), Y1 \
	VPAND Y15, Y2, Y4 \
	VPSLLW $4, Y1, Y5 \
	VPAND Y14, Y5, Y5 \
	Q6W_PART(h, 0) \
	VPAND Y15, Y3, Y4 \
	VPSLLW $2, Y1, Y5 \
	VPAND Y14, Y5, Y5 \
	Q6W_PART(h, 1) \
	VPSRLW $4, Y2, Y4 \
	VPAND Y15, Y4, Y4 \
	VPAND Y14, Y1, Y5 \
	Q6W_PART(h, 2) \
	VPSRLW $4, Y3, Y4 \
	VPAND Y15, Y4, Y4 \
	VPSRLW $2, Y1, Y5 \
	VPAND Y14, Y5, Y5 \
	Q6W_PART(h, 3)

	Q6W_HALF(0)
	Q6W_HALF(1)
	ADDQ $210, SI
	ADDQ $1024, DI
	DECQ CX
	JNE q6wloop
q6wdone:
	VZEROUPPER
	RET
