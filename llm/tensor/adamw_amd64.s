//go:build amd64 && !purego

// AdamW and the sum of squares with AVX-512, 16 floats per lane group.

#include "textflag.h"

// func adamwAVX512(theta, grad, m, v *float32, n int, c *AdamWCoeffs)
// AdamWCoeffs: β1 +0, β2 +4, 1−β1 +8, 1−β2 +12, stepSize +16, invSqrtBC2 +20, ε +24, decay +28,
// gradScale +32.
// The same operations in the same order as adamwGeneric: no fused multiply-add.
TEXT ·adamwAVX512(SB), NOSPLIT, $0-48
	MOVQ theta+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ c+40(FP), AX
	VBROADCASTSS 0(AX), Z16  // β1
	VBROADCASTSS 4(AX), Z17  // β2
	VBROADCASTSS 8(AX), Z18  // 1−β1
	VBROADCASTSS 12(AX), Z19 // 1−β2
	VBROADCASTSS 16(AX), Z20 // stepSize
	VBROADCASTSS 20(AX), Z21 // invSqrtBC2
	VBROADCASTSS 24(AX), Z22 // ε
	VBROADCASTSS 28(AX), Z23 // decay
	VBROADCASTSS 32(AX), Z24 // gradScale
	SHRQ $4, CX
	JEQ adamwdone
adamwloop:
	VMULPS (SI), Z24, Z0     // g
	VMULPS (R8), Z16, Z1     // β1·m
	VMULPS Z0, Z18, Z2       // (1−β1)·g
	VADDPS Z2, Z1, Z1        // m
	VMOVUPS Z1, (R8)
	VMULPS (R9), Z17, Z3     // β2·v
	VMULPS Z0, Z19, Z4       // (1−β2)·g
	VMULPS Z0, Z4, Z4        // ·g
	VADDPS Z4, Z3, Z3        // v
	VMOVUPS Z3, (R9)
	VSQRTPS Z3, Z5
	VMULPS Z21, Z5, Z5       // √v·invSqrtBC2
	VADDPS Z22, Z5, Z5       // + ε
	VMULPS Z1, Z20, Z6       // stepSize·m
	VDIVPS Z5, Z6, Z6        // / denominator
	VMOVUPS (DI), Z7
	VMULPS Z7, Z23, Z8       // decay·θ
	VADDPS Z8, Z6, Z6
	VSUBPS Z6, Z7, Z7        // θ − (…)
	VMOVUPS Z7, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, R8
	ADDQ $64, R9
	DECQ CX
	JNE adamwloop
adamwdone:
	VZEROUPPER
	RET

// func sumSquaresAVX512(x *float32, n int) float64
// Widens 8 floats at a time to float64 and accumulates squares in two registers of 8 lanes each.
TEXT ·sumSquaresAVX512(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VXORPD Z0, Z0, Z0
	VXORPD Z1, Z1, Z1
	SHRQ $4, CX
	JEQ ssdone
ssloop:
	VCVTPS2PD (SI), Z2
	VCVTPS2PD 32(SI), Z3
	VFMADD231PD Z2, Z2, Z0
	VFMADD231PD Z3, Z3, Z1
	ADDQ $64, SI
	DECQ CX
	JNE ssloop
ssdone:
	VADDPD Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPD Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VHADDPD X0, X0, X0
	MOVSD X0, ret+16(FP)
	VZEROUPPER
	RET

// func adamwAVX2(theta, grad, m, v *float32, n int, c *AdamWCoeffs)
// adamwAVX512 on 8-float registers for CPUs without AVX-512: the same operations in the same order.
TEXT ·adamwAVX2(SB), NOSPLIT, $0-48
	MOVQ theta+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ c+40(FP), AX
	VBROADCASTSS 0(AX), Y7   // β1
	VBROADCASTSS 4(AX), Y8   // β2
	VBROADCASTSS 8(AX), Y9   // 1−β1
	VBROADCASTSS 12(AX), Y10 // 1−β2
	VBROADCASTSS 16(AX), Y11 // stepSize
	VBROADCASTSS 20(AX), Y12 // invSqrtBC2
	VBROADCASTSS 24(AX), Y13 // ε
	VBROADCASTSS 28(AX), Y14 // decay
	VBROADCASTSS 32(AX), Y15 // gradScale
	SHRQ $3, CX
	JEQ adamw2done
adamw2loop:
	VMULPS (SI), Y15, Y0     // g
	VMULPS (R8), Y7, Y1      // β1·m
	VMULPS Y0, Y9, Y2        // (1−β1)·g
	VADDPS Y2, Y1, Y1        // m
	VMOVUPS Y1, (R8)
	VMULPS (R9), Y8, Y3      // β2·v
	VMULPS Y0, Y10, Y2       // (1−β2)·g
	VMULPS Y0, Y2, Y2        // ·g
	VADDPS Y2, Y3, Y3        // v
	VMOVUPS Y3, (R9)
	VSQRTPS Y3, Y4
	VMULPS Y12, Y4, Y4       // √v·invSqrtBC2
	VADDPS Y13, Y4, Y4       // + ε
	VMULPS Y1, Y11, Y2       // stepSize·m
	VDIVPS Y4, Y2, Y2        // / denominator
	VMOVUPS (DI), Y5
	VMULPS Y5, Y14, Y3       // decay·θ
	VADDPS Y3, Y2, Y2
	VSUBPS Y2, Y5, Y5        // θ − (…)
	VMOVUPS Y5, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ CX
	JNE adamw2loop
adamw2done:
	VZEROUPPER
	RET

// func sumSquaresAVX2(x *float32, n int) float64
// sumSquaresAVX512's sixteen float64 lanes in four registers of four (Y0 and Y1 are its Z0, Y2 and
// Y3 its Z1), added in its order: the same sum on either CPU.
TEXT ·sumSquaresAVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	SHRQ $4, CX
	JEQ ss2done
ss2loop:
	VCVTPS2PD (SI), Y4
	VCVTPS2PD 16(SI), Y5
	VCVTPS2PD 32(SI), Y6
	VCVTPS2PD 48(SI), Y7
	VFMADD231PD Y4, Y4, Y0
	VFMADD231PD Y5, Y5, Y1
	VFMADD231PD Y6, Y6, Y2
	VFMADD231PD Y7, Y7, Y3
	ADDQ $64, SI
	DECQ CX
	JNE ss2loop
ss2done:
	VADDPD Y2, Y0, Y0
	VADDPD Y3, Y1, Y1
	VADDPD Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VHADDPD X0, X0, X0
	MOVSD X0, ret+16(FP)
	VZEROUPPER
	RET
