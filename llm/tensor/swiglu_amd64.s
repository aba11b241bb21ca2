//go:build amd64 && !purego

// SwiGLU forward and backward with AVX-512, 16 floats at a time. σ(g) = 1/(1 + e^−g), with e^x by
// Cephes' expf: x clamped to [−87, 88] (σ saturates long before), n = round(x·log2 e),
// r = x − n·ln 2 in two parts, e^r = 1 + r + r²·P(r), then scaled by 2ⁿ (VSCALEFPS).

#include "textflag.h"

#include "expf_amd64.h"

// SIGMOID sets Z1 = σ(Z0), using Z2-Z4.
#define SIGMOID \
	VSUBPS Z0, Z28, Z1 /* x = −g */ \
	EXP \
	VADDPS Z25, Z3, Z3 /* 1 + e^−g */ \
	VDIVPS Z3, Z25, Z1 /* σ */

// func swigluAVX512(out, gate, up *float32, n int)
TEXT ·swigluAVX512(SB), NOSPLIT, $0-32
	MOVQ out+0(FP), DI
	MOVQ gate+8(FP), SI
	MOVQ up+16(FP), DX
	MOVQ n+24(FP), CX
	EXPCONSTS
	SHRQ $4, CX
	JEQ fwddone
fwdloop:
	VMOVUPS (SI), Z0
	SIGMOID
	VMULPS Z0, Z1, Z5    // silu = g·σ
	VMULPS (DX), Z5, Z5  // ·up
	VMOVUPS Z5, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	DECQ CX
	JNE fwdloop
fwddone:
	VZEROUPPER
	RET

// func swigluBackwardAVX512(dgate, dup, dout, gate, up *float32, n int)
TEXT ·swigluBackwardAVX512(SB), NOSPLIT, $0-48
	MOVQ dgate+0(FP), DI
	MOVQ dup+8(FP), R8
	MOVQ dout+16(FP), R9
	MOVQ gate+24(FP), SI
	MOVQ up+32(FP), DX
	MOVQ n+40(FP), CX
	EXPCONSTS
	SHRQ $4, CX
	JEQ bwddone
bwdloop:
	VMOVUPS (SI), Z0
	SIGMOID
	VMOVUPS (R9), Z6     // dout
	VMULPS Z0, Z1, Z5    // silu
	VMULPS Z6, Z5, Z7    // dup = dout·silu
	VMOVUPS Z7, (R8)
	VSUBPS Z1, Z25, Z8   // 1 − σ
	VMULPS Z0, Z8, Z8    // g·(1 − σ)
	VADDPS Z25, Z8, Z8   // 1 + g·(1 − σ)
	VMULPS Z1, Z8, Z8    // σ·(…)
	VMULPS (DX), Z6, Z9  // dout·up
	VMULPS Z9, Z8, Z8
	VMOVUPS Z8, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	ADDQ $64, R8
	ADDQ $64, R9
	DECQ CX
	JNE bwdloop
bwddone:
	VZEROUPPER
	RET

// The AVX2 forms, the same operations on 8-float registers: Y11 = 1, Y15 = 0.

// SIGMOID2 sets Y1 = σ(Y0), using Y2-Y4 and Y10.
#define SIGMOID2 \
	VSUBPS Y0, Y15, Y1 \
	EXP2 \
	VADDPS Y11, Y3, Y3 \
	VDIVPS Y3, Y11, Y1

// func swigluAVX2(out, gate, up *float32, n int)
TEXT ·swigluAVX2(SB), NOSPLIT, $0-32
	MOVQ out+0(FP), DI
	MOVQ gate+8(FP), SI
	MOVQ up+16(FP), DX
	MOVQ n+24(FP), CX
	VBROADCASTSS expconst<>+36(SB), Y11
	VXORPS Y15, Y15, Y15
	SHRQ $3, CX
	JEQ fwd2done
fwd2loop:
	VMOVUPS (SI), Y0
	SIGMOID2
	VMULPS Y0, Y1, Y5    // silu = g·σ
	VMULPS (DX), Y5, Y5  // ·up
	VMOVUPS Y5, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ CX
	JNE fwd2loop
fwd2done:
	VZEROUPPER
	RET

// func swigluBackwardAVX2(dgate, dup, dout, gate, up *float32, n int)
TEXT ·swigluBackwardAVX2(SB), NOSPLIT, $0-48
	MOVQ dgate+0(FP), DI
	MOVQ dup+8(FP), R8
	MOVQ dout+16(FP), R9
	MOVQ gate+24(FP), SI
	MOVQ up+32(FP), DX
	MOVQ n+40(FP), CX
	VBROADCASTSS expconst<>+36(SB), Y11
	VXORPS Y15, Y15, Y15
	SHRQ $3, CX
	JEQ bwd2done
bwd2loop:
	VMOVUPS (SI), Y0
	SIGMOID2
	VMOVUPS (R9), Y6     // dout
	VMULPS Y0, Y1, Y5    // silu
	VMULPS Y6, Y5, Y7    // dup = dout·silu
	VMOVUPS Y7, (R8)
	VSUBPS Y1, Y11, Y8   // 1 − σ
	VMULPS Y0, Y8, Y8    // g·(1 − σ)
	VADDPS Y11, Y8, Y8   // 1 + g·(1 − σ)
	VMULPS Y1, Y8, Y8    // σ·(…)
	VMULPS (DX), Y6, Y9  // dout·up
	VMULPS Y9, Y8, Y8
	VMOVUPS Y8, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ CX
	JNE bwd2loop
bwd2done:
	VZEROUPPER
	RET
