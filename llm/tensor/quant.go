package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// QuantType is a ggml block format a QMatrix holds (the layouts of ggml-common.h; llm/format/gguf
// reads and writes the same bytes).
type QuantType uint8

const (
	QuantQ8_0 QuantType = iota + 1 // 32 values: f16 d, 32 int8; x = d·q
	QuantQ4_0                      // 32 values: f16 d, 16 bytes of nibbles; x = d·(q−8)
	QuantQ4_K                      // 256 values: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 of nibbles
	QuantQ6_K                      // 256 values: 128 bytes low nibbles, 64 high pairs, 16 int8 scales, f16 d
)

// BlockLen is the number of values one block holds.
func (t QuantType) BlockLen() int {
	if t == QuantQ4_K || t == QuantQ6_K {
		return 256
	}
	return 32
}

// BlockBytes is the size of one block.
func (t QuantType) BlockBytes() int {
	switch t {
	case QuantQ8_0:
		return 34
	case QuantQ4_0:
		return 18
	case QuantQ4_K:
		return 144
	case QuantQ6_K:
		return 210
	}
	return 0
}

func (t QuantType) String() string {
	switch t {
	case QuantQ8_0:
		return "Q8_0"
	case QuantQ4_0:
		return "Q4_0"
	case QuantQ4_K:
		return "Q4_K"
	case QuantQ6_K:
		return "Q6_K"
	}
	return fmt.Sprintf("QuantType(%d)", uint8(t))
}

// QMatrix is a [Rows, Cols] matrix held in ggml blocks, row-major: each row is Cols/BlockLen whole
// blocks, so rows can be split, permuted or streamed independently.
type QMatrix struct {
	Type       QuantType
	Rows, Cols int
	Data       []byte
}

// NewQMatrix checks that data holds a [rows, cols] matrix of type t.
func NewQMatrix(t QuantType, rows, cols int, data []byte) (*QMatrix, error) {
	if t.BlockBytes() == 0 {
		return nil, fmt.Errorf("unknown quantized type %d", t)
	}
	if cols%t.BlockLen() != 0 {
		return nil, fmt.Errorf("%s rows of %d values are not whole %d-value blocks", t, cols, t.BlockLen())
	}
	if want := rows * cols / t.BlockLen() * t.BlockBytes(); len(data) != want {
		return nil, fmt.Errorf("%s matrix [%d, %d] takes %d bytes, got %d", t, rows, cols, want, len(data))
	}
	return &QMatrix{Type: t, Rows: rows, Cols: cols, Data: data}, nil
}

// RowBytes is the size of one row.
func (q *QMatrix) RowBytes() int { return q.Cols / q.Type.BlockLen() * q.Type.BlockBytes() }

// Row returns row i's bytes.
func (q *QMatrix) Row(i int) []byte { rb := q.RowBytes(); return q.Data[i*rb : (i+1)*rb] }

// qActs is an activation matrix [R, C] quantized for the integer dot products, as ggml's q8_0 and
// q8_K blocks: per block of actBlock values (32 against Q8_0/Q4_0 weights, 256 against the K formats)
// a scale d = amax/127 (rounded to float16 for 32-value blocks, as q8_0 stores it) and int8 values
// q = round(x/d), plus the sum of every 16 consecutive q (what
// the weight formats' offsets and mins multiply).
type qActs struct {
	qs    []int8
	d     []float32
	sums  []int16
	sum32 []int32 // sums of every 32 consecutive q (Q4_K's mins multiply them)
}

var actPool = sync.Pool{New: func() any { return new(qActs) }}

// quantizeActs rounds x [R, C] to int8 blocks of blk values. Rounding moves each value by at most d/2,
// which bounds the products' error (see QuantMatMul).
func quantizeActs(x []float32, R, C, blk int) *qActs {
	a := actPool.Get().(*qActs)
	a.qs = growQ(a.qs, R*C)
	a.d = growQ(a.d, R*C/blk)
	a.sums = growQ(a.sums, R*C/16)
	a.sum32 = growQ(a.sum32, R*C/32)
	if quantizeActsAsm(a, x, blk) {
		if blk == 32 {
			for b, d := range a.d {
				a.d[b] = half.F16ToF32(half.F32ToF16(d))
			}
		}
	} else {
		quantizeActsGo(a, x, R*C/blk, blk)
	}
	for i := range a.sum32 {
		a.sum32[i] = int32(a.sums[2*i]) + int32(a.sums[2*i+1])
	}
	return a
}

