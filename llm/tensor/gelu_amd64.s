//go:build amd64 && !purego

// GELU forward and backward with AVX-512, 16 floats at a time, in both of the forms checkpoints use:
//
//   exact: gelu(x) = ½·x·(1 + erf(x/√2)), gelu'(x) = ½·(1 + erf(x/√2)) + x·φ(x), φ(x) = e^(−x²/2)/√(2π)
//   tanh:  gelu(x) = x·σ(2u), u = √(2/π)·(x + 0.044715·x³) (½·(1 + tanh u) is σ(2u)),
//          gelu'(x) = σ(2u) + x·σ(2u)·(1 − σ(2u))·2·√(2/π)·(1 + 3·0.044715·x²)
//
// erf(y) for y clamped to [−4, 4] (erf is ±1 in float32 beyond) is the odd/even rational function
// y·P(y²)/Q(y²) of Eigen's and XLA's float erf (a few ulp); e^x is expf_amd64.h's.

#include "textflag.h"
#include "expf_amd64.h"

DATA geluconst<>+0(SB)/4, $0x3f3504f3 // 1/√2
DATA geluconst<>+4(SB)/4, $0x40800000 // 4
DATA geluconst<>+8(SB)/4, $0xc0800000 // -4
DATA geluconst<>+12(SB)/4, $0x3ecc422a // 1/√(2π) = 0.3989422804
DATA geluconst<>+16(SB)/4, $0x3f4c422a // √(2/π) = 0.7978845608
DATA geluconst<>+20(SB)/4, $0x3d372713 // 0.044715
DATA geluconst<>+24(SB)/4, $0x3e095d4f // 3·0.044715 = 0.134145
// erf numerator, odd: α1 … α13
DATA geluconst<>+28(SB)/4, $0xbc83dbd4  // α1 -1.60960333262415e-02
DATA geluconst<>+32(SB)/4, $0xbb41a1f6  // α3 -2.95459980854025e-03
DATA geluconst<>+36(SB)/4, $0xba40ac63  // α5 -7.34990630326855e-04
DATA geluconst<>+40(SB)/4, $0xb86ec2d2  // α7 -5.69250639462346e-05
DATA geluconst<>+44(SB)/4, $0xb60cff51  // α9 -2.10102402082508e-06
DATA geluconst<>+48(SB)/4, $0x32edffee  // α11 2.77068142495902e-08
DATA geluconst<>+52(SB)/4, $0xaf95df0b // α13 -2.72614225801306e-10
// erf denominator, even: β0 … β8
DATA geluconst<>+56(SB)/4, $0xbc69b6a7 // β0 -1.42647390514189e-02
DATA geluconst<>+60(SB)/4, $0xbbf19bf8 // β2 -7.37332916720468e-03
DATA geluconst<>+64(SB)/4, $0xbadc924e // β4 -1.68282697438203e-03
DATA geluconst<>+68(SB)/4, $0xb95fbd29 // β6 -2.13374055278905e-04
DATA geluconst<>+72(SB)/4, $0xb77460cd // β8 -1.45660718464996e-05
GLOBL geluconst<>(SB), RODATA|NOPTR, $76

// SIGMOID2U sets Z5 = σ(2u) for x in Z0 (tanh form), using Z1-Z4 and Z31.
#define SIGMOID2U \
	VMULPS Z0, Z0, Z5 \
	VBROADCASTSS geluconst<>+20(SB), Z31 \
	VFMADD213PS Z25, Z31, Z5 /* 1 + 0.044715·x² */ \
	VMULPS Z0, Z5, Z5 \
	VBROADCASTSS geluconst<>+16(SB), Z31 \
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
	VBROADCASTSS geluconst<>+0(SB), Z31 \
	VMULPS Z31, Z0, Z6 \
	VBROADCASTSS geluconst<>+4(SB), Z31 \
	VMINPS Z31, Z6, Z6 \
	VBROADCASTSS geluconst<>+8(SB), Z31 \
	VMAXPS Z31, Z6, Z6 /* y */ \
	VMULPS Z6, Z6, Z7 /* y² */ \
	VBROADCASTSS geluconst<>+52(SB), Z5 \
	HORNER(geluconst<>+48(SB), Z7, Z5) \
	HORNER(geluconst<>+44(SB), Z7, Z5) \
	HORNER(geluconst<>+40(SB), Z7, Z5) \
	HORNER(geluconst<>+36(SB), Z7, Z5) \
	HORNER(geluconst<>+32(SB), Z7, Z5) \
	HORNER(geluconst<>+28(SB), Z7, Z5) \
	VMULPS Z6, Z5, Z5 /* y·P(y²) */ \
	VBROADCASTSS geluconst<>+72(SB), Z6 \
	HORNER(geluconst<>+68(SB), Z7, Z6) \
	HORNER(geluconst<>+64(SB), Z7, Z6) \
	HORNER(geluconst<>+60(SB), Z7, Z6) \
	HORNER(geluconst<>+56(SB), Z7, Z6) \
	VDIVPS Z6, Z5, Z5

