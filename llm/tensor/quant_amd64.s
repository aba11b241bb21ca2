#include "textflag.h"

// Q4_K rows: everything per super-block in registers. The eight 6-bit scales and mins are unpacked
// with ggml's word shuffle into the frame (scales at sc-48(SP), mins at sc-40(SP), then widened to int32
// lanes: scales stored at sc-32(SP) for per-sub-block broadcasts); the mins times the activations'
// 32-value sums and the scaled sub-block dots are accumulated as float lanes, reduced once a row.
#define Q4K_ROW_HEAD \
	MOVWLZX (SI), AX \
	VMOVD AX, X1 \
	VCVTPH2PS X1, X1 \
	MOVWLZX 2(SI), AX \
	VMOVD AX, X2 \
	VCVTPH2PS X2, X2 \
	VMOVSS (DX), X3 \
	VMULSS X3, X1, X1 \
	VMULSS X3, X2, X2 \
	VBROADCASTSS X1, Y1 \
	VBROADCASTSS X2, Y2 \
	MOVL 4(SI), R9 \
	MOVL 8(SI), R10 \
	MOVL 12(SI), R11 \
	MOVL R9, AX \
	ANDL $0x3f3f3f3f, AX \
	MOVL AX, sc-48(SP) \
	MOVL R9, AX \
	SHRL $6, AX \
	ANDL $0x03030303, AX \
	SHLL $4, AX \
	MOVL R11, BX \
	ANDL $0x0f0f0f0f, BX \
	ORL BX, AX \
	MOVL AX, sc-44(SP) \
	MOVL R10, AX \
	ANDL $0x3f3f3f3f, AX \
	MOVL AX, sc-40(SP) \
	MOVL R10, AX \
	SHRL $6, AX \
	ANDL $0x03030303, AX \
	SHLL $4, AX \
	MOVL R11, BX \
	SHRL $4, BX \
	ANDL $0x0f0f0f0f, BX \
	ORL BX, AX \
	MOVL AX, sc-36(SP) \
	VPMOVZXBD sc-48(SP), Y6 \
	VPMOVZXBD sc-40(SP), Y7 \
	VMOVDQU Y6, sc-32(SP) \
	VPMULLD (R8), Y7, Y7 \
	VCVTDQ2PS Y7, Y7 \
	VFNMADD231PS Y7, Y2, Y0 \
	VPXOR Y8, Y8, Y8

#define Q4K_ROW_TAIL \
	VCVTDQ2PS Y8, Y8 \
	VFMADD231PS Y8, Y1, Y0 \
	ADDQ $144, SI \
	ADDQ $256, DI \
	ADDQ $4, DX \
	ADDQ $32, R8

#define Q4K_ROW_VNNI(c) \
	VMOVDQU (16+c*32)(SI), Y9 \
	VPAND Y15, Y9, Y10 \
	VPSRLW $4, Y9, Y11 \
	VPAND Y15, Y11, Y11 \
	VPXOR Y4, Y4, Y4 \
	VPXOR Y5, Y5, Y5 \
	VPDPBUSD (c*64)(DI), Y10, Y4 \
	VPDPBUSD (c*64+32)(DI), Y11, Y5 \
	VPBROADCASTD sc-(32-c*8)(SP), Y12 \
	VPBROADCASTD sc-(28-c*8)(SP), Y13 \
	VPMULLD Y12, Y4, Y4 \
	VPMULLD Y13, Y5, Y5 \
	VPADDD Y4, Y8, Y8 \
	VPADDD Y5, Y8, Y8


// Integer dot products of ggml blocks with int8-quantized activations (see quant.go), VNNI forms
// (VPDPBUSD: unsigned bytes times signed bytes summed into int32 lanes, AVX512_VNNI on 256-bit
// registers); the AVX2 forms are in quant_avx2_amd64.s.

