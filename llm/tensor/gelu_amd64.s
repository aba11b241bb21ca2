//go:build amd64 && !purego

// GELU forward and backward with AVX-512, 16 floats at a time, in both of the forms checkpoints use:
//
//   exact: gelu(x) = ½·x·(1 + erf(x/√2)), gelu'(x) = ½·(1 + erf(x/√2)) + x·φ(x), φ(x) = e^(−x²/2)/√(2π)
//   tanh:  gelu(x) = x·σ(2u), u = √(2/π)·(x + 0.044715·x³) (½·(1 + tanh u) is σ(2u)),
//          gelu'(x) = σ(2u) + x·σ(2u)·(1 − σ(2u))·2·√(2/π)·(1 + 3·0.044715·x²)
//
// erf(y) for y clamped to [−4, 4] (erf is ±1 in float32 beyond) is the odd/even rational function
// y·P(y²)/Q(y²) of Eigen's and XLA's float erf (a few ulp); e^x is Cephes' expf as in swiglu_amd64.s.

#include "textflag.h"

DATA geluconst<>+0(SB)/4, $0x3fb8aa3b  // log2 e
DATA geluconst<>+4(SB)/4, $0x3f318000  // ln2 high part
DATA geluconst<>+8(SB)/4, $0xb95e8083  // ln2 low part
DATA geluconst<>+12(SB)/4, $0x39506967 // expf polynomial
DATA geluconst<>+16(SB)/4, $0x3ab743ce
DATA geluconst<>+20(SB)/4, $0x3c088908
DATA geluconst<>+24(SB)/4, $0x3d2aa9c1
DATA geluconst<>+28(SB)/4, $0x3e2aaaaa
DATA geluconst<>+32(SB)/4, $0x3f000000 // 0.5
DATA geluconst<>+36(SB)/4, $0x3f800000 // 1
DATA geluconst<>+40(SB)/4, $0xc2ae0000 // -87
DATA geluconst<>+44(SB)/4, $0x42b00000 // 88
DATA geluconst<>+48(SB)/4, $0x3f3504f3 // 1/√2
DATA geluconst<>+52(SB)/4, $0x40800000 // 4
DATA geluconst<>+56(SB)/4, $0xc0800000 // -4
DATA geluconst<>+60(SB)/4, $0x3ecc422a // 1/√(2π) = 0.3989422804
DATA geluconst<>+64(SB)/4, $0x3f4c422a // √(2/π) = 0.7978845608
DATA geluconst<>+68(SB)/4, $0x3d372713 // 0.044715
DATA geluconst<>+72(SB)/4, $0x3e095d4f // 3·0.044715 = 0.134145
// erf numerator, odd: α1 … α13
DATA geluconst<>+76(SB)/4, $0xbc83dbd4  // α1 -1.60960333262415e-02
DATA geluconst<>+80(SB)/4, $0xbb41a1f6  // α3 -2.95459980854025e-03
DATA geluconst<>+84(SB)/4, $0xba40ac63  // α5 -7.34990630326855e-04
DATA geluconst<>+88(SB)/4, $0xb86ec2d2  // α7 -5.69250639462346e-05
DATA geluconst<>+92(SB)/4, $0xb60cff51  // α9 -2.10102402082508e-06
DATA geluconst<>+96(SB)/4, $0x32edffee  // α11 2.77068142495902e-08
DATA geluconst<>+100(SB)/4, $0xaf95df0b // α13 -2.72614225801306e-10
// erf denominator, even: β0 … β8
DATA geluconst<>+104(SB)/4, $0xbc69b6a7 // β0 -1.42647390514189e-02
DATA geluconst<>+108(SB)/4, $0xbbf19bf8 // β2 -7.37332916720468e-03
DATA geluconst<>+112(SB)/4, $0xbadc924e // β4 -1.68282697438203e-03
DATA geluconst<>+116(SB)/4, $0xb95fbd29 // β6 -2.13374055278905e-04
DATA geluconst<>+120(SB)/4, $0xb77460cd // β8 -1.45660718464996e-05
GLOBL geluconst<>(SB), RODATA|NOPTR, $124

