package tensor

import (
	"math"

	"golang.org/x/sys/cpu"
)

// The quantized products' assembly: the VNNI forms where the CPU has AVX512_VNNI on 256-bit registers
// (AVX512VL), the AVX2 row kernels (quant_avx2_amd64.s) on other AVX2 machines (with FMA and F16C,
// which every AVX2 CPU has), the portable loops elsewhere. Detected at run time; the variables let
// tests run every path here.
var (
	quantVNNI512 = cpu.X86.HasAVX512BW && quantVNNI
	quantVNNI    = cpu.X86.HasAVX512VNNI && cpu.X86.HasAVX512VL && quantAVX2
	quantAVX2    = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C
)

//go:noescape
func q8_0DotVNNI(w *byte, x *int8, xd *float32, nb int) float32

//go:noescape
func q8_0Dot4VNNI(w *byte, x *int8, xd *float32, nb, xstride int, out *float32)

//go:noescape
func q4_0DotVNNI(w *byte, x *int8, xd *float32, nb int) float32

//go:noescape
func q6kIsumVNNI(b *byte, x *int8) int32

//go:noescape
func q4kRowVNNI(w *byte, x *int8, xd *float32, s32 *int32, nb int) float32

//go:noescape
func q4kRow4VNNI(w *byte, x *int8, xd *float32, s32 *int32, nb, xstride int, out *float32)

//go:noescape
func q4kRowsVNNI512(w *byte, x *int8, xd *float32, s32 *int32, nb, n int, out *float32)

//go:noescape
func q6kRowsVNNI512(w *byte, x *int8, xd *float32, sums *int16, nb, n int, out *float32)

//go:noescape
func quantActsAVX512(x *float32, nb, blk int, qs *int8, d *float32, sums *int16) bool

//go:noescape
func quantActsAVX2(x *float32, nb, blk int, qs *int8, d *float32, sums *int16) bool

//go:noescape
func q4kRowsRVNNI512(w *byte, x *int8, xd *float32, s32 *int32, nb, n int, out *float32, R, ostride int)

//go:noescape
func q6kRowsRVNNI512(w *byte, x *int8, xd *float32, sums *int16, nb, n int, out *float32, R, ostride int)

//go:noescape
func q8_0RowsVNNI(w *byte, x *int8, xd *float32, nb, n int, out *float32)

// dotQ8_0Asm adds the Q8_0 row's product with each activation row from r0 (the row stays in the
// first-level cache across them); false leaves them to the portable loop.
func dotQ8_0Asm(dots []float32, row []byte, a *qActs, r0, C int) bool {
	if !quantVNNI {
		return false // AVX2 machines run quantRowsAVX2
	}
	// four activation rows a weight block (batched decoding, prefill), then one at a time
	nb := C / 32
	_ = row[nb*34-1]
	r := 0
	for ; r+4 <= len(dots); r += 4 {
		i := (r0 + r) * nb
		xs, xd := a.qs[i*32:(i+4*nb)*32], a.d[i:i+4*nb]
		q8_0Dot4VNNI(&row[0], &xs[0], &xd[0], nb, C, &dots[r])
	}
	return rowDots(dots[r:], row, a, r0+r, C, 34, q8_0DotVNNI)
}

// dotQ4_0Asm is dotQ8_0Asm for Q4_0 rows.
func dotQ4_0Asm(dots []float32, row []byte, a *qActs, r0, C int) bool {
	if !quantVNNI {
		return false // AVX2 machines run quantRowsAVX2
	}
	return rowDots(dots, row, a, r0, C, 18, q4_0DotVNNI)
}

func rowDots(dots []float32, row []byte, a *qActs, r0, C, blockBytes int, dot func(w *byte, x *int8, xd *float32, nb int) float32) bool {
	nb := C / 32
	_ = row[nb*blockBytes-1]
	for r := range dots {
		i := (r0 + r) * nb
		xs, xd := a.qs[i*32:(i+nb)*32], a.d[i:i+nb]
		dots[r] += dot(&row[0], &xs[0], &xd[0], nb)
	}
	return true
}

// dotQ4_KAsm adds the Q4_K row's product with each activation row from r0, whole rows in assembly
// (AVX2 machines run quantRowsAVX2 instead).
func dotQ4_KAsm(dots []float32, row []byte, a *qActs, r0, C int) bool {
	if !quantVNNI {
		return false
	}
	nb := C / 256
	_ = row[nb*144-1]
	r := 0
	for ; r+4 <= len(dots); r += 4 { // four activation rows a super-block (batched decoding, prefill)
		i := (r0 + r) * nb
		xs, xd, s32 := a.qs[i*256:(i+4*nb)*256], a.d[i:i+4*nb], a.sum32[i*8:(i+4*nb)*8]
		q4kRow4VNNI(&row[0], &xs[0], &xd[0], &s32[0], nb, C, &dots[r])
	}
	for ; r < len(dots); r++ {
		i := (r0 + r) * nb
		xs, xd, s32 := a.qs[i*256:(i+nb)*256], a.d[i:i+nb], a.sum32[i*8:(i+nb)*8]
		dots[r] += q4kRowVNNI(&row[0], &xs[0], &xd[0], &s32[0], nb)
	}
	return true
}