// func geluErfAVX512(out, inp *float32, n int)
TEXT ·geluErfAVX512(SB), NOSPLIT, $0-24
	MOVQ out+0(FP), DI
	MOVQ inp+8(FP), SI
	MOVQ n+16(FP), CX
	EXPCONSTS
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
	EXPCONSTS
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
	VBROADCASTSS geluconst<>+12(SB), Z31
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
	EXPCONSTS
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
	EXPCONSTS
	SHRQ $4, CX
	JEQ tanhbdone
tanhbloop:
	VMOVUPS (SI), Z0
	SIGMOID2U
	VSUBPS Z5, Z25, Z8   // 1 − σ
	VMULPS Z5, Z8, Z8    // σ(1 − σ)
	VMULPS Z0, Z0, Z9
	VBROADCASTSS geluconst<>+24(SB), Z31
	VFMADD213PS Z25, Z31, Z9 // 1 + 3·0.044715·x²
	VBROADCASTSS geluconst<>+16(SB), Z31
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

// The AVX2 forms, the same operations on 8-float registers: Y10 takes Z31's part (a constant broadcast
// as it is used), Y11 = 1, Y12 = ½, Y15 = 0; e^x is EXP2.

// SIGMOID2U2 sets Y5 = σ(2u) for x in Y0 (tanh form), using Y1-Y4 and Y10.
#define SIGMOID2U2 \
	VMULPS Y0, Y0, Y5 \
	VBROADCASTSS geluconst<>+20(SB), Y10 \
	VFMADD213PS Y11, Y10, Y5 /* 1 + 0.044715·x² */ \
	VMULPS Y0, Y5, Y5 \
	VBROADCASTSS geluconst<>+16(SB), Y10 \
	VMULPS Y10, Y5, Y5 /* u */ \
	VADDPS Y5, Y5, Y5 /* 2u */ \
	VSUBPS Y5, Y15, Y1 /* −2u */ \
	EXP2 \
	VADDPS Y11, Y3, Y3 \
	VDIVPS Y3, Y11, Y5

#define HORNER2(c, r, acc) VBROADCASTSS c, Y10; VFMADD213PS Y10, r, acc

// ERF2 sets Y5 = erf(Y0/√2), using Y6, Y7, Y10.
#define ERF2 \
	VBROADCASTSS geluconst<>+0(SB), Y10 \
	VMULPS Y10, Y0, Y6 \
	VBROADCASTSS geluconst<>+4(SB), Y10 \
	VMINPS Y10, Y6, Y6 \
	VBROADCASTSS geluconst<>+8(SB), Y10 \
	VMAXPS Y10, Y6, Y6 /* y */ \
	VMULPS Y6, Y6, Y7 /* y² */ \
	VBROADCASTSS geluconst<>+52(SB), Y5 \
	HORNER2(geluconst<>+48(SB), Y7, Y5) \
	HORNER2(geluconst<>+44(SB), Y7, Y5) \
	HORNER2(geluconst<>+40(SB), Y7, Y5) \
	HORNER2(geluconst<>+36(SB), Y7, Y5) \
	HORNER2(geluconst<>+32(SB), Y7, Y5) \
	HORNER2(geluconst<>+28(SB), Y7, Y5) \
	VMULPS Y6, Y5, Y5 /* y·P(y²) */ \
	VBROADCASTSS geluconst<>+72(SB), Y6 \
	HORNER2(geluconst<>+68(SB), Y7, Y6) \
	HORNER2(geluconst<>+64(SB), Y7, Y6) \
	HORNER2(geluconst<>+60(SB), Y7, Y6) \
	HORNER2(geluconst<>+56(SB), Y7, Y6) \
	VDIVPS Y6, Y5, Y5