#define CONSTS \
	VBROADCASTSS geluconst<>+0(SB), Z16 \
	VBROADCASTSS geluconst<>+4(SB), Z17 \
	VBROADCASTSS geluconst<>+8(SB), Z18 \
	VBROADCASTSS geluconst<>+12(SB), Z19 \
	VBROADCASTSS geluconst<>+16(SB), Z20 \
	VBROADCASTSS geluconst<>+20(SB), Z21 \
	VBROADCASTSS geluconst<>+24(SB), Z22 \
	VBROADCASTSS geluconst<>+28(SB), Z23 \
	VBROADCASTSS geluconst<>+32(SB), Z24 \
	VBROADCASTSS geluconst<>+36(SB), Z25 \
	VBROADCASTSS geluconst<>+40(SB), Z26 \
	VBROADCASTSS geluconst<>+44(SB), Z27 \
	VXORPS Z28, Z28, Z28

// EXP sets Z3 = e^Z1 (Z1 is clobbered), using Z2 and Z4.
#define EXP \
	VMAXPS Z26, Z1, Z1 \
	VMINPS Z27, Z1, Z1 \
	VMULPS Z16, Z1, Z2 \
	VRNDSCALEPS $0, Z2, Z2 \
	VFNMADD231PS Z17, Z2, Z1 \
	VFNMADD231PS Z18, Z2, Z1 \
	VMOVAPS Z19, Z3 \
	VFMADD213PS Z20, Z1, Z3 \
	VFMADD213PS Z21, Z1, Z3 \
	VFMADD213PS Z22, Z1, Z3 \
	VFMADD213PS Z23, Z1, Z3 \
	VFMADD213PS Z24, Z1, Z3 \
	VMULPS Z1, Z1, Z4 \
	VFMADD213PS Z1, Z4, Z3 \
	VADDPS Z25, Z3, Z3 \
	VSCALEFPS Z2, Z3, Z3

// SIGMOID2U sets Z5 = σ(2u) for x in Z0 (tanh form), using Z1-Z4 and Z31.
#define SIGMOID2U \
	VMULPS Z0, Z0, Z5 \
	VBROADCASTSS geluconst<>+68(SB), Z31 \
	VFMADD213PS Z25, Z31, Z5 /* 1 + 0.044715·x² */ \
	VMULPS Z0, Z5, Z5 \
	VBROADCASTSS geluconst<>+64(SB), Z31 \
	VMULPS Z31, Z5, Z5 /* u */ \
	VADDPS Z5, Z5, Z5 /* 2u */ \
	VSUBPS Z5, Z28, Z1 /* −2u */ \
	EXP \
	VADDPS Z25, Z3, Z3 \
	VDIVPS Z3, Z25, Z5

// HORNER sets acc = acc·r + c.
#define HORNER(c, r, acc) VBROADCASTSS c, Z31; VFMADD213PS Z31, r, acc

// ERF sets Z5 = erf(Z0/√2), using Z6, Z7, Z31.
#define ERF \
	VBROADCASTSS geluconst<>+48(SB), Z31 \
	VMULPS Z31, Z0, Z6 \
	VBROADCASTSS geluconst<>+52(SB), Z31 \
	VMINPS Z31, Z6, Z6 \
	VBROADCASTSS geluconst<>+56(SB), Z31 \
	VMAXPS Z31, Z6, Z6 /* y */ \
	VMULPS Z6, Z6, Z7 /* y² */ \
	VBROADCASTSS geluconst<>+100(SB), Z5 \
	HORNER(geluconst<>+96(SB), Z7, Z5) \
	HORNER(geluconst<>+92(SB), Z7, Z5) \
	HORNER(geluconst<>+88(SB), Z7, Z5) \
	HORNER(geluconst<>+84(SB), Z7, Z5) \
	HORNER(geluconst<>+80(SB), Z7, Z5) \
	HORNER(geluconst<>+76(SB), Z7, Z5) \
	VMULPS Z6, Z5, Z5 /* y·P(y²) */ \
	VBROADCASTSS geluconst<>+120(SB), Z6 \
	HORNER(geluconst<>+116(SB), Z7, Z6) \
	HORNER(geluconst<>+112(SB), Z7, Z6) \
	HORNER(geluconst<>+108(SB), Z7, Z6) \
	HORNER(geluconst<>+104(SB), Z7, Z6) \
	VDIVPS Z6, Z5, Z5