// q6kIsumAsm returns Σ_g s_g·Σ (q−32)·x over one Q6_K super-block and its 256 activations, and
// whether it ran.
func q6kIsumAsm(b []byte, x []int8) (int32, bool) {
	_, _ = b[209], x[255]
	if !quantVNNI {
		return 0, false
	}
	return q6kIsumVNNI(&b[0], &x[0]), true
}

// hasQuantAsm says whether q6kIsumAsm runs (the portable loop then skips its own unpacking).
func hasQuantAsm() bool { return quantVNNI }

// quantRowsAsm sets out[r, lo:hi] for every activation row r where a kernel takes whole runs of
// weight rows in one call (a Q4_K row is a few super-blocks, so a call per row costs as much as its
// arithmetic; batched, each super-block is unpacked once for up to 16 rows); false leaves them to
// quantRows' loop.
func quantRowsAsm(out []float32, a *qActs, w *QMatrix, R, lo, hi int) bool {
	if !quantVNNI && quantAVX2 && hi > lo {
		quantRowsAVX2(out, a, w, R, lo, hi)
		return true
	}
	if R == 1 && quantVNNI && w.Type == QuantQ8_0 && hi > lo {
		nb, rb := w.Cols/32, w.RowBytes()
		rows, o := w.Data[lo*rb:hi*rb], out[lo:hi]
		xs, xd := a.qs[:nb*32], a.d[:nb]
		q8_0RowsVNNI(&rows[0], &xs[0], &xd[0], nb, hi-lo, &o[0])
		return true
	}
	if !quantVNNI512 || hi <= lo || w.Type == QuantQ8_0 || w.Type == QuantQ4_0 {
		return false
	}
	nb, rb := w.Cols/256, w.RowBytes()
	rows, o := w.Data[lo*rb:hi*rb], out[lo:hi]
	if R > 1 {
		if w.Type != QuantQ4_K && w.Type != QuantQ6_K {
			return false
		}
		// up to 16 activation rows a pass over the weights (the kernels' frames hold 16 accumulators)
		N := w.Rows
		for r0 := 0; r0 < R; r0 += 16 {
			rn := min(16, R-r0)
			xs, xd := a.qs[r0*nb*256:(r0+rn)*nb*256], a.d[r0*nb:(r0+rn)*nb]
			o := out[r0*N+lo : (r0+rn-1)*N+hi]
			if w.Type == QuantQ4_K {
				s32 := a.sum32[r0*nb*8 : (r0+rn)*nb*8]
				q4kRowsRVNNI512(&rows[0], &xs[0], &xd[0], &s32[0], nb, hi-lo, &o[0], rn, 4*N)
			} else {
				sums := a.sums[r0*nb*16 : (r0+rn)*nb*16]
				q6kRowsRVNNI512(&rows[0], &xs[0], &xd[0], &sums[0], nb, hi-lo, &o[0], rn, 4*N)
			}
		}
		return true
	}
	switch w.Type {
	case QuantQ4_K:
		xs, xd, s32 := a.qs[:nb*256], a.d[:nb], a.sum32[:nb*8]
		q4kRowsVNNI512(&rows[0], &xs[0], &xd[0], &s32[0], nb, hi-lo, &o[0])
	case QuantQ6_K:
		xs, xd, sums := a.qs[:nb*256], a.d[:nb], a.sums[:nb*16]
		q6kRowsVNNI512(&rows[0], &xs[0], &xd[0], &sums[0], nb, hi-lo, &o[0])
	default:
		return false
	}
	return true
}

// quantizeActsAsm is quantizeActs' block loop in assembly (AVX-512 or AVX2: the same divisions,
// products and round-to-even conversions, so the same bytes): it sets a.qs, a.d (before the float16
// rounding) and a.sums, or returns false (neither here, or a NaN or infinity among x) for the
// portable loop.
func quantizeActsAsm(a *qActs, x []float32, blk int) bool {
	if len(x) == 0 {
		return false
	}
	nb := len(x) / blk
	switch {
	case quantVNNI512:
		if !quantActsAVX512(&x[0], nb, blk, &a.qs[0], &a.d[0], &a.sums[0]) {
			return false
		}
	case quantAVX2:
		if !quantActsAVX2(&x[0], nb, blk, &a.qs[0], &a.d[0], &a.sums[0]) {
			return false
		}
	default:
		return false
	}
	for _, d := range a.d[:nb] {
		if math.IsInf(float64(d), 0) {
			return false
		}
	}
	return true
}

// The AVX2 row kernels (gen_quant_avx2_amd64.py): n weight rows from w against R = 1..4 activation
// rows (x, xd and s of row 0, the others nb blocks apart), out[r·ostride+o] set to the products. s is
// sum32 against Q4_K, sums against Q6_K.

