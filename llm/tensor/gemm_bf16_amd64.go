//go:build amd64 && !purego

package tensor

import (
	"sync"

	"golang.org/x/sys/cpu"

	"github.com/lathe-ml/lathe/llm/cpuinfo"
)

//go:generate python3 gen_gemm_bf16_amd64.py

// The bfloat16 micro-kernels compute one 8×w tile of C (w = 48, 32 or 16) from packed panels of pairs
// along k (see gen_gemm_bf16_amd64.py): a[q*8+i] holds op(A)[i][2q] and [2q+1], b[q*w+j] holds
// op(B)[2q][j] and [2q+1][j], each pair one 32-bit word. C has row stride ldc and is added to when
// accumulate is non-zero.

//go:noescape
func bf16Kernel8x48(kp int, a, b *uint32, c *float32, ldc int, accumulate int)

//go:noescape
func bf16Kernel8x32(kp int, a, b *uint32, c *float32, ldc int, accumulate int)

//go:noescape
func bf16Kernel8x16(kp int, a, b *uint32, c *float32, ldc int, accumulate int)

// packTransPairs* write dst[q*dstStride+i] = (src[i*lds+2q], src[i*lds+2q+1]) for i < 8*rows8,
// q < 8*pairs8: a panel from a matrix whose rows run along k.
//
//go:noescape
func packTransPairsBF16(dst *uint32, dstStride int, src *uint16, lds, rows8, pairs8 int)

//go:noescape
func packTransPairsF32(dst *uint32, dstStride int, src *float32, lds, rows8, pairs8 int)

// packRowPairs16* write dst[q*dstStride+j] = (src[2q*lds+j], src[(2q+1)*lds+j]) for q < pairs,
// j < 16*cols16: a panel from a matrix whose columns run along k; the 8 variants do 8 columns.
//
//go:noescape
func packRowPairs16BF16(dst *uint32, dstStride int, src *uint16, lds, pairs, cols16 int)

//go:noescape
func packRowPairs16F32(dst *uint32, dstStride int, src *float32, lds, pairs, cols16 int)

// packRowPairs48* pack the 48-wide panels of a whole B block whose columns run along k, row pair by
// row pair: dst[p*panelStride + q*48 + j] = (src[2q*lds + 48p+j], src[(2q+1)*lds + 48p+j]) for
// q < pairs, j < 48, p < panels.
//
//go:noescape
func packRowPairs48BF16(dst *uint32, panelStride int, src *uint16, lds, pairs, panels int)

//go:noescape
func packRowPairs48F32(dst *uint32, panelStride int, src *float32, lds, pairs, panels int)

//go:noescape
func packRowPairs8BF16(dst *uint32, dstStride int, src *uint16, lds, pairs, cols16 int)

//go:noescape
func packRowPairs8F32(dst *uint32, dstStride int, src *float32, lds, pairs, cols16 int)

// bf16Native: VDPBF16PS and VCVTNE(2)PS2BF16 (AVX512_BF16), on 256-bit registers too (AVX512VL).
// Tests set it false to run the widening fallback on any CPU.
var bf16Native = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512BF16 && cpu.X86.HasAVX2

// Blocking. A kc slice is 256 pairs: an 8-row A micro-panel (8 KiB) stays in L1 while the kernel
// sweeps a kc×nc B block of pairs sized to three quarters of this CPU's L2 (bf16Blocking): 384 columns
// (384 KiB) on a 512 KiB L2, 768 on Zen 4's 1 MiB, 1536 on a Xeon's 2 MiB.
const (
	bf16KC    = 512
	bf16MaxNC = 1536
)

var bf16NC = bf16Blocking(cpuinfo.Detect())

// bf16Blocking is nc for caches c: a multiple of the 48-wide kernel, from 96 to bf16MaxNC. A CPU that
// reports no L2 gets 384, the block first measured on Zen 4 and 5.
func bf16Blocking(c cpuinfo.Caches) int {
	if c.L2 == 0 {
		return 384
	}
	return min(max(c.L2*3/4/(bf16KC/2*4)/48*48, 96), bf16MaxNC)
}

// bf16Work is one worker's packed panels.
type bf16Work struct {
	pa, pb []uint32
	edge   [8 * 48]float32
}

var bf16Works = sync.Pool{New: func() any { return new(bf16Work) }}

func growU32(s []uint32, n int) []uint32 {
	if cap(s) < n {
		return make([]uint32, n)
	}
	return s[:n]
}

