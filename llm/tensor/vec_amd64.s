//go:build amd64 && !purego

// Vector helpers with AVX2 and FMA: 32 floats per iteration in four independent registers, then 8 at a
// time, then one at a time (dotRowsAVX2 and axpyRowsAVX2 serve Dot and Axpy too, as one row).

#include "textflag.h"

// func scaleAVX2(alpha float32, x *float32, n int)
TEXT ·scaleAVX2(SB), NOSPLIT, $0-24
	VBROADCASTSS alpha+0(FP), Y15
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
scale32:
	CMPQ CX, $32
	JLT scale8
	VMULPS (DI), Y15, Y0
	VMULPS 32(DI), Y15, Y1
	VMULPS 64(DI), Y15, Y2
	VMULPS 96(DI), Y15, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, DI
	SUBQ $32, CX
	JMP scale32
scale8:
	CMPQ CX, $8
	JLT scale1
	VMULPS (DI), Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	SUBQ $8, CX
	JMP scale8
scale1:
	TESTQ CX, CX
	JEQ scaledone
	VMULSS (DI), X15, X0
	VMOVSS X0, (DI)
	ADDQ $4, DI
	DECQ CX
	JMP scale1
scaledone:
	VZEROUPPER
	RET

// func addAVX2(dst, x *float32, n int)
TEXT ·addAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
add32:
	CMPQ CX, $32
	JLT add8
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VADDPS (SI), Y0, Y0
	VADDPS 32(SI), Y1, Y1
	VADDPS 64(SI), Y2, Y2
	VADDPS 96(SI), Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP add32
add8:
	CMPQ CX, $8
	JLT add1
	VMOVUPS (DI), Y0
	VADDPS (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP add8
add1:
	TESTQ CX, CX
	JEQ adddone
	VMOVSS (DI), X0
	VADDSS (SI), X0, X0
	VMOVSS X0, (DI)
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JMP add1
adddone:
	VZEROUPPER
	RET

// func maxAVX2(x *float32, n int) float32    n is a positive multiple of 8
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VMOVUPS (SI), Y0
	VMOVAPS Y0, Y1
	ADDQ $32, SI
	SUBQ $8, CX
max16:
	CMPQ CX, $16
	JLT max8
	VMAXPS (SI), Y0, Y0
	VMAXPS 32(SI), Y1, Y1
	ADDQ $64, SI
	SUBQ $16, CX
	JMP max16
max8:
	TESTQ CX, CX
	JEQ maxred
	VMAXPS (SI), Y0, Y0
maxred:
	VMAXPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4E, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xB1, X0, X1
	VMAXPS X1, X0, X0
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// exp(r) for |r| <= ln2/2 by Cephes' expf polynomial; exp(x) = 2^n·exp(x − n·ln2), n = round(x·log2 e),
// with ln2 split in two so that x − n·ln2 is exact. Inputs below −87 (exp underflows) give 0.
DATA expconst<>+0(SB)/4, $0x3fb8aa3b  // log2 e
DATA expconst<>+4(SB)/4, $0x3f318000  // ln2 high part, 0.693359375
DATA expconst<>+8(SB)/4, $0xb95e8083  // ln2 low part, -2.12194440e-4
DATA expconst<>+12(SB)/4, $0x39506967 // 1.9875691500e-4
DATA expconst<>+16(SB)/4, $0x3ab743ce // 1.3981999507e-3
DATA expconst<>+20(SB)/4, $0x3c088908 // 8.3334519073e-3
DATA expconst<>+24(SB)/4, $0x3d2aa9c1 // 4.1665795894e-2
DATA expconst<>+28(SB)/4, $0x3e2aaaaa // 1.6666665459e-1
DATA expconst<>+32(SB)/4, $0x3f000000 // 0.5
DATA expconst<>+36(SB)/4, $0x3f800000 // 1
DATA expconst<>+40(SB)/4, $0xc2ae0000 // -87
DATA expconst<>+44(SB)/4, $0x0000007f // 127, the exponent bias
GLOBL expconst<>(SB), RODATA|NOPTR, $48

// func expSubAVX2(x *float32, n int, mx float32) float32    n is a multiple of 8
TEXT ·expSubAVX2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS mx+16(FP), Y15
	VBROADCASTSS expconst<>+0(SB), Y14
	VBROADCASTSS expconst<>+4(SB), Y13
	VBROADCASTSS expconst<>+8(SB), Y12
	VBROADCASTSS expconst<>+36(SB), Y11
	VBROADCASTSS expconst<>+40(SB), Y10
	VPBROADCASTD expconst<>+44(SB), Y9
	VXORPS Y8, Y8, Y8
	SHRQ $3, CX
	JEQ expdone
exploop:
	VMOVUPS (SI), Y0
	VSUBPS Y15, Y0, Y0
	VCMPPS $0x1D, Y10, Y0, Y7 // keep = x >= -87
	VMAXPS Y10, Y0, Y0
	VMULPS Y14, Y0, Y1
	VROUNDPS $0, Y1, Y1       // n
	VFNMADD231PS Y13, Y1, Y0  // r = x - n*ln2hi
	VFNMADD231PS Y12, Y1, Y0  // r -= n*ln2lo
	VBROADCASTSS expconst<>+12(SB), Y2
	VBROADCASTSS expconst<>+16(SB), Y3
	VFMADD213PS Y3, Y0, Y2
	VBROADCASTSS expconst<>+20(SB), Y3
	VFMADD213PS Y3, Y0, Y2
	VBROADCASTSS expconst<>+24(SB), Y3
	VFMADD213PS Y3, Y0, Y2
	VBROADCASTSS expconst<>+28(SB), Y3
	VFMADD213PS Y3, Y0, Y2
	VBROADCASTSS expconst<>+32(SB), Y3
	VFMADD213PS Y3, Y0, Y2
	VMULPS Y0, Y0, Y3
	VFMADD213PS Y0, Y3, Y2    // p·r² + r
	VADDPS Y11, Y2, Y2        // + 1
	VCVTPS2DQ Y1, Y4
	VPADDD Y9, Y4, Y4
	VPSLLD $23, Y4, Y4        // 2^n
	VMULPS Y4, Y2, Y2
	VANDPS Y7, Y2, Y2
	VMOVUPS Y2, (SI)
	VADDPS Y2, Y8, Y8
	ADDQ $32, SI
	DECQ CX
	JNE exploop
expdone:
	VEXTRACTF128 $1, Y8, X1
	VADDPS X1, X8, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotRowsAVX2(out, x, m *float32, n, rows, stride int)
// out[s] = Σ_{i<n} x[i]·m[s·stride+i] for s < rows: dotAVX2 for each row (the same operations in the
// same order, so the same sums), in one call: attention's scores against a window of cached keys,
// where a call per key cost more than its few FMAs.
TEXT ·dotRowsAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), R8
	MOVQ m+16(FP), R9
	MOVQ rows+32(FP), R10
	MOVQ stride+40(FP), R11
	SHLQ $2, R11
	TESTQ R10, R10
	JEQ drdone