// quantizeActsGo is quantizeActs' block loop: a.qs, a.d and a.sums of nb blocks of blk values.
func quantizeActsGo(a *qActs, x []float32, nb, blk int) {
	for b := range nb {
		xs := x[b*blk : (b+1)*blk]
		qs := a.qs[b*blk : (b+1)*blk]
		var amax float32
		for _, v := range xs {
			amax = max(amax, math.Float32frombits(math.Float32bits(v)&0x7fffffff))
		}
		d := amax / 127
		a.d[b] = d
		if d == 0 {
			clear(qs)
			clear(a.sums[b*blk/16 : (b+1)*blk/16])
			continue
		}
		id := 1 / d
		if blk == 32 {
			// ggml's q8_0 stores its scale in float16: so does this, so that a Q8_0 or Q4_0 file
			// decodes to llama.cpp's logits (measured: equal to 6 digits on random llamas, where tiny
			// activations make the float16 scale subnormal and a float32 one differed by 1%).
			a.d[b] = half.F16ToF32(half.F32ToF16(d))
		}
		for i, v := range xs {
			qs[i] = int8(math.RoundToEven(float64(v * id)))
		}
		for g := 0; g < blk; g += 16 {
			var s int16
			for _, q := range qs[g : g+16] {
				s += int16(q)
			}
			a.sums[(b*blk+g)/16] = s
		}
	}
}

