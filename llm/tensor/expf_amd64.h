// e^x for the element-wise AVX-512 kernels (swiglu_amd64.s, gelu_amd64.s), Cephes' expf: x clamped
// to [−87, 88], n = round(x·log2 e), r = x − n·ln 2 in two parts, e^r = 1 + r + r²·P(r), then scaled
// by 2ⁿ (VSCALEFPS). Included by each file, so each has its own file-local copy of the constants.

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
DATA expconst<>+44(SB)/4, $0x42b00000 // 88
GLOBL expconst<>(SB), RODATA|NOPTR, $48

// EXPCONSTS loads the constants: Z16-Z23 the reduction and polynomial, Z24 = 0.5, Z25 = 1,
// Z26/Z27 the clamp bounds, Z28 = 0.
#define EXPCONSTS \
	VBROADCASTSS expconst<>+0(SB), Z16 \
	VBROADCASTSS expconst<>+4(SB), Z17 \
	VBROADCASTSS expconst<>+8(SB), Z18 \
	VBROADCASTSS expconst<>+12(SB), Z19 \
	VBROADCASTSS expconst<>+16(SB), Z20 \
	VBROADCASTSS expconst<>+20(SB), Z21 \
	VBROADCASTSS expconst<>+24(SB), Z22 \
	VBROADCASTSS expconst<>+28(SB), Z23 \
	VBROADCASTSS expconst<>+32(SB), Z24 \
	VBROADCASTSS expconst<>+36(SB), Z25 \
	VBROADCASTSS expconst<>+40(SB), Z26 \
	VBROADCASTSS expconst<>+44(SB), Z27 \
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

// The AVX2 form (8-float registers, no AVX-512): EXP2 sets Y3 = e^Y1 (Y1 is clobbered), using Y2, Y4
// and Y10 (each constant broadcast from memory as it is used: sixteen registers do not hold them all).
// 2ⁿ is built in the exponent field ((n+127)<<23; the clamp keeps n in [−126, 127]), which multiplies
// exactly as VSCALEFPS does: the same values as EXP.
DATA expbias<>+0(SB)/4, $127
GLOBL expbias<>(SB), RODATA|NOPTR, $4

#define EXP2 \
	VBROADCASTSS expconst<>+40(SB), Y10 \
	VMAXPS Y10, Y1, Y1 \
	VBROADCASTSS expconst<>+44(SB), Y10 \
	VMINPS Y10, Y1, Y1 \
	VBROADCASTSS expconst<>+0(SB), Y10 \
	VMULPS Y10, Y1, Y2 \
	VROUNDPS $0, Y2, Y2 \
	VBROADCASTSS expconst<>+4(SB), Y10 \
	VFNMADD231PS Y10, Y2, Y1 \
	VBROADCASTSS expconst<>+8(SB), Y10 \
	VFNMADD231PS Y10, Y2, Y1 \
	VBROADCASTSS expconst<>+12(SB), Y3 \
	VBROADCASTSS expconst<>+16(SB), Y10 \
	VFMADD213PS Y10, Y1, Y3 \
	VBROADCASTSS expconst<>+20(SB), Y10 \
	VFMADD213PS Y10, Y1, Y3 \
	VBROADCASTSS expconst<>+24(SB), Y10 \
	VFMADD213PS Y10, Y1, Y3 \
	VBROADCASTSS expconst<>+28(SB), Y10 \
	VFMADD213PS Y10, Y1, Y3 \
	VBROADCASTSS expconst<>+32(SB), Y10 \
	VFMADD213PS Y10, Y1, Y3 \
	VMULPS Y1, Y1, Y4 \
	VFMADD213PS Y1, Y4, Y3 \
	VADDPS Y11, Y3, Y3 \
	VCVTPS2DQ Y2, Y2 \
	VPBROADCASTD expbias<>(SB), Y10 \
	VPADDD Y10, Y2, Y2 \
	VPSLLD $23, Y2, Y2 \
	VMULPS Y2, Y3, Y3
