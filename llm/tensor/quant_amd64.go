package tensor

import "golang.org/x/sys/cpu"

// The quantized products' assembly: the VNNI forms where the CPU has AVX512_VNNI on 256-bit registers
// (AVX512VL), the AVX2 forms on other AVX2 machines (with FMA and F16C, which every AVX2 CPU has), the
// portable loops elsewhere. Detected at run time; the variables let tests run every path here.
var (
	quantVNNI = cpu.X86.HasAVX512VNNI && cpu.X86.HasAVX512VL && quantAVX2
	quantAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C
)

//go:noescape
func q8_0DotVNNI(w *byte, x *int8, xd *float32, nb int) float32

//go:noescape
func q8_0DotAVX2(w *byte, x *int8, xd *float32, nb int) float32

//go:noescape
func q4kIsumVNNI(q *byte, x *int8, sc *int32) int32

//go:noescape
func q4kIsumAVX2(q *byte, x *int8, sc *int32) int32

// dotQ8_0Asm adds the Q8_0 row's product with each activation row from r0 (the row stays in the
// first-level cache across them); false leaves them to the portable loop.
func dotQ8_0Asm(dots []float32, row []byte, a *qActs, r0, C int) bool {
	nb := C / 32
	dot := q8_0DotAVX2
	switch {
	case quantVNNI:
		dot = q8_0DotVNNI
	case quantAVX2:
	default:
		return false
	}
	_ = row[nb*34-1]
	for r := range dots {
		i := (r0 + r) * nb
		xs, xd := a.qs[i*32:(i+nb)*32], a.d[i:i+nb]
		dots[r] += dot(&row[0], &xs[0], &xd[0], nb)
	}
	return true
}

// q4kIsumAsm returns Σ_j sc[j]·Σ nibble·x over a Q4_K super-block's 128 nibble bytes and 256
// activations, and whether it ran (false: use the portable loop).
func q4kIsumAsm(q []byte, x []int8, sc *[8]int32) (int32, bool) {
	_, _ = q[127], x[255]
	switch {
	case quantVNNI:
		return q4kIsumVNNI(&q[0], &x[0], &sc[0]), true
	case quantAVX2:
		return q4kIsumAVX2(&q[0], &x[0], &sc[0]), true
	}
	return 0, false
}

// hasQuantAsm says whether the assembly runs (the portable loops then skip their own unpacking).
func hasQuantAsm() bool { return quantVNNI || quantAVX2 }
