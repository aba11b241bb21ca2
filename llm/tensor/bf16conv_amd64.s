//go:build amd64 && !purego

// bfloat16 conversions with AVX2, 16 values a step (n a multiple of 16).

#include "textflag.h"

// func widenBF16AVX2(dst *float32, src *uint16, n int)
// A bfloat16 is the top half of its float32: zero-extend, shift up.
TEXT ·widenBF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	JEQ widendone
widenloop:
	VPMOVZXWD (SI), Y0
	VPMOVZXWD 16(SI), Y1
	VPSLLD $16, Y0, Y0
	VPSLLD $16, Y1, Y1
	VMOVDQU Y0, (DI)
	VMOVDQU Y1, 32(DI)
	ADDQ $32, SI
	ADDQ $64, DI
	DECQ CX
	JNE widenloop
widendone:
	VZEROUPPER
	RET

// func roundBF16AVX2(dst *uint16, src *float32, n int)
// half.F32ToBF16 in lanes: b + 0x7fff + (b>>16 & 1), the top half (round to nearest even); a NaN
// keeps its top half with the quiet bit set. VPACKUSDW packs the 128-bit halves of two registers in
// turn; VPERMQ puts the four 64-bit groups back in order.
TEXT ·roundBF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVL $0x7fff, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $1, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x7fffffff, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	MOVL $0x7f800000, AX
	VMOVD AX, X12
	VPBROADCASTD X12, Y12
	MOVL $0x40, AX
	VMOVD AX, X11
	VPBROADCASTD X11, Y11
	SHRQ $4, CX
	JEQ rounddone
roundloop:
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	VPSRLD $16, Y0, Y2
	VPSRLD $16, Y1, Y3
	VPAND Y14, Y2, Y4
	VPAND Y14, Y3, Y5
	VPADDD Y15, Y4, Y4
	VPADDD Y15, Y5, Y5
	VPADDD Y0, Y4, Y4
	VPADDD Y1, Y5, Y5
	VPSRLD $16, Y4, Y4    // rounded
	VPSRLD $16, Y5, Y5
	VPOR Y11, Y2, Y2      // a NaN's top half, quieted
	VPOR Y11, Y3, Y3
	VPAND Y13, Y0, Y6
	VPAND Y13, Y1, Y7
	VPCMPGTD Y12, Y6, Y6  // |b| > infinity: NaN
	VPCMPGTD Y12, Y7, Y7
	VPBLENDVB Y6, Y2, Y4, Y4
	VPBLENDVB Y7, Y3, Y5, Y5
	VPACKUSDW Y5, Y4, Y4
	VPERMQ $0xD8, Y4, Y4
	VMOVDQU Y4, (DI)
	ADDQ $64, SI
	ADDQ $32, DI
	DECQ CX
	JNE roundloop
rounddone:
	VZEROUPPER
	RET