func growQ[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// QuantMatMul sets out[R, w.Rows] = x[R, w.Cols]·wᵀ without widening w: x is quantized once to int8
// blocks (ggml's q8_0 against Q8_0/Q4_0 weights, q8_K against Q4_K/Q6_K), each weight block's
// integers are dotted with the activations' in int32 (VPDPBUSD where the CPU has AVX512_VNNI), and
// the block scales are applied to each block's sum. Every weight block is read once for all R rows.
//
// The only rounding beyond float32 arithmetic is the activations': an output differs from the
// product with the dequantized weights by at most Σ_blocks (d_x/2)·Σ|w| over its row (plus, for
// 32-value blocks, the float16 rounding of d_x: 127·2⁻¹¹·d_x more per value while d_x is a normal
// float16).
func QuantMatMul(out, x []float32, w *QMatrix, R int) {
	N, C := w.Rows, w.Cols
	if len(x) < R*C || len(out) < R*N {
		panic(fmt.Sprintf("tensor: QuantMatMul [%d, %d]·[%d, %d]ᵀ with %d inputs, %d outputs", R, C, N, C, len(x), len(out)))
	}
	blk := 32
	if w.Type == QuantQ4_K || w.Type == QuantQ6_K {
		blk = 256
	}
	a := quantizeActs(x[:R*C], R, C, blk)
	// Split the output rows, 16 at a time, in about eight ranges a worker taken in turn: each worker
	// streams its share of the weights once. A small matrix runs on this thread (handing it over costs
	// more than it saves).
	if N*C < 1<<15 {
		quantRows(out, a, w, R, 0, N)
	} else {
		blocks := (N + 15) / 16
		ParallelRanges(blocks, blocks/(rangesPerWorker*Workers()), func(lo, hi int) { quantRows(out, a, w, R, lo*16, min(hi*16, N)) })
	}
	actPool.Put(a)
}

// quantRows computes out[r, o] for o in [lo, hi) and every row r.
func quantRows(out []float32, a *qActs, w *QMatrix, R, lo, hi int) {
	if quantRowsAsm(out, a, w, R, lo, hi) {
		return
	}
	N, C, rb := w.Rows, w.Cols, w.RowBytes()
	var acc [NarrowRows]float32
	for r0 := 0; r0 < R; r0 += NarrowRows {
		rn := min(NarrowRows, R-r0)
		for o := lo; o < hi; o++ {
			row := w.Data[o*rb : (o+1)*rb]
			dots := acc[:rn]
			clear(dots)
			switch w.Type {
			case QuantQ8_0:
				dotQ8_0(dots, row, a, r0, C)
			case QuantQ4_0:
				dotQ4_0(dots, row, a, r0, C)
			case QuantQ4_K:
				dotQ4_K(dots, row, a, r0, C)
			case QuantQ6_K:
				dotQ6_K(dots, row, a, r0, C)
			}
			for r, v := range dots {
				out[(r0+r)*N+o] = v
			}
		}
	}
}

// f16At decodes the float16 at b: normal numbers by moving the bits (the common case, inlined),
// zeros, subnormals, infinities and NaNs by half.F16ToF32.
func f16At(b []byte) float32 {
	h := uint32(binary.LittleEndian.Uint16(b))
	if e := h >> 10 & 31; e-1 < 30 {
		return math.Float32frombits(h>>15<<31 | (e+112)<<23 | (h&1023)<<13)
	}
	return half.F16ToF32(uint16(h))
}

// dot32 is Σ w[i]·x[i] over 32 int8 pairs.
func dot32(w, x []int8) int32 {
	w, x = w[:32], x[:32]
	var s int32
	for i := range 32 {
		s += int32(w[i]) * int32(x[i])
	}
	return s
}

// dotQ8_0 adds row·x_r for the len(dots) activation rows from r0: Σ_b d_w·d_x·Σ q_w·q_x.
func dotQ8_0(dots []float32, row []byte, a *qActs, r0, C int) {
	nb := C / 32
	if dotQ8_0Asm(dots, row, a, r0, C) {
		return
	}
	for b := range nb {
		blk := row[b*34 : b*34+34]
		dw := f16At(blk)
		qw := bytesAsInt8(blk[2:34])
		for r := range dots {
			i := (r0+r)*nb + b
			dots[r] += dw * a.d[i] * float32(dot32(qw, a.qs[i*32:]))
		}
	}
}

// dotQ4_0: x_w = d_w·(q−8), so a block adds d_w·d_x·(Σ q·q_x − 8·Σ q_x).
func dotQ4_0(dots []float32, row []byte, a *qActs, r0, C int) {
	nb := C / 32
	if dotQ4_0Asm(dots, row, a, r0, C) {
		return
	}
	var q [32]int8
	for b := range nb {
		blk := row[b*18 : b*18+18]
		dw := f16At(blk)
		for j, v := range blk[2:18] {
			q[j], q[j+16] = int8(v&0xf), int8(v>>4)
		}
		for r := range dots {
			i := (r0+r)*nb + b
			s := dot32(q[:], a.qs[i*32:]) - 8*int32(a.sums[2*i]+a.sums[2*i+1])
			dots[r] += dw * a.d[i] * float32(s)
		}
	}
}

// dotQ4_K: sub-block j has x_w = d·sc_j·q − dmin·m_j, so a super-block adds
// d_x·(d·Σ_j sc_j·Σ q·q_x − dmin·Σ_j m_j·Σ q_x).
func dotQ4_K(dots []float32, row []byte, a *qActs, r0, C int) {
	nb := C / 256
	if dotQ4_KAsm(dots, row, a, r0, C) {
		return
	}
	var q [256]int8
	var sc, mn [8]int32
	for b := range nb {
		blk := row[b*144 : b*144+144]
		d, dmin := f16At(blk), f16At(blk[2:])
		unpackScalesK4(blk[4:16], &sc, &mn)
		for c := range 4 {
			for l, v := range blk[16+32*c : 48+32*c] {
				q[64*c+l], q[64*c+32+l] = int8(v&0xf), int8(v>>4)
			}
		}
		for r := range dots {
			i := (r0+r)*nb + b
			xs := a.qs[i*256 : i*256+256]
			s32 := a.sum32[i*8 : i*8+8 : i*8+8]
			msum := mn[0]*s32[0] + mn[1]*s32[1] + mn[2]*s32[2] + mn[3]*s32[3] +
				mn[4]*s32[4] + mn[5]*s32[5] + mn[6]*s32[6] + mn[7]*s32[7]
			var isum int32
			for j := range 8 {
				isum += sc[j] * dot32(q[32*j:], xs[32*j:])
			}
			dots[r] += a.d[i] * (d*float32(isum) - dmin*float32(msum))
		}
	}
}

// unpackScalesK4 unpacks Q4_K's eight 6-bit scales and mins at once (ggml's utmp shuffle: the three
// little-endian words of the 12 bytes become scales 0-7 and mins 0-7).
func unpackScalesK4(q []byte, sc, mn *[8]int32) {
	u0, u1, u2 := binary.LittleEndian.Uint32(q), binary.LittleEndian.Uint32(q[4:]), binary.LittleEndian.Uint32(q[8:])
	const k1, k2, k3 = 0x3f3f3f3f, 0x0f0f0f0f, 0x03030303
	s0 := u0 & k1                    // scales 0-3
	s1 := u2&k2 | (u0>>6&k3)<<4      // scales 4-7
	m0 := u1 & k1                    // mins 0-3
	m1 := (u2>>4)&k2 | (u1>>6&k3)<<4 // mins 4-7
	for j := range 4 {
		sc[j], sc[4+j] = int32(s0>>(8*j)&0xff), int32(s1>>(8*j)&0xff)
		mn[j], mn[4+j] = int32(m0>>(8*j)&0xff), int32(m1>>(8*j)&0xff)
	}
}

// dotQ6_K: group g (16 values) has x_w = d·s_g·(q−32), so a super-block adds
// d_x·d·Σ_g s_g·(Σ q·q_x − 32·Σ q_x).
func dotQ6_K(dots []float32, row []byte, a *qActs, r0, C int) {
	nb := C / 256
	var q [256]int8
	for b := range nb {
		blk := row[b*210 : b*210+210]
		d := f16At(blk[208:])
		sc := blk[192:208]
		if hasQuantAsm() {
			for r := range dots {
				i := (r0+r)*nb + b
				isum, _ := q6kIsumAsm(blk, a.qs[i*256:i*256+256])
				dots[r] += a.d[i] * d * float32(isum)
			}
			continue
		}
		for n := range 2 {
			ql, qh := blk[64*n:64*n+64], blk[128+32*n:128+32*n+32]
			o := q[128*n : 128*n+128]
			for l := range 32 {
				o[l] = int8(ql[l]&0xf | (qh[l]&3)<<4)
				o[l+32] = int8(ql[l+32]&0xf | (qh[l]>>2&3)<<4)
				o[l+64] = int8(ql[l]>>4 | (qh[l]>>4&3)<<4)
				o[l+96] = int8(ql[l+32]>>4 | (qh[l]>>6&3)<<4)
			}
		}
		for r := range dots {
			i := (r0+r)*nb + b
			xs := a.qs[i*256 : i*256+256]
			sums := a.sums[i*16 : i*16+16]
			var isum int32
			for g := range 16 {
				var s int32
				for k := range 16 {
					s += int32(q[16*g+k]) * int32(xs[16*g+k])
				}
				isum += int32(int8(sc[g])) * (s - 32*int32(sums[g]))
			}
			dots[r] += a.d[i] * d * float32(isum)
		}
	}
}

// bytesAsInt8 views b as int8 (the same bytes, two's complement).
func bytesAsInt8(b []byte) []int8 {
	return unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(b))), len(b))
}

// WidenRows sets dst to rows [r0, r1) of q as float32 (dst holds (r1−r0)·Cols values), with SIMD
// kernels that compute what llm/format/gguf's dequantizers do, bit for bit (Q8_0, Q4_K and Q6_K on
// AVX2 machines). It reports false, leaving dst untouched, where there is no kernel: the caller then
// dequantizes with gguf.
func (q *QMatrix) WidenRows(dst []float32, r0, r1 int) bool {
	if r0 < 0 || r1 > q.Rows || r0 > r1 || len(dst) < (r1-r0)*q.Cols {
		panic(fmt.Sprintf("tensor: WidenRows [%d, %d) of %d rows into %d values", r0, r1, q.Rows, len(dst)))
	}
	if r0 == r1 {
		return true
	}
	rb := q.RowBytes()
	return widenQuantSIMD(dst, q.Data[r0*rb:r1*rb], q.Type, (r1-r0)*q.Cols/q.Type.BlockLen())
}