// func q8_0DotVNNI(w *byte, x *int8, xd *float32, nb int) float32
// Σ_b f16(w_b.d)·xd[b]·Σ_i w_b.q[i]·x[32b+i] over nb Q8_0 blocks (34 bytes each). VPDPBUSD needs one
// unsigned operand: |w| against x·sign(w) gives the same products. The blocks are added in order
// into one accumulator, as q8_0Dot4VNNI adds them, so a row's result does not depend on whether it
// was computed alone or among four.
TEXT ·q8_0DotVNNI(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ xd+16(FP), DX
	MOVQ nb+24(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y7, Y7, Y7
	CMPQ CX, $2
	JLT  q8v_one

q8v_two:
	MOVWLZX (SI), AX
	MOVWLZX 34(SI), BX
	VMOVD AX, X1
	VMOVD BX, X9
	VCVTPH2PS X1, X1
	VCVTPH2PS X9, X9
	VMULSS (DX), X1, X1
	VMULSS 4(DX), X9, X9
	VBROADCASTSS X1, Y1
	VBROADCASTSS X9, Y9
	VMOVDQU 2(SI), Y2
	VMOVDQU 36(SI), Y10
	VPSIGNB Y2, Y2, Y4
	VPSIGNB Y10, Y10, Y12
	VMOVDQU (DI), Y3
	VPSIGNB Y2, Y3, Y5
	VMOVDQU 32(DI), Y11
	VPSIGNB Y10, Y11, Y13
	VPXOR Y6, Y6, Y6
	VPXOR Y14, Y14, Y14
	VPDPBUSD Y5, Y4, Y6
	VPDPBUSD Y13, Y12, Y14
	VCVTDQ2PS Y6, Y6
	VCVTDQ2PS Y14, Y14
	VFMADD231PS Y6, Y1, Y0
	VFMADD231PS Y14, Y9, Y7
	ADDQ $68, SI
	ADDQ $64, DI
	ADDQ $8, DX
	SUBQ $2, CX
	CMPQ CX, $2
	JGE  q8v_two

q8v_one:
	TESTQ CX, CX
	JZ    q8v_done
	MOVWLZX (SI), AX
	VMOVD AX, X1
	VCVTPH2PS X1, X1
	VMULSS (DX), X1, X1
	VBROADCASTSS X1, Y1
	VMOVDQU 2(SI), Y2
	VPSIGNB Y2, Y2, Y4
	VMOVDQU (DI), Y3
	VPSIGNB Y2, Y3, Y5
	VPXOR Y6, Y6, Y6
	VPDPBUSD Y5, Y4, Y6
	VCVTDQ2PS Y6, Y6
	VFMADD231PS Y6, Y1, Y0

q8v_done:
	VADDPS Y7, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// func q4_0DotVNNI(w *byte, x *int8, xd *float32, nb int) float32
// Σ_b f16(w_b.d)·xd[b]·Σ_i (q_i−8)·x[32b+i] over nb Q4_0 blocks (18 bytes: d, then 16 bytes whose low
// nibbles are values 0-15 and high nibbles 16-31). The −8 is a second VPDPBUSD of 8s against x.
TEXT ·q4_0DotVNNI(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ xd+16(FP), DX
	MOVQ nb+24(FP), CX
	VXORPS Y0, Y0, Y0
	MOVL $0x0F0F0F0F, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x08080808, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14

q40v_loop:
	TESTQ CX, CX
	JZ    q40v_done
	MOVWLZX (SI), AX
	VMOVD AX, X1
	VCVTPH2PS X1, X1
	VMULSS (DX), X1, X1
	VBROADCASTSS X1, Y1
	VMOVDQU 2(SI), X2
	VPSRLW $4, X2, X3
	VINSERTI128 $1, X3, Y2, Y2
	VPAND Y15, Y2, Y2
	VMOVDQU (DI), Y3
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	VPDPBUSD Y3, Y2, Y6
	VPDPBUSD Y3, Y14, Y7
	VPSUBD Y7, Y6, Y6
	VCVTDQ2PS Y6, Y6
	VFMADD231PS Y6, Y1, Y0
	ADDQ $18, SI
	ADDQ $32, DI
	ADDQ $4, DX
	DECQ CX
	JMP  q40v_loop

q40v_done:
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// Lane selectors for Q6_K's scales: 32 values span two 16-value groups, i.e. int32 lanes 0-3 and 4-7
// of a 32-byte product; q6kPerm+32k picks scales 2k, 2k+1 out of eight.
DATA q6kPerm<>+0(SB)/8, $0x0000000000000000
DATA q6kPerm<>+8(SB)/8, $0x0000000000000000
DATA q6kPerm<>+16(SB)/8, $0x0000000100000001
DATA q6kPerm<>+24(SB)/8, $0x0000000100000001
DATA q6kPerm<>+32(SB)/8, $0x0000000200000002
DATA q6kPerm<>+40(SB)/8, $0x0000000200000002
DATA q6kPerm<>+48(SB)/8, $0x0000000300000003
DATA q6kPerm<>+56(SB)/8, $0x0000000300000003
DATA q6kPerm<>+64(SB)/8, $0x0000000400000004
DATA q6kPerm<>+72(SB)/8, $0x0000000400000004
DATA q6kPerm<>+80(SB)/8, $0x0000000500000005
DATA q6kPerm<>+88(SB)/8, $0x0000000500000005
DATA q6kPerm<>+96(SB)/8, $0x0000000600000006
DATA q6kPerm<>+104(SB)/8, $0x0000000600000006
DATA q6kPerm<>+112(SB)/8, $0x0000000700000007
DATA q6kPerm<>+120(SB)/8, $0x0000000700000007
GLOBL q6kPerm<>(SB), RODATA|NOPTR, $128

// func q6kIsumVNNI(b *byte, x *int8) int32
// Σ_g s_g·Σ_{i∈g} (q_i−32)·x_i over one Q6_K super-block b (210 bytes) and its 256 activations.
// Per half (128 values): ql 64 bytes, qh 32 bytes, 8 scales; value l+32k (k = 0..3) is
// (ql[l+32(k&1)] >> 4(k>>1)) & 15 | ((qh[l] >> 2k) & 3) << 4.
TEXT ·q6kIsumVNNI(SB), NOSPLIT, $0-20
	MOVQ b+0(FP), SI
	MOVQ x+8(FP), DI
	MOVL $0x0F0F0F0F, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x30303030, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x20202020, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	VPXOR Y0, Y0, Y0
	LEAQ q6kPerm<>(SB), R8
	MOVQ $2, CX
	LEAQ 192(SI), DX  // scales
	LEAQ 128(SI), BX  // qh

q6v_half:
	VMOVDQU (SI), Y1     // ql[0:32]
	VMOVDQU 32(SI), Y2   // ql[32:64]
	VMOVDQU (BX), Y3     // qh
	VPMOVSXBD (DX), Y12  // this half's 8 scales
	// k = 0: ql0 & 15 | (qh & 3) << 4
	VPAND Y15, Y1, Y4
	VPSLLW $4, Y3, Y5
	VPAND Y14, Y5, Y5
	VPOR Y5, Y4, Y4
	// k = 1: ql1 & 15 | ((qh >> 2) & 3) << 4
	VPAND Y15, Y2, Y6
	VPSLLW $2, Y3, Y7
	VPAND Y14, Y7, Y7
	VPOR Y7, Y6, Y6
	// k = 2: (ql0 >> 4) & 15 | ((qh >> 4) & 3) << 4
	VPSRLW $4, Y1, Y8
	VPAND Y15, Y8, Y8
	VPAND Y14, Y3, Y9
	VPOR Y9, Y8, Y8
	// k = 3: (ql1 >> 4) & 15 | ((qh >> 6) & 3) << 4
	VPSRLW $4, Y2, Y10
	VPAND Y15, Y10, Y10
	VPSRLW $2, Y3, Y11
	VPAND Y14, Y11, Y11
	VPOR Y11, Y10, Y10

#define Q6K_VNNI(Q, k) \
	VMOVDQU (k*32)(DI), Y1 \
	VPXOR Y2, Y2, Y2 \
	VPXOR Y3, Y3, Y3 \
	VPDPBUSD Y1, Q, Y2 \
	VPDPBUSD Y1, Y13, Y3 \
	VPSUBD Y3, Y2, Y2 \
	VMOVDQU (k*32)(R8), Y3 \
	VPERMD Y12, Y3, Y3 \
	VPMULLD Y3, Y2, Y2 \
	VPADDD Y2, Y0, Y0

	Q6K_VNNI(Y4, 0)
	Q6K_VNNI(Y6, 1)
	Q6K_VNNI(Y8, 2)
	Q6K_VNNI(Y10, 3)
	ADDQ $64, SI
	ADDQ $32, BX
	ADDQ $8, DX
	ADDQ $128, DI
	DECQ CX
	JNZ  q6v_half
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPHADDD X0, X0, X0
	VPHADDD X0, X0, X0
	VMOVD X0, AX
	MOVL AX, ret+16(FP)
	VZEROUPPER
	RET

// func q4kRowVNNI(w *byte, x *int8, xd *float32, s32 *int32, nb int) float32
// Σ_b xd[b]·(d_b·Σ_j sc_j·Σ q·x − dmin_b·Σ_j m_j·s32[8b+j]) over nb Q4_K super-blocks.
TEXT ·q4kRowVNNI(SB), NOSPLIT, $48-44
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ xd+16(FP), DX
	MOVQ s32+24(FP), R8
	MOVQ nb+32(FP), CX
	MOVL $0x0F0F0F0F, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	VXORPS Y0, Y0, Y0

q4kv_loop:
	TESTQ CX, CX
	JZ    q4kv_done
	Q4K_ROW_HEAD
	Q4K_ROW_VNNI(0)
	Q4K_ROW_VNNI(1)
	Q4K_ROW_VNNI(2)
	Q4K_ROW_VNNI(3)
	Q4K_ROW_TAIL
	DECQ CX
	JMP  q4kv_loop

q4kv_done:
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VMOVSS X0, ret+40(FP)
	VZEROUPPER
	RET

// func q8_0Dot4VNNI(w *byte, x *int8, xd *float32, nb, xstride int, out *float32)
// q8_0DotVNNI for four activation rows at once (row r at x+r·xstride bytes, its scales at
// xd+r·xstride/32 floats): each weight block is loaded, its magnitudes taken and its scale decoded
// once for the four; out[r] += row r's sum.
TEXT ·q8_0Dot4VNNI(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ xd+16(FP), DX
	MOVQ nb+24(FP), CX
	MOVQ xstride+32(FP), R8
	MOVQ R8, R9
	SHRQ $3, R9          // scale stride in bytes: xstride/32 floats
	LEAQ (DI)(R8*2), R10 // row 2
	LEAQ (DX)(R9*2), R11
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14

// Even blocks are summed into Y0-Y3 and odd ones into Y11-Y14 (one row each), added at the end: two
// independent chains of FMAs instead of one, in the order q8_0RowsVNNI and q8_0DotVNNI use, so a row's
// product is the same bits whichever kernel computes it.
#define Q84_ROW(XP, SP_, ACC) \
	VMOVDQU XP, Y7 \
	VPSIGNB Y5, Y7, Y7 \
	VPXOR Y8, Y8, Y8 \
	VPDPBUSD Y7, Y6, Y8 \
	VCVTDQ2PS Y8, Y8 \
	VMULSS SP_, X4, X9 \
	VBROADCASTSS X9, Y9 \
	VFMADD231PS Y8, Y9, ACC

// Q84_BLOCK adds one block to the four rows' sums A0-A3: its scale at WO(SI) and quants at WQ(SI), the
// rows' activations XO bytes and their scales DO bytes from the current ones.
#define Q84_BLOCK(WO, WQ, XO, DO, A0, A1, A2, A3) \
	MOVWLZX WO(SI), AX \
	VMOVD AX, X4 \
	VCVTPH2PS X4, X4 \
	VMOVDQU WQ(SI), Y5 \
	VPSIGNB Y5, Y5, Y6 \
	Q84_ROW(XO(DI), DO(DX), A0) \
	Q84_ROW(XO(DI)(R8*1), DO(DX)(R9*1), A1) \
	Q84_ROW(XO(R10), DO(R11), A2) \
	Q84_ROW(XO(R10)(R8*1), DO(R11)(R9*1), A3)

q84_loop:
	CMPQ CX, $2
	JLT  q84_tail
	Q84_BLOCK(0, 2, 0, 0, Y0, Y1, Y2, Y3)
	Q84_BLOCK(34, 36, 32, 4, Y11, Y12, Y13, Y14)
	ADDQ $68, SI
	ADDQ $64, DI
	ADDQ $64, R10
	ADDQ $8, DX
	ADDQ $8, R11
	SUBQ $2, CX
	JMP  q84_loop

q84_tail:
	TESTQ CX, CX
	JZ    q84_done
	Q84_BLOCK(0, 2, 0, 0, Y0, Y1, Y2, Y3)

q84_done:
	VADDPS Y11, Y0, Y0
	VADDPS Y12, Y1, Y1
	VADDPS Y13, Y2, Y2
	VADDPS Y14, Y3, Y3
	MOVQ out+40(FP), AX

#define Q84_STORE(ACC, XACC, OFF) \
	VEXTRACTF128 $1, ACC, X10 \
	VADDPS X10, XACC, XACC \
	VHADDPS XACC, XACC, XACC \
	VHADDPS XACC, XACC, XACC \
	VADDSS OFF(AX), XACC, XACC \
	VMOVSS XACC, OFF(AX)

	Q84_STORE(Y0, X0, 0)
	Q84_STORE(Y1, X1, 4)
	Q84_STORE(Y2, X2, 8)
	Q84_STORE(Y3, X3, 12)
	VZEROUPPER
	RET

// func q4kRow4VNNI(w *byte, x *int8, xd *float32, s32 *int32, nb, xstride int, out *float32)
// q4kRowVNNI for four activation rows (row r at x+r·xstride bytes; its scales and 32-value sums at
// xd+r·xstride/256 and s32+r·xstride/32): a super-block's scales, mins and nibbles are unpacked once
// (nibbles into the frame) for the four rows. Per row the float operations are q4kRowVNNI's, in its
// order, so a row's result is the same either way; out[r] += row r's sum.
TEXT ·q4kRow4VNNI(SB), NOSPLIT, $304-56
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ xd+16(FP), DX
	MOVQ s32+24(FP), R8
	MOVQ nb+32(FP), CX
	MOVQ xstride+40(FP), R12      // activation row stride in bytes
	MOVQ R12, R13
	SHRQ $6, R13                  // xd stride in bytes: xstride/256 floats
	MOVL $0x0F0F0F0F, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

q4k4_loop:
	TESTQ CX, CX
	JZ    q4k4_done
	MOVWLZX (SI), AX
	VMOVD AX, X13
	VCVTPH2PS X13, X13            // d
	MOVWLZX 2(SI), AX
	VMOVD AX, X14
	VCVTPH2PS X14, X14            // dmin
	MOVL 4(SI), R9
	MOVL 8(SI), R10
	MOVL 12(SI), R11
	MOVL R9, AX
	ANDL $0x3f3f3f3f, AX
	MOVL AX, k-304(SP)
	MOVL R9, AX
	SHRL $6, AX
	ANDL $0x03030303, AX
	SHLL $4, AX
	MOVL R11, BX
	ANDL $0x0f0f0f0f, BX
	ORL BX, AX
	MOVL AX, k-300(SP)
	MOVL R10, AX
	ANDL $0x3f3f3f3f, AX
	MOVL AX, k-296(SP)
	MOVL R10, AX
	SHRL $6, AX
	ANDL $0x03030303, AX
	SHLL $4, AX
	MOVL R11, BX
	SHRL $4, BX
	ANDL $0x0f0f0f0f, BX
	ORL BX, AX
	MOVL AX, k-292(SP)
	VPMOVZXBD k-304(SP), Y6
	VMOVDQU Y6, k-288(SP)         // scales as int32
	VPMOVZXBD k-296(SP), Y7       // mins as int32

#define Q4K4_NIB(c) \
	VMOVDQU (16+c*32)(SI), Y9 \
	VPAND Y15, Y9, Y10 \
	VPSRLW $4, Y9, Y11 \
	VPAND Y15, Y11, Y11 \
	VMOVDQU Y10, k-(256-c*64)(SP) \
	VMOVDQU Y11, k-(224-c*64)(SP)

	Q4K4_NIB(0)
	Q4K4_NIB(1)
	Q4K4_NIB(2)
	Q4K4_NIB(3)

#define Q4K4_SUB(j) \
	VMOVDQU k-(256-j*32)(SP), Y9 \
	VPXOR Y4, Y4, Y4 \
	VPDPBUSD (j*32)(BX), Y9, Y4 \
	VPBROADCASTD k-(288-j*4)(SP), Y12 \
	VPMULLD Y12, Y4, Y4 \
	VPADDD Y4, Y8, Y8

// row r: BX = its activations, R9 = its scale, R10 = its sums; ACC its float lanes.
#define Q4K4_ROW(ACC) \
	VMOVSS (R9), X5 \
	VMULSS X5, X13, X10 \
	VMULSS X5, X14, X11 \
	VBROADCASTSS X10, Y10 \
	VBROADCASTSS X11, Y11 \
	VPMULLD (R10), Y7, Y5 \
	VCVTDQ2PS Y5, Y5 \
	VFNMADD231PS Y5, Y11, ACC \
	VPXOR Y8, Y8, Y8 \
	Q4K4_SUB(0) \
	Q4K4_SUB(1) \
	Q4K4_SUB(2) \
	Q4K4_SUB(3) \
	Q4K4_SUB(4) \
	Q4K4_SUB(5) \
	Q4K4_SUB(6) \
	Q4K4_SUB(7) \
	VCVTDQ2PS Y8, Y8 \
	VFMADD231PS Y8, Y10, ACC \
	ADDQ R12, BX \
	ADDQ R13, R9 \
	LEAQ (R10)(R13*8), R10

	MOVQ DI, BX
	MOVQ DX, R9
	MOVQ R8, R10
	Q4K4_ROW(Y0)
	Q4K4_ROW(Y1)
	Q4K4_ROW(Y2)
	Q4K4_ROW(Y3)
	ADDQ $144, SI
	ADDQ $256, DI
	ADDQ $4, DX
	ADDQ $32, R8
	DECQ CX
	JMP  q4k4_loop

q4k4_done:
	MOVQ out+48(FP), AX

#define Q4K4_STORE(ACC, XACC, OFF) \
	VEXTRACTF128 $1, ACC, X10 \
	VADDPS X10, XACC, XACC \
	VHADDPS XACC, XACC, XACC \
	VHADDPS XACC, XACC, XACC \
	VADDSS OFF(AX), XACC, XACC \
	VMOVSS XACC, OFF(AX)

	Q4K4_STORE(Y0, X0, 0)
	Q4K4_STORE(Y1, X1, 4)
	Q4K4_STORE(Y2, X2, 8)
	Q4K4_STORE(Y3, X3, 12)
	VZEROUPPER
	RET

// Q4_K rows on 512-bit registers (AVX512BW and AVX512_VNNI): ggml's scheme of int16 products scaled by
// the sub-block scales with one multiply-add (VPMADDUBSW, then VPDPWSSD against the scale broadcast
// by VPSHUFB), two 32-byte nibble chunks a register, the scales unpacked in registers. The int32 lanes
// hold exactly what q4kRowVNNI's do (lane k: Σ_j sc_j·Σ of bytes 4k..4k+3 of sub-block j, the even
// sub-blocks in the low half and the odd ones in the high half, folded before conversion), so every
// row comes out bit-identical to the one- and four-row kernels.
DATA q4kScaleShuf<>+0(SB)/8, $0x0100010001000100
DATA q4kScaleShuf<>+8(SB)/8, $0x0100010001000100
DATA q4kScaleShuf<>+16(SB)/8, $0x0100010001000100
DATA q4kScaleShuf<>+24(SB)/8, $0x0100010001000100
DATA q4kScaleShuf<>+32(SB)/8, $0x0302030203020302
DATA q4kScaleShuf<>+40(SB)/8, $0x0302030203020302
DATA q4kScaleShuf<>+48(SB)/8, $0x0302030203020302
DATA q4kScaleShuf<>+56(SB)/8, $0x0302030203020302
DATA q4kScaleShuf<>+64(SB)/8, $0x0504050405040504
DATA q4kScaleShuf<>+72(SB)/8, $0x0504050405040504
DATA q4kScaleShuf<>+80(SB)/8, $0x0504050405040504
DATA q4kScaleShuf<>+88(SB)/8, $0x0504050405040504
DATA q4kScaleShuf<>+96(SB)/8, $0x0706070607060706
DATA q4kScaleShuf<>+104(SB)/8, $0x0706070607060706
DATA q4kScaleShuf<>+112(SB)/8, $0x0706070607060706
DATA q4kScaleShuf<>+120(SB)/8, $0x0706070607060706
DATA q4kScaleShuf<>+128(SB)/8, $0x0908090809080908
DATA q4kScaleShuf<>+136(SB)/8, $0x0908090809080908
DATA q4kScaleShuf<>+144(SB)/8, $0x0908090809080908
DATA q4kScaleShuf<>+152(SB)/8, $0x0908090809080908
DATA q4kScaleShuf<>+160(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q4kScaleShuf<>+168(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q4kScaleShuf<>+176(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q4kScaleShuf<>+184(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q4kScaleShuf<>+192(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q4kScaleShuf<>+200(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q4kScaleShuf<>+208(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q4kScaleShuf<>+216(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q4kScaleShuf<>+224(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA q4kScaleShuf<>+232(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA q4kScaleShuf<>+240(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA q4kScaleShuf<>+248(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL q4kScaleShuf<>(SB), RODATA|NOPTR, $256

// func q4kRowsVNNI512(w *byte, x *int8, xd *float32, s32 *int32, nb, n int, out *float32)
// out[i] = the Q4_K row i's product with the activation row (as q4kRowVNNI) for n consecutive rows.
TEXT ·q4kRowsVNNI512(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ n+40(FP), R12
	MOVQ out+48(FP), R13
	MOVL $0x0F0F0F0F, AX
	VPBROADCASTD AX, Z15
	LEAQ q4kScaleShuf<>(SB), AX
	VMOVDQU64 (AX), Z20
	VMOVDQU64 64(AX), Z21
	VMOVDQU64 128(AX), Z22
	VMOVDQU64 192(AX), Z23
	TESTQ R12, R12
	JZ    q4kz_done

q4kz_row:
	MOVQ x+8(FP), DI
	MOVQ xd+16(FP), DX
	MOVQ s32+24(FP), R8
	MOVQ nb+32(FP), CX
	VXORPS Y0, Y0, Y0

q4kz_block:
	MOVWLZX (SI), AX
	VMOVD AX, X1
	VCVTPH2PS X1, X1
	MOVWLZX 2(SI), AX
	VMOVD AX, X2
	VCVTPH2PS X2, X2
	VMOVSS (DX), X3
	VMULSS X3, X1, X1
	VMULSS X3, X2, X2
	VBROADCASTSS X1, Y1
	VBROADCASTSS X2, Y2
	MOVL 4(SI), R9
	MOVL 8(SI), R10
	MOVL 12(SI), R11
	MOVL R9, AX
	ANDL $0x3f3f3f3f, AX
	VMOVD AX, X6
	MOVL R9, AX
	SHRL $6, AX
	ANDL $0x03030303, AX
	SHLL $4, AX
	MOVL R11, BX
	ANDL $0x0f0f0f0f, BX
	ORL BX, AX
	VPINSRD $1, AX, X6, X6
	MOVL R10, AX
	ANDL $0x3f3f3f3f, AX
	VPINSRD $2, AX, X6, X6
	MOVL R10, AX
	SHRL $6, AX
	ANDL $0x03030303, AX
	SHLL $4, AX
	MOVL R11, BX
	SHRL $4, BX
	ANDL $0x0f0f0f0f, BX
	ORL BX, AX
	VPINSRD $3, AX, X6, X6
	VPSRLDQ $8, X6, X7
	VPMOVZXBD X7, Y7
	VPMULLD (R8), Y7, Y7
	VCVTDQ2PS Y7, Y7
	VFNMADD231PS Y7, Y2, Y0
	VPMOVZXBW X6, X6
	VSHUFI64X2 $0, Z6, Z6, Z6
	VPXORD Z8, Z8, Z8

#define Q4K_PAIR_512(cc, S0, S1) \
	VMOVDQU64 (16+cc*64)(SI), Z9 \
	VPANDD Z15, Z9, Z10 \
	VPSRLW $4, Z9, Z11 \
	VPANDD Z15, Z11, Z11 \
	VSHUFI64X2 $0x44, Z11, Z10, Z12 \
	VSHUFI64X2 $0xEE, Z11, Z10, Z13 \
	VPMADDUBSW (cc*128)(DI), Z12, Z12 \
	VPMADDUBSW (cc*128+64)(DI), Z13, Z13 \
	VPSHUFB S0, Z6, Z16 \
	VPSHUFB S1, Z6, Z17 \
	VPDPWSSD Z16, Z12, Z8 \
	VPDPWSSD Z17, Z13, Z8

	Q4K_PAIR_512(0, Z20, Z21)
	Q4K_PAIR_512(1, Z22, Z23)
	VEXTRACTI64X4 $1, Z8, Y9
	VPADDD Y9, Y8, Y8
	VCVTDQ2PS Y8, Y8
	VFMADD231PS Y8, Y1, Y0
	ADDQ $144, SI
	ADDQ $256, DI
	ADDQ $4, DX
	ADDQ $32, R8
	DECQ CX
	JNZ  q4kz_block

	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VXORPS X1, X1, X1
	VADDSS X0, X1, X0
	VMOVSS X0, (R13)
	ADDQ $4, R13
	DECQ R12
	JNZ  q4kz_row

q4kz_done:
	VZEROUPPER
	RET

// Q6_K rows on 512-bit registers: a register holds 64 six-bit values (the low nibbles of 64 ql bytes
// with their qh pairs, or the high ones), VPMADDUBSW takes them against the activations, VPDPWSSD
// against each 16-value group's scale (VPERMW broadcasts one a 128-bit lane), and the −32 offset comes
// off once a super-block as 32·Σ_g s_g·Σ x_g from the activations' 16-value sums. The integer sum is
// exact, and is scaled and added as dotQ6_K does, so a row is bit-identical to dotQ6_K's.
DATA q6kScaleIdx<>+0(SB)/8, $0x0000000000000000
DATA q6kScaleIdx<>+8(SB)/8, $0x0000000000000000
DATA q6kScaleIdx<>+16(SB)/8, $0x0001000100010001
DATA q6kScaleIdx<>+24(SB)/8, $0x0001000100010001
DATA q6kScaleIdx<>+32(SB)/8, $0x0002000200020002
DATA q6kScaleIdx<>+40(SB)/8, $0x0002000200020002
DATA q6kScaleIdx<>+48(SB)/8, $0x0003000300030003
DATA q6kScaleIdx<>+56(SB)/8, $0x0003000300030003
DATA q6kScaleIdx<>+64(SB)/8, $0x0004000400040004
DATA q6kScaleIdx<>+72(SB)/8, $0x0004000400040004
DATA q6kScaleIdx<>+80(SB)/8, $0x0005000500050005
DATA q6kScaleIdx<>+88(SB)/8, $0x0005000500050005
DATA q6kScaleIdx<>+96(SB)/8, $0x0006000600060006
DATA q6kScaleIdx<>+104(SB)/8, $0x0006000600060006
DATA q6kScaleIdx<>+112(SB)/8, $0x0007000700070007
DATA q6kScaleIdx<>+120(SB)/8, $0x0007000700070007
DATA q6kScaleIdx<>+128(SB)/8, $0x0008000800080008
DATA q6kScaleIdx<>+136(SB)/8, $0x0008000800080008
DATA q6kScaleIdx<>+144(SB)/8, $0x0009000900090009
DATA q6kScaleIdx<>+152(SB)/8, $0x0009000900090009
DATA q6kScaleIdx<>+160(SB)/8, $0x000a000a000a000a
DATA q6kScaleIdx<>+168(SB)/8, $0x000a000a000a000a
DATA q6kScaleIdx<>+176(SB)/8, $0x000b000b000b000b
DATA q6kScaleIdx<>+184(SB)/8, $0x000b000b000b000b
DATA q6kScaleIdx<>+192(SB)/8, $0x000c000c000c000c
DATA q6kScaleIdx<>+200(SB)/8, $0x000c000c000c000c
DATA q6kScaleIdx<>+208(SB)/8, $0x000d000d000d000d
DATA q6kScaleIdx<>+216(SB)/8, $0x000d000d000d000d
DATA q6kScaleIdx<>+224(SB)/8, $0x000e000e000e000e
DATA q6kScaleIdx<>+232(SB)/8, $0x000e000e000e000e
DATA q6kScaleIdx<>+240(SB)/8, $0x000f000f000f000f
DATA q6kScaleIdx<>+248(SB)/8, $0x000f000f000f000f
GLOBL q6kScaleIdx<>(SB), RODATA|NOPTR, $256

// func q6kRowsVNNI512(w *byte, x *int8, xd *float32, sums *int16, nb, n int, out *float32)
// out[i] = Σ_b xd[b]·d_b·Σ_g s_g·Σ (q−32)·x over the nb super-blocks of the Q6_K row i, n consecutive rows.
TEXT ·q6kRowsVNNI512(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ n+40(FP), R12
	MOVQ out+48(FP), R13
	MOVL $0x0F0F0F0F, AX
	VPBROADCASTD AX, Z15
	MOVL $0x30303030, AX
	VPBROADCASTD AX, Z14
	LEAQ q6kScaleIdx<>(SB), AX
	VMOVDQU64 (AX), Z20
	VMOVDQU64 64(AX), Z21
	VMOVDQU64 128(AX), Z22
	VMOVDQU64 192(AX), Z23
	TESTQ R12, R12
	JZ    q6kz_done

q6kz_row:
	MOVQ x+8(FP), DI
	MOVQ xd+16(FP), DX
	MOVQ sums+24(FP), R8
	MOVQ nb+32(FP), CX
	VXORPS X0, X0, X0

q6kz_block:
	VPMOVSXBW 192(SI), Y7
	VPMADDWD (R8), Y7, Y6
	VPERMW Z7, Z20, Z16
	VPERMW Z7, Z21, Z17
	VPERMW Z7, Z22, Z18
	VPERMW Z7, Z23, Z19
	VPXORD Z8, Z8, Z8

#define Q6K_HALF_512(n, SL, SH) \
	VMOVDQU64 (n*64)(SI), Z1 \
	VMOVDQU (128+n*32)(SI), Y3 \
	VPSRLW $2, Y3, Y4 \
	VINSERTI64X4 $1, Y4, Z3, Z3 \
	VPSLLW $4, Z3, Z4 \
	VPANDD Z14, Z4, Z4 \
	VPANDD Z15, Z1, Z5 \
	VPORD Z4, Z5, Z5 \
	VPANDD Z14, Z3, Z3 \
	VPSRLW $4, Z1, Z1 \
	VPANDD Z15, Z1, Z1 \
	VPORD Z3, Z1, Z1 \
	VPMADDUBSW (n*128)(DI), Z5, Z5 \
	VPMADDUBSW (n*128+64)(DI), Z1, Z1 \
	VPDPWSSD SL, Z5, Z8 \
	VPDPWSSD SH, Z1, Z8

	Q6K_HALF_512(0, Z16, Z17)
	Q6K_HALF_512(1, Z18, Z19)
	VEXTRACTI64X4 $1, Z8, Y9
	VPADDD Y9, Y8, Y8
	VPSLLD $5, Y6, Y6
	VPSUBD Y6, Y8, Y8
	VEXTRACTI128 $1, Y8, X9
	VPADDD X9, X8, X8
	VPSHUFD $0x4E, X8, X9
	VPADDD X9, X8, X8
	VPSHUFD $0xB1, X8, X9
	VPADDD X9, X8, X8
	VCVTDQ2PS X8, X8
	MOVWLZX 208(SI), AX
	VMOVD AX, X1
	VCVTPH2PS X1, X1
	VMOVSS (DX), X2
	VMULSS X1, X2, X2
	VMULSS X8, X2, X2
	VADDSS X2, X0, X0
	ADDQ $210, SI
	ADDQ $256, DI
	ADDQ $4, DX
	ADDQ $32, R8
	DECQ CX
	JNZ  q6kz_block

	VMOVSS X0, (R13)
	ADDQ $4, R13
	DECQ R12
	JNZ  q6kz_row

q6kz_done:
	VZEROUPPER
	RET

// func quantActsAVX512(x *float32, nb, blk int, qs *int8, d *float32, sums *int16) bool
// quantizeActs' loop for nb blocks of blk values (a multiple of 16): d = amax/127, q = round-to-even
// of x·(1/d) (VCVTPS2DQ under the default rounding mode), the 16-value sums; a zero block gets zeros.
// False when some x is a NaN (the portable loop then redoes the matrix; VMAXPS would drop the NaN).
TEXT ·quantActsAVX512(SB), NOSPLIT, $0-49
	MOVQ x+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ blk+16(FP), BX
	SHRQ $4, BX
	MOVQ qs+24(FP), DI
	MOVQ d+32(FP), DX
	MOVQ sums+40(FP), R8
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z31
	MOVL $0x42fe0000, AX // 127
	VMOVD AX, X30
	MOVL $0x3f800000, AX // 1
	VMOVD AX, X29
	KXORW K2, K2, K2
	VPXORD Z28, Z28, Z28
	TESTQ CX, CX
	JZ    qa_done

qa_block:
	VXORPS Z0, Z0, Z0
	MOVQ BX, R9
	MOVQ SI, R10

qa_amax:
	VMOVUPS (R10), Z1
	VCMPPS $3, Z1, Z1, K1
	KORW K1, K2, K2
	VANDPS Z31, Z1, Z1
	VMAXPS Z1, Z0, Z0
	ADDQ $64, R10
	DECQ R9
	JNZ  qa_amax
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4E, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xB1, X0, X1
	VMAXPS X1, X0, X0
	VDIVSS X30, X0, X2
	VMOVSS X2, (DX)
	MOVQ BX, R9
	VUCOMISS X28, X2
	JNE  qa_scale
	JP   qa_scale

qa_zero:
	VMOVDQU32 X28, (DI)
	MOVW $0, (R8)
	ADDQ $64, SI
	ADDQ $16, DI
	ADDQ $2, R8
	DECQ R9
	JNZ  qa_zero
	JMP  qa_next

qa_scale:
	VDIVSS X2, X29, X3
	VBROADCASTSS X3, Z3

qa_group:
	VMULPS (SI), Z3, Z4
	VCVTPS2DQ Z4, Z4
	VPMOVDB Z4, (DI)
	VEXTRACTI64X4 $1, Z4, Y5
	VPADDD Y5, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0x4E, X4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0xB1, X4, X5
	VPADDD X5, X4, X4
	VMOVD X4, AX
	MOVW AX, (R8)
	ADDQ $64, SI
	ADDQ $16, DI
	ADDQ $2, R8
	DECQ R9
	JNZ  qa_group

qa_next:
	ADDQ $4, DX
	DECQ CX
	JNZ  qa_block

qa_done:
	KMOVW K2, AX
	TESTL AX, AX
	SETEQ ret+48(FP)
	VZEROUPPER
	RET

// func quantActsAVX2(x *float32, nb, blk int, qs *int8, d *float32, sums *int16) bool
// quantActsAVX512 on 8-float registers (blk a multiple of 32): the same divisions, products and
// round-to-even conversions, so the same bytes. 32 values a step: four registers of int32 packed to
// words, then bytes (VPACKSSDW and VPACKSSWB interleave the 128-bit halves; VPERMD puts them back in
// order), the sums of each 16 from the int32 lanes.
TEXT ·quantActsAVX2(SB), NOSPLIT, $0-49
	MOVQ x+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ blk+16(FP), BX
	SHRQ $5, BX
	MOVQ qs+24(FP), DI
	MOVQ d+32(FP), DX
	MOVQ sums+40(FP), R8
	MOVL $0x7fffffff, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x42fe0000, AX // 127
	VMOVD AX, X14
	MOVL $0x3f800000, AX // 1
	VMOVD AX, X13
	VMOVDQU qaPerm<>(SB), Y12
	VXORPS Y11, Y11, Y11 // NaN lanes seen
	VXORPS Y10, Y10, Y10
	TESTQ CX, CX
	JZ    qa2_done

qa2_block:
	VXORPS Y0, Y0, Y0
	MOVQ BX, R9
	MOVQ SI, R10

qa2_amax:
	VMOVUPS (R10), Y1
	VMOVUPS 32(R10), Y2
	VMOVUPS 64(R10), Y3
	VMOVUPS 96(R10), Y4
	VCMPPS $3, Y1, Y1, Y5
	VCMPPS $3, Y2, Y2, Y6
	VORPS Y5, Y11, Y11
	VORPS Y6, Y11, Y11
	VCMPPS $3, Y3, Y3, Y5
	VCMPPS $3, Y4, Y4, Y6
	VORPS Y5, Y11, Y11
	VORPS Y6, Y11, Y11
	VANDPS Y15, Y1, Y1
	VANDPS Y15, Y2, Y2
	VANDPS Y15, Y3, Y3
	VANDPS Y15, Y4, Y4
	VMAXPS Y1, Y0, Y0
	VMAXPS Y2, Y0, Y0
	VMAXPS Y3, Y0, Y0
	VMAXPS Y4, Y0, Y0
	ADDQ $128, R10
	DECQ R9
	JNZ  qa2_amax
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4E, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xB1, X0, X1
	VMAXPS X1, X0, X0
	VDIVSS X14, X0, X2
	VMOVSS X2, (DX)
	MOVQ BX, R9
	VUCOMISS X10, X2
	JNE  qa2_scale
	JP   qa2_scale

qa2_zero:
	VMOVDQU Y10, (DI)
	MOVL $0, (R8)
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, R8
	DECQ R9
	JNZ  qa2_zero
	JMP  qa2_next

qa2_scale:
	VDIVSS X2, X13, X3
	VBROADCASTSS X3, Y3

qa2_group:
	VMULPS (SI), Y3, Y4
	VMULPS 32(SI), Y3, Y5
	VMULPS 64(SI), Y3, Y6
	VMULPS 96(SI), Y3, Y7
	VCVTPS2DQ Y4, Y4
	VCVTPS2DQ Y5, Y5
	VCVTPS2DQ Y6, Y6
	VCVTPS2DQ Y7, Y7
	VPACKSSDW Y5, Y4, Y8 // words 0-3 8-11 | 4-7 12-15
	VPACKSSDW Y7, Y6, Y9 // words 16-19 24-27 | 20-23 28-31
	VPACKSSWB Y9, Y8, Y8 // dwords 0 2 4 6 | 1 3 5 7 (four bytes each)
	VPERMD Y8, Y12, Y8
	VMOVDQU Y8, (DI)
	VPADDD Y5, Y4, Y4    // the sum of values 0-15
	VPADDD Y7, Y6, Y6    // of 16-31
	VPHADDD Y6, Y4, Y4   // pairs: 0 0 16 16 | 0 0 16 16
	VPHADDD Y4, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPADDD X5, X4, X4    // dword 0: Σ 0-15, dword 1: Σ 16-31
	VMOVD X4, AX
	MOVW AX, (R8)
	VPEXTRD $1, X4, AX
	MOVW AX, 2(R8)
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, R8
	DECQ R9
	JNZ  qa2_group

qa2_next:
	ADDQ $4, DX
	DECQ CX
	JNZ  qa2_block

qa2_done:
	VMOVMSKPS Y11, AX
	TESTL AX, AX
	SETEQ ret+48(FP)
	VZEROUPPER
	RET

DATA qaPerm<>+0(SB)/4, $0
DATA qaPerm<>+4(SB)/4, $4
DATA qaPerm<>+8(SB)/4, $1
DATA qaPerm<>+12(SB)/4, $5
DATA qaPerm<>+16(SB)/4, $2
DATA qaPerm<>+20(SB)/4, $6
DATA qaPerm<>+24(SB)/4, $3
DATA qaPerm<>+28(SB)/4, $7
GLOBL qaPerm<>(SB), RODATA|NOPTR, $32

// func q4kRowsRVNNI512(w *byte, x *int8, xd *float32, s32 *int32, nb, n int, out *float32, R, ostride int)
// q4kRowsVNNI512 for R ≤ 16 activation rows (batched decoding): each weight super-block is unpacked
// once and taken against every row, whose float accumulators wait in the frame; out[r·ostride/4 + i]
// for weight row i is what q4kRowsVNNI512 gives activation row r alone (the same operations in the
// same order).
TEXT ·q4kRowsRVNNI512(SB), NOSPLIT, $544-72
	MOVQ w+0(FP), SI
	MOVQ out+48(FP), R13
	MOVQ nb+32(FP), AX
	SHLQ $8, AX
	MOVQ AX, 512(SP) // activation row stride
	SHRQ $6, AX
	MOVQ AX, 520(SP) // scale row stride
	SHLQ $3, AX
	MOVQ AX, 528(SP) // 32-value sums row stride
	MOVQ n+40(FP), AX
	MOVQ AX, 536(SP)
	MOVL $0x0F0F0F0F, AX
	VPBROADCASTD AX, Z15
	LEAQ q4kScaleShuf<>(SB), AX
	VMOVDQU64 (AX), Z20
	VMOVDQU64 64(AX), Z21
	VMOVDQU64 128(AX), Z22
	VMOVDQU64 192(AX), Z23
	CMPQ 536(SP), $0
	JEQ  q4kr_done

q4kr_row:
	MOVQ x+8(FP), R10
	MOVQ xd+16(FP), DX
	MOVQ s32+24(FP), R8
	MOVQ nb+32(FP), CX
	VXORPS Y0, Y0, Y0
	MOVQ R+56(FP), BX
	LEAQ 0(SP), DI

q4kr_zero:
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	DECQ BX
	JNZ  q4kr_zero

q4kr_block:
	MOVWLZX (SI), AX
	VMOVD AX, X4
	VCVTPH2PS X4, X4
	MOVWLZX 2(SI), AX
	VMOVD AX, X5
	VCVTPH2PS X5, X5
	MOVL 4(SI), R9
	MOVL 8(SI), R11
	MOVL 12(SI), R12
	MOVL R9, AX
	ANDL $0x3f3f3f3f, AX
	VMOVD AX, X6
	MOVL R9, AX
	SHRL $6, AX
	ANDL $0x03030303, AX
	SHLL $4, AX
	MOVL R12, BX
	ANDL $0x0f0f0f0f, BX
	ORL BX, AX
	VPINSRD $1, AX, X6, X6
	MOVL R11, AX
	ANDL $0x3f3f3f3f, AX
	VPINSRD $2, AX, X6, X6
	MOVL R11, AX
	SHRL $6, AX
	ANDL $0x03030303, AX
	SHLL $4, AX
	MOVL R12, BX
	SHRL $4, BX
	ANDL $0x0f0f0f0f, BX
	ORL BX, AX
	VPINSRD $3, AX, X6, X6
	VPSRLDQ $8, X6, X7
	VPMOVZXBD X7, Y7
	VPMOVZXBW X6, X6
	VSHUFI64X2 $0, Z6, Z6, Z6
	VMOVDQU64 16(SI), Z9
	VPANDD Z15, Z9, Z10
	VPSRLW $4, Z9, Z11
	VPANDD Z15, Z11, Z11
	VSHUFI64X2 $0x44, Z11, Z10, Z12
	VSHUFI64X2 $0xEE, Z11, Z10, Z13
	VMOVDQU64 80(SI), Z9
	VPANDD Z15, Z9, Z10
	VPSRLW $4, Z9, Z11
	VPANDD Z15, Z11, Z11
	VSHUFI64X2 $0x44, Z11, Z10, Z24
	VSHUFI64X2 $0xEE, Z11, Z10, Z25
	VPSHUFB Z20, Z6, Z16
	VPSHUFB Z21, Z6, Z17
	VPSHUFB Z22, Z6, Z18
	VPSHUFB Z23, Z6, Z19
	MOVQ R10, R11
	MOVQ DX, R9
	MOVQ R8, R12
	MOVQ R+56(FP), BX
	LEAQ 0(SP), DI

q4kr_act:
	VMOVSS (R9), X3
	VMULSS X3, X4, X1
	VMULSS X3, X5, X2
	VBROADCASTSS X1, Y1
	VBROADCASTSS X2, Y2
	VMOVUPS (DI), Y0
	VPMULLD (R12), Y7, Y3
	VCVTDQ2PS Y3, Y3
	VFNMADD231PS Y3, Y2, Y0
	VPXORD Z8, Z8, Z8
	VPMADDUBSW (R11), Z12, Z26
	VPMADDUBSW 64(R11), Z13, Z27
	VPMADDUBSW 128(R11), Z24, Z28
	VPMADDUBSW 192(R11), Z25, Z29
	VPDPWSSD Z16, Z26, Z8
	VPDPWSSD Z17, Z27, Z8
	VPDPWSSD Z18, Z28, Z8
	VPDPWSSD Z19, Z29, Z8
	VEXTRACTI64X4 $1, Z8, Y9
	VPADDD Y9, Y8, Y8
	VCVTDQ2PS Y8, Y8
	VFMADD231PS Y8, Y1, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ 512(SP), R11
	ADDQ 520(SP), R9
	ADDQ 528(SP), R12
	DECQ BX
	JNZ  q4kr_act

	ADDQ $144, SI
	ADDQ $256, R10
	ADDQ $4, DX
	ADDQ $32, R8
	DECQ CX
	JNZ  q4kr_block

	MOVQ R+56(FP), BX
	LEAQ 0(SP), DI
	MOVQ R13, R11

q4kr_out:
	VMOVUPS (DI), Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VXORPS X1, X1, X1
	VADDSS X0, X1, X0
	VMOVSS X0, (R11)
	ADDQ $32, DI
	ADDQ ostride+64(FP), R11
	DECQ BX
	JNZ  q4kr_out

	ADDQ $4, R13
	DECQ 536(SP)
	JNZ  q4kr_row

q4kr_done:
	VZEROUPPER
	RET

// func q6kRowsRVNNI512(w *byte, x *int8, xd *float32, sums *int16, nb, n int, out *float32, R, ostride int)
// q6kRowsVNNI512 for R ≤ 16 activation rows: each super-block is unpacked once for every row, whose
// float sums wait in the frame; each row's result is what q6kRowsVNNI512 gives it alone.
TEXT ·q6kRowsRVNNI512(SB), NOSPLIT, $96-72
	MOVQ w+0(FP), SI
	MOVQ out+48(FP), R13
	MOVQ nb+32(FP), AX
	SHLQ $8, AX
	MOVQ AX, 64(SP) // activation row stride
	SHRQ $6, AX
	MOVQ AX, 72(SP) // scale row stride
	SHLQ $3, AX
	MOVQ AX, 80(SP) // 16-value sums row stride
	MOVQ n+40(FP), AX
	MOVQ AX, 88(SP)
	MOVL $0x0F0F0F0F, AX
	VPBROADCASTD AX, Z15
	MOVL $0x30303030, AX
	VPBROADCASTD AX, Z14
	LEAQ q6kScaleIdx<>(SB), AX
	VMOVDQU64 (AX), Z20
	VMOVDQU64 64(AX), Z21
	VMOVDQU64 128(AX), Z22
	VMOVDQU64 192(AX), Z23
	CMPQ 88(SP), $0
	JEQ  q6kr_done

q6kr_row:
	MOVQ x+8(FP), R10
	MOVQ xd+16(FP), DX
	MOVQ sums+24(FP), R8
	MOVQ nb+32(FP), CX
	VXORPS Z0, Z0, Z0
	VMOVUPS Z0, 0(SP)

q6kr_block:
	VPMOVSXBW 192(SI), Y7
	VPERMW Z7, Z20, Z16
	VPERMW Z7, Z21, Z17
	VPERMW Z7, Z22, Z18
	VPERMW Z7, Z23, Z19

#define Q6K_UNPACK_512(n, QL, QH) \
	VMOVDQU64 (n*64)(SI), QH \
	VMOVDQU (128+n*32)(SI), Y3 \
	VPSRLW $2, Y3, Y4 \
	VINSERTI64X4 $1, Y4, Z3, Z3 \
	VPSLLW $4, Z3, Z4 \
	VPANDD Z14, Z4, Z4 \
	VPANDD Z15, QH, QL \
	VPORD Z4, QL, QL \
	VPANDD Z14, Z3, Z3 \
	VPSRLW $4, QH, QH \
	VPANDD Z15, QH, QH \
	VPORD Z3, QH, QH

	Q6K_UNPACK_512(0, Z24, Z25)
	Q6K_UNPACK_512(1, Z26, Z27)
	MOVWLZX 208(SI), AX
	VMOVD AX, X5
	VCVTPH2PS X5, X5
	MOVQ R10, R11
	MOVQ DX, R9
	MOVQ R8, R12
	MOVQ R+56(FP), BX
	LEAQ 0(SP), DI

q6kr_act:
	VPMADDWD (R12), Y7, Y6
	VPXORD Z8, Z8, Z8
	VPMADDUBSW (R11), Z24, Z28
	VPMADDUBSW 64(R11), Z25, Z29
	VPMADDUBSW 128(R11), Z26, Z30
	VPMADDUBSW 192(R11), Z27, Z31
	VPDPWSSD Z16, Z28, Z8
	VPDPWSSD Z17, Z29, Z8
	VPDPWSSD Z18, Z30, Z8
	VPDPWSSD Z19, Z31, Z8
	VEXTRACTI64X4 $1, Z8, Y9
	VPADDD Y9, Y8, Y8
	VPSLLD $5, Y6, Y6
	VPSUBD Y6, Y8, Y8
	VEXTRACTI128 $1, Y8, X9
	VPADDD X9, X8, X8
	VPSHUFD $0x4E, X8, X9
	VPADDD X9, X8, X8
	VPSHUFD $0xB1, X8, X9
	VPADDD X9, X8, X8
	VCVTDQ2PS X8, X8
	VMOVSS (R9), X2
	VMULSS X5, X2, X2
	VMULSS X8, X2, X2
	VMOVSS (DI), X0
	VADDSS X2, X0, X0
	VMOVSS X0, (DI)
	ADDQ $4, DI
	ADDQ 64(SP), R11
	ADDQ 72(SP), R9
	ADDQ 80(SP), R12
	DECQ BX
	JNZ  q6kr_act

	ADDQ $210, SI
	ADDQ $256, R10
	ADDQ $4, DX
	ADDQ $32, R8
	DECQ CX
	JNZ  q6kr_block

	MOVQ R+56(FP), BX
	LEAQ 0(SP), DI
	MOVQ R13, R11

q6kr_out:
	MOVL (DI), AX
	MOVL AX, (R11)
	ADDQ $4, DI
	ADDQ ostride+64(FP), R11
	DECQ BX
	JNZ  q6kr_out

	ADDQ $4, R13
	DECQ 88(SP)
	JNZ  q6kr_row

q6kr_done:
	VZEROUPPER
	RET

// func q8_0RowsVNNI(w *byte, x *int8, xd *float32, nb, n int, out *float32)
// out[i] = q8_0DotVNNI of the Q8_0 row i (n consecutive rows) with the activation row: the same
// operations in the same order, without a call per row.
TEXT ·q8_0RowsVNNI(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ n+32(FP), R12
	MOVQ out+40(FP), R13
	TESTQ R12, R12
	JZ    q8r_done

q8r_row:
	MOVQ x+8(FP), DI
	MOVQ xd+16(FP), DX
	MOVQ nb+24(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y7, Y7, Y7
	CMPQ CX, $2
	JLT  q8r_one

q8r_two:
	MOVWLZX (SI), AX
	MOVWLZX 34(SI), BX
	VMOVD AX, X1
	VMOVD BX, X9
	VCVTPH2PS X1, X1
	VCVTPH2PS X9, X9
	VMULSS (DX), X1, X1
	VMULSS 4(DX), X9, X9
	VBROADCASTSS X1, Y1
	VBROADCASTSS X9, Y9
	VMOVDQU 2(SI), Y2
	VMOVDQU 36(SI), Y10
	VPSIGNB Y2, Y2, Y4
	VPSIGNB Y10, Y10, Y12
	VMOVDQU (DI), Y3
	VPSIGNB Y2, Y3, Y5
	VMOVDQU 32(DI), Y11
	VPSIGNB Y10, Y11, Y13
	VPXOR Y6, Y6, Y6
	VPXOR Y14, Y14, Y14
	VPDPBUSD Y5, Y4, Y6
	VPDPBUSD Y13, Y12, Y14
	VCVTDQ2PS Y6, Y6
	VCVTDQ2PS Y14, Y14
	VFMADD231PS Y6, Y1, Y0
	VFMADD231PS Y14, Y9, Y7
	ADDQ $68, SI
	ADDQ $64, DI
	ADDQ $8, DX
	SUBQ $2, CX
	CMPQ CX, $2
	JGE  q8r_two

q8r_one:
	TESTQ CX, CX
	JZ    q8r_end
	MOVWLZX (SI), AX
	VMOVD AX, X1
	VCVTPH2PS X1, X1
	VMULSS (DX), X1, X1
	VBROADCASTSS X1, Y1
	VMOVDQU 2(SI), Y2
	VPSIGNB Y2, Y2, Y4
	VMOVDQU (DI), Y3
	VPSIGNB Y2, Y3, Y5
	VPXOR Y6, Y6, Y6
	VPDPBUSD Y5, Y4, Y6
	VCVTDQ2PS Y6, Y6
	VFMADD231PS Y6, Y1, Y0
	ADDQ $34, SI

q8r_end:
	VADDPS Y7, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VXORPS X1, X1, X1
	VADDSS X0, X1, X0
	VMOVSS X0, (R13)
	ADDQ $4, R13
	DECQ R12
	JNZ  q8r_row

q8r_done:
	VZEROUPPER
	RET
