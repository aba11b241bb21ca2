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
