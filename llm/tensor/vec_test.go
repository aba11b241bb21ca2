package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// vecLengths cover the empty slice, every tail length of the 32- and 8-wide loops, and long slices.
var vecLengths = []int{0, 1, 2, 7, 8, 9, 15, 16, 31, 32, 33, 39, 40, 63, 64, 65, 100, 1000, 4099}

// The slices start one element into their backing array so that no test relies on alignment.
func offsetSlice(rng *rand.Rand, n int) []float32 { return randomSlice(rng, n+1)[1:] }

func TestDot(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, impl := range []struct {
		name string
		dot  func(a, b []float32) float32
	}{{"Dot", Dot}, {"generic", dotGeneric}} {
		for _, n := range vecLengths {
			if n == 0 && impl.name == "generic" {
				continue
			}
			a, b := offsetSlice(rng, n), offsetSlice(rng, n)
			var want, mag float64
			for i := range a {
				want += float64(a[i]) * float64(b[i])
				mag += math.Abs(float64(a[i]) * float64(b[i]))
			}
			got := impl.dot(a, b)
			if d := math.Abs(float64(got) - want); d > float64(n+1)*mag/(1<<23) {
				t.Errorf("%s of length %d = %g, want %g", impl.name, n, got, want)
			}
		}
	}
}

func TestAxpyScaleAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	type op struct {
		name  string
		apply func(alpha float32, x, y []float32)
		want  func(alpha, x, y float32) float32
	}
	ops := []op{
		{"Axpy", Axpy, func(alpha, x, y float32) float32 { return y + alpha*x }},
		{"axpyGeneric", axpyGeneric, func(alpha, x, y float32) float32 { return y + alpha*x }},
		{"Scale", func(alpha float32, _, y []float32) { Scale(alpha, y) }, func(alpha, _, y float32) float32 { return alpha * y }},
		{"scaleGeneric", func(alpha float32, _, y []float32) { scaleGeneric(alpha, y) }, func(alpha, _, y float32) float32 { return alpha * y }},
		{"Add", func(_ float32, x, y []float32) { Add(y, x) }, func(_, x, y float32) float32 { return y + x }},
		{"addGeneric", func(_ float32, x, y []float32) { addGeneric(y, x) }, func(_, x, y float32) float32 { return y + x }},
	}
	for _, o := range ops {
		for _, n := range vecLengths {
			alpha := float32(rng.NormFloat64())
			x, y := offsetSlice(rng, n), offsetSlice(rng, n+3)
			orig := append([]float32(nil), y...)
			o.apply(alpha, x, y[:n])
			for i := range n {
				// alpha·x+y may be fused (one rounding) or not (two): allow one ulp of each term.
				w := o.want(alpha, x[i], orig[i])
				tol := 2 * (math.Abs(float64(alpha*x[i])) + math.Abs(float64(orig[i]))) / (1 << 23)
				if d := math.Abs(float64(y[i] - w)); d > tol {
					t.Fatalf("%s length %d: y[%d] = %g, want %g", o.name, n, i, y[i], w)
				}
			}
			for i := n; i < n+3; i++ {
				if y[i] != orig[i] {
					t.Fatalf("%s length %d: wrote past the end at %d", o.name, n, i)
				}
			}
		}
	}
}

func TestVectorHelpersRejectMismatchedLengths(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func()
	}{
		{"Dot", func() { Dot(make([]float32, 3), make([]float32, 4)) }},
		{"Axpy", func() { Axpy(1, make([]float32, 3), make([]float32, 4)) }},
		{"Add", func() { Add(make([]float32, 4), make([]float32, 3)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s with slices of lengths 3 and 4 did not panic", tc.name)
				}
			}()
			tc.call()
		})
	}
}

// DotRows and AxpyRows give what Dot and Axpy give row by row, bit for bit (a query's attention does
// not depend on which kernel computed it), for every tail length of their loops, rows of keys and
// values stride apart, and a window of one row or none.
func TestDotRowsAxpyRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, n := range vecLengths {
		for _, rows := range []int{0, 1, 3, 130} {
			stride := n + 7
			m := offsetSlice(rng, rows*stride+n)
			x, a := offsetSlice(rng, n), offsetSlice(rng, rows)
			got, want := offsetSlice(rng, rows), make([]float32, rows)
			DotRows(got, x, m, stride)
			for s := range rows {
				want[s] = Dot(x, m[s*stride:s*stride+n])
			}
			for s := range rows {
				if math.Float32bits(got[s]) != math.Float32bits(want[s]) {
					t.Fatalf("DotRows n=%d rows=%d: row %d = %g, Dot gives %g", n, rows, s, got[s], want[s])
				}
			}
			y := offsetSlice(rng, n)
			yWant := append([]float32(nil), y...)
			AxpyRows(y, a, m, stride)
			for s := range rows {
				Axpy(a[s], m[s*stride:s*stride+n], yWant)
			}
			for i := range n {
				if math.Float32bits(y[i]) != math.Float32bits(yWant[i]) {
					t.Fatalf("AxpyRows n=%d rows=%d: y[%d] = %g, Axpy gives %g", n, rows, i, y[i], yWant[i])
				}
			}
		}
	}
	for name, f := range map[string]func(){
		"DotRows":  func() { DotRows(make([]float32, 2), make([]float32, 4), make([]float32, 8), 5) },
		"AxpyRows": func() { AxpyRows(make([]float32, 4), make([]float32, 2), make([]float32, 9), 3) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s with rows outside m did not panic", name)
				}
			}()
			f()
		}()
	}
}