// func geluErfAVX512(out, inp *float32, n int)
TEXT ·geluErfAVX512(SB), NOSPLIT, $0-24
	MOVQ out+0(FP), DI
	MOVQ inp+8(FP), SI
	MOVQ n+16(FP), CX
	CONSTS
	SHRQ $4, CX
	JEQ erfdone
erfloop:
	VMOVUPS (SI), Z0
	ERF
	VMULPS Z24, Z0, Z8   // ½x
	VFMADD213PS Z8, Z8, Z5 // ½x·erf + ½x
	VMOVUPS Z5, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNE erfloop
erfdone:
	VZEROUPPER
	RET

// func geluErfBackwardAVX512(dinp, dout, inp *float32, n int)
TEXT ·geluErfBackwardAVX512(SB), NOSPLIT, $0-32
	MOVQ dinp+0(FP), DI
	MOVQ dout+8(FP), R8
	MOVQ inp+16(FP), SI
	MOVQ n+24(FP), CX
	CONSTS
	SHRQ $4, CX
	JEQ erfbdone
erfbloop:
	VMOVUPS (SI), Z0
	ERF
	VADDPS Z25, Z5, Z5   // 1 + erf
	VMULPS Z24, Z5, Z5   // ½(1 + erf)
	VMULPS Z0, Z0, Z1
	VMULPS Z24, Z1, Z1
	VSUBPS Z1, Z28, Z1   // −x²/2
	EXP
	VBROADCASTSS geluconst<>+60(SB), Z31
	VMULPS Z31, Z3, Z3   // φ(x)
	VFMADD213PS Z5, Z0, Z3 // x·φ + ½(1 + erf)
	VMULPS (R8), Z3, Z3
	VMOVUPS Z3, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, R8
	DECQ CX
	JNE erfbloop
erfbdone:
	VZEROUPPER
	RET

// func geluTanhAVX512(out, inp *float32, n int)
TEXT ·geluTanhAVX512(SB), NOSPLIT, $0-24
	MOVQ out+0(FP), DI
	MOVQ inp+8(FP), SI
	MOVQ n+16(FP), CX
	CONSTS
	SHRQ $4, CX
	JEQ tanhdone
tanhloop:
	VMOVUPS (SI), Z0
	SIGMOID2U
	VMULPS Z0, Z5, Z5
	VMOVUPS Z5, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNE tanhloop
tanhdone:
	VZEROUPPER
	RET

// func geluTanhBackwardAVX512(dinp, dout, inp *float32, n int)
TEXT ·geluTanhBackwardAVX512(SB), NOSPLIT, $0-32
	MOVQ dinp+0(FP), DI
	MOVQ dout+8(FP), R8
	MOVQ inp+16(FP), SI
	MOVQ n+24(FP), CX
	CONSTS
	SHRQ $4, CX
	JEQ tanhbdone
tanhbloop:
	VMOVUPS (SI), Z0
	SIGMOID2U
	VSUBPS Z5, Z25, Z8   // 1 − σ
	VMULPS Z5, Z8, Z8    // σ(1 − σ)
	VMULPS Z0, Z0, Z9
	VBROADCASTSS geluconst<>+72(SB), Z31
	VFMADD213PS Z25, Z31, Z9 // 1 + 3·0.044715·x²
	VBROADCASTSS geluconst<>+64(SB), Z31
	VMULPS Z31, Z9, Z9
	VADDPS Z9, Z9, Z9    // 2k(1 + 3c·x²)
	VMULPS Z9, Z8, Z8
	VFMADD213PS Z5, Z0, Z8 // x·σ(1−σ)·2k(…) + σ
	VMULPS (R8), Z8, Z8
	VMOVUPS Z8, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, R8
	DECQ CX
	JNE tanhbloop
tanhbdone:
	VZEROUPPER
	RET