#define CONSTS2 \
	VBROADCASTSS expconst<>+36(SB), Y11 \
	VBROADCASTSS expconst<>+32(SB), Y12 \
	VXORPS Y15, Y15, Y15

// func geluErfAVX2(out, inp *float32, n int)
TEXT ·geluErfAVX2(SB), NOSPLIT, $0-24
	MOVQ out+0(FP), DI
	MOVQ inp+8(FP), SI
	MOVQ n+16(FP), CX
	CONSTS2
	SHRQ $3, CX
	JEQ erf2done
erf2loop:
	VMOVUPS (SI), Y0
	ERF2
	VMULPS Y12, Y0, Y8   // ½x
	VFMADD213PS Y8, Y8, Y5 // ½x·erf + ½x
	VMOVUPS Y5, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNE erf2loop
erf2done:
	VZEROUPPER
	RET

// func geluErfBackwardAVX2(dinp, dout, inp *float32, n int)
TEXT ·geluErfBackwardAVX2(SB), NOSPLIT, $0-32
	MOVQ dinp+0(FP), DI
	MOVQ dout+8(FP), R8
	MOVQ inp+16(FP), SI
	MOVQ n+24(FP), CX
	CONSTS2
	SHRQ $3, CX
	JEQ erfb2done
erfb2loop:
	VMOVUPS (SI), Y0
	ERF2
	VADDPS Y11, Y5, Y5   // 1 + erf
	VMULPS Y12, Y5, Y5   // ½(1 + erf)
	VMULPS Y0, Y0, Y1
	VMULPS Y12, Y1, Y1
	VSUBPS Y1, Y15, Y1   // −x²/2
	EXP2
	VBROADCASTSS geluconst<>+12(SB), Y10
	VMULPS Y10, Y3, Y3   // φ(x)
	VFMADD213PS Y5, Y0, Y3 // x·φ + ½(1 + erf)
	VMULPS (R8), Y3, Y3
	VMOVUPS Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R8
	DECQ CX
	JNE erfb2loop
erfb2done:
	VZEROUPPER
	RET

// func geluTanhAVX2(out, inp *float32, n int)
TEXT ·geluTanhAVX2(SB), NOSPLIT, $0-24
	MOVQ out+0(FP), DI
	MOVQ inp+8(FP), SI
	MOVQ n+16(FP), CX
	CONSTS2
	SHRQ $3, CX
	JEQ tanh2done
tanh2loop:
	VMOVUPS (SI), Y0
	SIGMOID2U2
	VMULPS Y0, Y5, Y5
	VMOVUPS Y5, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNE tanh2loop
tanh2done:
	VZEROUPPER
	RET

// func geluTanhBackwardAVX2(dinp, dout, inp *float32, n int)
TEXT ·geluTanhBackwardAVX2(SB), NOSPLIT, $0-32
	MOVQ dinp+0(FP), DI
	MOVQ dout+8(FP), R8
	MOVQ inp+16(FP), SI
	MOVQ n+24(FP), CX
	CONSTS2
	SHRQ $3, CX
	JEQ tanhb2done
tanhb2loop:
	VMOVUPS (SI), Y0
	SIGMOID2U2
	VSUBPS Y5, Y11, Y8   // 1 − σ
	VMULPS Y5, Y8, Y8    // σ(1 − σ)
	VMULPS Y0, Y0, Y9
	VBROADCASTSS geluconst<>+24(SB), Y10
	VFMADD213PS Y11, Y10, Y9 // 1 + 3·0.044715·x²
	VBROADCASTSS geluconst<>+16(SB), Y10
	VMULPS Y10, Y9, Y9
	VADDPS Y9, Y9, Y9    // 2k(1 + 3c·x²)
	VMULPS Y9, Y8, Y8
	VFMADD213PS Y5, Y0, Y8 // x·σ(1−σ)·2k(…) + σ
	VMULPS (R8), Y8, Y8
	VMOVUPS Y8, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R8
	DECQ CX
	JNE tanhb2loop
tanhb2done:
	VZEROUPPER
	RET