//go:noescape
func q4kRowsAVX2x1(w *byte, x *int8, xd *float32, s *int32, nb, n int, out *float32, ostride int)

//go:noescape
func q4kRowsAVX2x2(w *byte, x *int8, xd *float32, s *int32, nb, n int, out *float32, ostride int)

//go:noescape
func q4kRowsAVX2x3(w *byte, x *int8, xd *float32, s *int32, nb, n int, out *float32, ostride int)

//go:noescape
func q4kRowsAVX2x4(w *byte, x *int8, xd *float32, s *int32, nb, n int, out *float32, ostride int)

//go:noescape
func q6kRowsAVX2x1(w *byte, x *int8, xd *float32, s *int16, nb, n int, out *float32, ostride int)

//go:noescape
func q6kRowsAVX2x2(w *byte, x *int8, xd *float32, s *int16, nb, n int, out *float32, ostride int)

//go:noescape
func q6kRowsAVX2x3(w *byte, x *int8, xd *float32, s *int16, nb, n int, out *float32, ostride int)

//go:noescape
func q6kRowsAVX2x4(w *byte, x *int8, xd *float32, s *int16, nb, n int, out *float32, ostride int)

//go:noescape
func q8_0RowsAVX2x1(w *byte, x *int8, xd *float32, nb, n int, out *float32, ostride int)

//go:noescape
func q8_0RowsAVX2x2(w *byte, x *int8, xd *float32, nb, n int, out *float32, ostride int)

//go:noescape
func q8_0RowsAVX2x3(w *byte, x *int8, xd *float32, nb, n int, out *float32, ostride int)

//go:noescape
func q8_0RowsAVX2x4(w *byte, x *int8, xd *float32, nb, n int, out *float32, ostride int)

//go:noescape
func q4_0RowsAVX2x1(w *byte, x *int8, xd *float32, nb, n int, out *float32, ostride int)

//go:noescape
func q4_0RowsAVX2x2(w *byte, x *int8, xd *float32, nb, n int, out *float32, ostride int)

//go:noescape
func q4_0RowsAVX2x3(w *byte, x *int8, xd *float32, nb, n int, out *float32, ostride int)

//go:noescape
func q4_0RowsAVX2x4(w *byte, x *int8, xd *float32, nb, n int, out *float32, ostride int)

var (
	q8_0RowsAVX2 = [4]func(w *byte, x *int8, xd *float32, nb, n int, out *float32, ostride int){
		q8_0RowsAVX2x1, q8_0RowsAVX2x2, q8_0RowsAVX2x3, q8_0RowsAVX2x4}
	q4_0RowsAVX2 = [4]func(w *byte, x *int8, xd *float32, nb, n int, out *float32, ostride int){
		q4_0RowsAVX2x1, q4_0RowsAVX2x2, q4_0RowsAVX2x3, q4_0RowsAVX2x4}
	q4kRowsAVX2 = [4]func(w *byte, x *int8, xd *float32, s *int32, nb, n int, out *float32, ostride int){
		q4kRowsAVX2x1, q4kRowsAVX2x2, q4kRowsAVX2x3, q4kRowsAVX2x4}
	q6kRowsAVX2 = [4]func(w *byte, x *int8, xd *float32, s *int16, nb, n int, out *float32, ostride int){
		q6kRowsAVX2x1, q6kRowsAVX2x2, q6kRowsAVX2x3, q6kRowsAVX2x4}
)

// quantRowsAVX2 is quantRowsAsm's AVX2 form: up to four activation rows a pass over weight rows
// [lo, hi) (a worker's share is a few kilobytes, so the next pass finds it in cache).
func quantRowsAVX2(out []float32, a *qActs, w *QMatrix, R, lo, hi int) {
	N, blk, rb := w.Rows, w.Type.BlockLen(), w.RowBytes()
	nb := w.Cols / blk
	rows := w.Data[lo*rb : hi*rb]
	for r0 := 0; r0 < R; r0 += 4 {
		rn := min(4, R-r0)
		xs, xd := a.qs[r0*nb*blk:(r0+rn)*nb*blk], a.d[r0*nb:(r0+rn)*nb]
		o := out[r0*N+lo : (r0+rn-1)*N+hi]
		switch w.Type {
		case QuantQ4_K:
			s := a.sum32[r0*nb*8 : (r0+rn)*nb*8]
			q4kRowsAVX2[rn-1](&rows[0], &xs[0], &xd[0], &s[0], nb, hi-lo, &o[0], N)
		case QuantQ6_K:
			s := a.sums[r0*nb*16 : (r0+rn)*nb*16]
			q6kRowsAVX2[rn-1](&rows[0], &xs[0], &xd[0], &s[0], nb, hi-lo, &o[0], N)
		case QuantQ8_0:
			q8_0RowsAVX2[rn-1](&rows[0], &xs[0], &xd[0], nb, hi-lo, &o[0], N)
		case QuantQ4_0:
			q4_0RowsAVX2[rn-1](&rows[0], &xs[0], &xd[0], nb, hi-lo, &o[0], N)
		}
	}
}