drrow:
	MOVQ x+8(FP), SI
	MOVQ R9, DI
	MOVQ n+24(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
dr32:
	CMPQ CX, $32
	JLT dr8
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP dr32
dr8:
	CMPQ CX, $8
	JLT drsum
	VMOVUPS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP dr8
drsum:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	TESTQ CX, CX
	JEQ drstore
dr1:
	VMOVSS (SI), X4
	VFMADD231SS (DI), X4, X0
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JNE dr1
drstore:
	VMOVSS X0, (R8)
	ADDQ $4, R8
	ADDQ R11, R9
	DECQ R10
	JNE drrow
drdone:
	VZEROUPPER
	RET

// func axpyRowsAVX2(y, a, m *float32, n, rows, stride int)
// y[i] += a[s]·m[s·stride+i] for s = 0, 1, …, rows−1 in turn: axpyAVX2 once a row (each element gets
// the same fused multiply-adds in the same order), with y held in registers 64 columns at a time
// across the rows instead of loaded and stored once a row: attention's weighted sum of cached values.
TEXT ·axpyRowsAVX2(SB), NOSPLIT, $0-48
	MOVQ y+0(FP), DI
	MOVQ n+24(FP), CX
	MOVQ stride+40(FP), R11
	SHLQ $2, R11
	MOVQ m+16(FP), R9   // the current columns' first row
ar64:
	CMPQ CX, $64
	JLT ar8
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VMOVUPS 128(DI), Y4
	VMOVUPS 160(DI), Y5
	VMOVUPS 192(DI), Y6
	VMOVUPS 224(DI), Y7
	MOVQ a+8(FP), SI
	MOVQ R9, DX
	MOVQ rows+32(FP), R10
	TESTQ R10, R10
	JEQ ar64store
ar64row:
	VBROADCASTSS (SI), Y15
	VFMADD231PS (DX), Y15, Y0
	VFMADD231PS 32(DX), Y15, Y1
	VFMADD231PS 64(DX), Y15, Y2
	VFMADD231PS 96(DX), Y15, Y3
	VFMADD231PS 128(DX), Y15, Y4
	VFMADD231PS 160(DX), Y15, Y5
	VFMADD231PS 192(DX), Y15, Y6
	VFMADD231PS 224(DX), Y15, Y7
	ADDQ $4, SI
	ADDQ R11, DX
	DECQ R10
	JNE ar64row
ar64store:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	ADDQ $256, DI
	ADDQ $256, R9
	SUBQ $64, CX
	JMP ar64
ar8:
	CMPQ CX, $8
	JLT ar1
	VMOVUPS (DI), Y0
	MOVQ a+8(FP), SI
	MOVQ R9, DX
	MOVQ rows+32(FP), R10
	TESTQ R10, R10
	JEQ ar8store
ar8row:
	VBROADCASTSS (SI), Y15
	VFMADD231PS (DX), Y15, Y0
	ADDQ $4, SI
	ADDQ R11, DX
	DECQ R10
	JNE ar8row
ar8store:
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, R9
	SUBQ $8, CX
	JMP ar8
ar1:
	TESTQ CX, CX
	JEQ ardone
	VMOVSS (DI), X0
	MOVQ a+8(FP), SI
	MOVQ R9, DX
	MOVQ rows+32(FP), R10
	TESTQ R10, R10
	JEQ ar1store
ar1row:
	VMOVSS (SI), X15
	VFMADD231SS (DX), X15, X0
	ADDQ $4, SI
	ADDQ R11, DX
	DECQ R10
	JNE ar1row
ar1store:
	VMOVSS X0, (DI)
	ADDQ $4, DI
	ADDQ $4, R9
	DECQ CX
	JMP ar1
ardone:
	VZEROUPPER
	RET
