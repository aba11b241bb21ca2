//go:build amd64 && !purego

package tensor

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// The AVX2 narrow products (CPUs without AVX-512) give the reference's results on every shape, on
// an AVX-512 machine too.
func TestMatMulNarrowAVX2(t *testing.T) {
	if !hasAVX2 {
		t.Skip("this CPU has no AVX2")
	}
	defer func(v bool) { narrowAVX512 = v }(narrowAVX512)
	narrowAVX512 = false
	runNarrowShapes(t)
}

// Each AVX2 block kernel against the float64 reference, with strides wider than k (rows of a larger
// matrix) and k at, below and between its 8- and 16-column steps; the entries outside the block must
// stay as they were.
func TestNarrowKernelsAVX2(t *testing.T) {
	if !hasAVX2 {
		t.Skip("this CPU has no AVX2")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, k := range []int{8, 16, 24, 40, 64, 200} {
		ldx, ldw, ldo := k+3, k+5, 7
		a, b := make([]float32, 3*ldx), make([]float32, 4*ldw)
		for i := range a {
			a[i] = rng.Float32()*2 - 1
		}
		bh := make([]uint16, len(b))
		for i := range b {
			bh[i] = half.F32ToBF16(rng.Float32()*2 - 1)
			b[i] = half.BF16ToF32(bh[i]) // exact in both types, so one reference serves both
		}
		for r := 1; r <= 3; r++ {
			for _, kind := range []string{"f32", "bf16"} {
				out := make([]float32, 3*ldo)
				for i := range out {
					out[i] = -7
				}
				if kind == "f32" {
					f32AVX2.dot4x[r-1](&a[0], ldx, &b[0], ldw, k, &out[0], ldo)
				} else {
					bf16AVX2.dot4x[r-1](&a[0], ldx, &bh[0], ldw, k, &out[0], ldo)
				}
				for i := range 3 {
					for q := range ldo {
						var want float64 = -7
						if i < r && q < 4 {
							want = 0
							for p := range k {
								want += float64(a[i*ldx+p]) * float64(b[q*ldw+p])
							}
						}
						if got := out[i*ldo+q]; math.Abs(float64(got)-want) > 1e-6*float64(k) {
							t.Fatalf("dot4x%d %s k=%d: out[%d][%d] = %v, want %v", r, kind, k, i, q, got, want)
						}
					}
				}
			}
		}
	}
}
