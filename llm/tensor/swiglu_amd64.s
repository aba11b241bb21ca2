//go:build amd64 && !purego

// SwiGLU forward and backward with AVX-512, 16 floats at a time. σ(g) = 1/(1 + e^−g), with e^x by
// Cephes' expf: x clamped to [−87, 88] (σ saturates long before), n = round(x·log2 e),
// r = x − n·ln 2 in two parts, e^r = 1 + r + r²·P(r), then scaled by 2ⁿ (VSCALEFPS).

#include "textflag.h"

DATA sigconst<>+0(SB)/4, $0x3fb8aa3b  // log2 e
DATA sigconst<>+4(SB)/4, $0x3f318000  // ln2 high part, 0.693359375
DATA sigconst<>+8(SB)/4, $0xb95e8083  // ln2 low part, -2.12194440e-4
DATA sigconst<>+12(SB)/4, $0x39506967 // 1.9875691500e-4
DATA sigconst<>+16(SB)/4, $0x3ab743ce // 1.3981999507e-3
DATA sigconst<>+20(SB)/4, $0x3c088908 // 8.3334519073e-3
DATA sigconst<>+24(SB)/4, $0x3d2aa9c1 // 4.1665795894e-2
DATA sigconst<>+28(SB)/4, $0x3e2aaaaa // 1.6666665459e-1
DATA sigconst<>+32(SB)/4, $0x3f000000 // 0.5
DATA sigconst<>+36(SB)/4, $0x3f800000 // 1
DATA sigconst<>+40(SB)/4, $0xc2ae0000 // -87
DATA sigconst<>+44(SB)/4, $0x42b00000 // 88
GLOBL sigconst<>(SB), RODATA|NOPTR, $48

#define SIGCONSTS \
	VBROADCASTSS sigconst<>+0(SB), Z16 \
	VBROADCASTSS sigconst<>+4(SB), Z17 \
	VBROADCASTSS sigconst<>+8(SB), Z18 \
	VBROADCASTSS sigconst<>+12(SB), Z19 \
	VBROADCASTSS sigconst<>+16(SB), Z20 \
	VBROADCASTSS sigconst<>+20(SB), Z21 \
	VBROADCASTSS sigconst<>+24(SB), Z22 \
	VBROADCASTSS sigconst<>+28(SB), Z23 \
	VBROADCASTSS sigconst<>+32(SB), Z24 \
	VBROADCASTSS sigconst<>+36(SB), Z25 \
	VBROADCASTSS sigconst<>+40(SB), Z26 \
	VBROADCASTSS sigconst<>+44(SB), Z27 \
	VXORPS Z28, Z28, Z28

// SIGMOID sets Z1 = σ(Z0), using Z2-Z4.
#define SIGMOID \
	VSUBPS Z0, Z28, Z1 /* x = −g */ \
	VMAXPS Z26, Z1, Z1 \
	VMINPS Z27, Z1, Z1 \
	VMULPS Z16, Z1, Z2 \
	VRNDSCALEPS $0, Z2, Z2 /* n */ \
	VFNMADD231PS Z17, Z2, Z1 /* r = x − n·ln2hi */ \
	VFNMADD231PS Z18, Z2, Z1 /* r −= n·ln2lo */ \
	VMOVAPS Z19, Z3 \
	VFMADD213PS Z20, Z1, Z3 \
	VFMADD213PS Z21, Z1, Z3 \
	VFMADD213PS Z22, Z1, Z3 \
	VFMADD213PS Z23, Z1, Z3 \
	VFMADD213PS Z24, Z1, Z3 \
	VMULPS Z1, Z1, Z4 \
	VFMADD213PS Z1, Z4, Z3 /* P·r² + r */ \
	VADDPS Z25, Z3, Z3 /* e^r */ \
	VSCALEFPS Z2, Z3, Z3 /* e^x = e^r·2ⁿ */ \
	VADDPS Z25, Z3, Z3 /* 1 + e^−g */ \
	VDIVPS Z3, Z25, Z1 /* σ */

// func swigluAVX512(out, gate, up *float32, n int)
TEXT ·swigluAVX512(SB), NOSPLIT, $0-32
	MOVQ out+0(FP), DI
	MOVQ gate+8(FP), SI
	MOVQ up+16(FP), DX
	MOVQ n+24(FP), CX
	SIGCONSTS
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
	SIGCONSTS
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