// matmulBF16Native splits the product between the workers along its larger side, so that no worker
// packs more than its share of the larger operand: the columns of C when B is at least as large as A
// (n >= m: a weight against a batch's activations), in whole 16-column units so that each worker's
// range is panels of 48 and at most one narrower, each worker packing its own B panels and the whole
// (smaller) A; otherwise the rows, in whole 8-row panels, each worker packing its A rows and the
// whole B (a weight gradient dYᵀ·X with more outputs than inputs, the output head's). No worker waits
// for another until the end, so both cores of a two-core machine work the whole product.
func matmulBF16Native(c []float32, ldc int, a, b operand, m, n, k int, accumulate, threaded bool) {
	byRows := m > n
	units := (n + 15) / 16
	if byRows {
		units = (m + 7) / 8
	}
	w := 1
	if threaded && Workers() > 1 && m*n*k >= 1<<20 {
		w = min(Workers(), units)
	}
	if w <= 1 {
		bf16Columns(c, ldc, a, b, m, n, k, accumulate, 0, n)
		return
	}
	Parallel(w, func(lo, hi int) {
		for s := lo; s < hi; s++ {
			if byRows {
				i0, i1 := units*s/w*8, min(m, units*(s+1)/w*8)
				bf16Columns(c[i0*ldc:], ldc, a.rowsFrom(i0), b, i1-i0, n, k, accumulate, 0, n)
				continue
			}
			bf16Columns(c, ldc, a, b, m, n, k, accumulate, units*s/w*16, min(n, units*(s+1)/w*16))
		}
	})
}

// rowsFrom is op(A) from its row i0 on (an operand stored transposed starts at column i0).
func (o operand) rowsFrom(i0 int) operand {
	off := i0 * o.ld
	if o.trans {
		off = i0
	}
	if o.h != nil {
		o.h = o.h[off:]
	} else {
		o.f = o.f[off:]
	}
	return o
}

// bf16Panel is one packed column panel of a B block: columns j..j+cols-1, packed w wide at off.
type bf16Panel struct{ j, w, cols, off int }

// bf16Columns computes columns j0..j1-1 of C.
func bf16Columns(c []float32, ldc int, a, b operand, m, n, k int, accumulate bool, j0, j1 int) {
	ws := bf16Works.Get().(*bf16Work)
	defer bf16Works.Put(ws)
	mPanels := (m + 7) / 8
	var panels [bf16MaxNC / 16]bf16Panel
	for p0 := 0; p0 < k; p0 += bf16KC {
		kb := min(bf16KC, k-p0)
		kp := (kb + 1) / 2
		acc := 0
		if accumulate || p0 > 0 {
			acc = 1
		}
		ws.pa = growU32(ws.pa, mPanels*8*kp)
		for jc := j0; jc < j1; jc += bf16NC {
			je := min(jc+bf16NC, j1)
			np, off := 0, 0
			for j := jc; j < je; j += 48 {
				cols := min(48, je-j)
				w := (cols + 15) / 16 * 16
				panels[np] = bf16Panel{j, w, cols, off}
				np++
				off += w * kp
			}
			ws.pb = growU32(ws.pb, off)
			packBBlock(ws.pb, b, p0, kb, panels[:np])
			for ir := range mPanels {
				i0 := ir * 8
				rows := min(8, m-i0)
				ap := ws.pa[ir*8*kp : (ir+1)*8*kp]
				if jc == j0 {
					packAPanel(ap, a, p0, kb, i0, rows)
				}
				for _, p := range panels[:np] {
					bp := &ws.pb[p.off]
					if rows == 8 && p.cols == p.w {
						bf16Kernel(p.w, kp, &ap[0], bp, &c[i0*ldc+p.j], ldc, acc)
						continue
					}
					// A ragged tile: the whole tile into the scratch, then the part inside C.
					bf16Kernel(p.w, kp, &ap[0], bp, &ws.edge[0], p.w, 0)
					for i := range rows {
						ci := c[(i0+i)*ldc+p.j : (i0+i)*ldc+p.j+p.cols]
						ei := ws.edge[i*p.w : i*p.w+p.cols]
						if acc != 0 {
							for x := range ci {
								ci[x] += ei[x]
							}
						} else {
							copy(ci, ei)
						}
					}
				}
			}
		}
	}
}

func bf16Kernel(w, kp int, a, b *uint32, c *float32, ldc, acc int) {
	switch w {
	case 48:
		bf16Kernel8x48(kp, a, b, c, ldc, acc)
	case 32:
		bf16Kernel8x32(kp, a, b, c, ldc, acc)
	default:
		bf16Kernel8x16(kp, a, b, c, ldc, acc)
	}
}

// packBBlock packs the panels of a B block, rows p0..p0+kb-1 of op(B). Where op(B)'s columns run
// along k (B stored k×n: a frozen weight in the backward dY·W) its full 48-wide panels are packed
// together, each pair of rows read once from end to end; the rest panel by panel.
func packBBlock(dst []uint32, b operand, p0, kb int, panels []bf16Panel) {
	full, kp := kb/2, (kb+1)/2
	whole := 0
	for whole < len(panels) && panels[whole].cols == 48 {
		whole++
	}
	if b.trans || full == 0 || whole == 0 {
		whole = 0
	} else {
		j := panels[0].j
		_ = dst[whole*48*kp-1]
		last := (p0+2*full-1)*b.ld + j + 48*whole - 1
		if b.h != nil {
			_ = b.h[last]
			packRowPairs48BF16(&dst[0], 48*kp, &b.h[p0*b.ld+j], b.ld, full, whole)
		} else {
			_ = b.f[last]
			packRowPairs48F32(&dst[0], 48*kp, &b.f[p0*b.ld+j], b.ld, full, whole)
		}
		if full < kp { // an odd kb: the last pair holds one row
			for _, p := range panels[:whole] {
				fillB(dst[p.off:p.off+48*kp], 48, b, p0, kb, p.j, full, kp, 0, 48)
			}
		}
	}
	for _, p := range panels[whole:] {
		packBPanel(dst[p.off:p.off+p.w*kp], p.w, b, p0, kb, p.j, p.cols)
	}
}

// packBPanel packs rows p0..p0+kb-1 of op(B), columns j..j+cols-1, as pairs w wide (zero beyond cols
// and, for an odd kb, in the high half of the last pair).
func packBPanel(dst []uint32, w int, b operand, p0, kb, j, cols int) {
	full, kp := kb/2, (kb+1)/2
	if b.trans { // stored n×k: each column of op(B) is a row, k along it
		rows8, pairs8 := cols/8, full/8
		if rows8 > 0 && pairs8 > 0 {
			if b.h != nil {
				packTransPairsBF16(&dst[0], w, &b.h[j*b.ld+p0], b.ld, rows8, pairs8)
			} else {
				packTransPairsF32(&dst[0], w, &b.f[j*b.ld+p0], b.ld, rows8, pairs8)
			}
		} else {
			rows8, pairs8 = 0, 0
		}
		fillB(dst, w, b, p0, kb, j, 8*pairs8, kp, 0, 8*rows8)
		fillB(dst, w, b, p0, kb, j, 0, kp, 8*rows8, cols)
	} else { // stored k×n: rows of op(B)
		cols16 := cols / 16
		if cols16 > 0 && full > 0 {
			if b.h != nil {
				packRowPairs16BF16(&dst[0], w, &b.h[p0*b.ld+j], b.ld, full, cols16)
			} else {
				packRowPairs16F32(&dst[0], w, &b.f[p0*b.ld+j], b.ld, full, cols16)
			}
		} else {
			cols16, full = 0, 0
		}
		fillB(dst, w, b, p0, kb, j, 0, full, 16*cols16, cols)
		fillB(dst, w, b, p0, kb, j, full, kp, 0, cols)
	}
	if cols < w {
		for q := range kp {
			clear(dst[q*w+cols : q*w+w])
		}
	}
}

// fillB packs pairs q0..q1-1 of columns c0..c1-1 of a B panel one element at a time (the edges the
// assembly leaves).
func fillB(dst []uint32, w int, b operand, p0, kb, j, q0, q1, c0, c1 int) {
	for q := q0; q < q1; q++ {
		p := p0 + 2*q
		for x := c0; x < c1; x++ {
			v := uint32(b.bits(p, j+x))
			if 2*q+1 < kb {
				v |= uint32(b.bits(p+1, j+x)) << 16
			}
			dst[q*w+x] = v
		}
	}
}

// packAPanel packs rows i0..i0+rows-1 of op(A), k values p0..p0+kb-1, as pairs 8 wide (zero rows
// beyond rows and, for an odd kb, a zero high half in the last pair).
func packAPanel(dst []uint32, a operand, p0, kb, i0, rows int) {
	full, kp := kb/2, (kb+1)/2
	q0 := 0
	if rows == 8 {
		switch {
		case !a.trans && full >= 8: // stored m×k: rows run along k
			pairs8 := full / 8
			if a.h != nil {
				packTransPairsBF16(&dst[0], 8, &a.h[i0*a.ld+p0], a.ld, 1, pairs8)
			} else {
				packTransPairsF32(&dst[0], 8, &a.f[i0*a.ld+p0], a.ld, 1, pairs8)
			}
			q0 = 8 * pairs8
		case a.trans && full > 0: // stored k×m
			if a.h != nil {
				packRowPairs8BF16(&dst[0], 8, &a.h[p0*a.ld+i0], a.ld, full, 0)
			} else {
				packRowPairs8F32(&dst[0], 8, &a.f[p0*a.ld+i0], a.ld, full, 0)
			}
			q0 = full
		}
	}
	for q := q0; q < kp; q++ {
		p := p0 + 2*q
		for i := range rows {
			v := uint32(a.bits(i0+i, p))
			if 2*q+1 < kb {
				v |= uint32(a.bits(i0+i, p+1)) << 16
			}
			dst[q*8+i] = v
		}
	}
	if rows < 8 {
		for q := range kp {
			clear(dst[q*8+rows : q*8+8])
		}
	}
}
