package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestSoftmax(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, tc := range []struct {
		name   string
		n      int
		spread float64 // standard deviation of the logits
		negInf int     // how many entries are −Inf (masked)
	}{
		{"one entry", 1, 1, 0},
		{"short tail only", 7, 3, 0},
		{"one vector", 8, 3, 0},
		{"vector and tail", 37, 3, 0},
		{"vocabulary-sized", 32000, 4, 0},
		{"wide logits underflow", 1000, 60, 0},
		{"masked entries", 100, 2, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := make([]float32, tc.n)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * tc.spread)
			}
			for i := 0; i < tc.negInf; i++ {
				x[rng.IntN(tc.n-1)+1] = float32(math.Inf(-1))
			}
			mx := math.Inf(-1)
			for _, v := range x {
				mx = math.Max(mx, float64(v))
			}
			var sum float64
			for _, v := range x {
				sum += math.Exp(float64(v) - mx)
			}
			wantLSE := mx + math.Log(sum)
			want := make([]float64, len(x))
			for i, v := range x {
				want[i] = math.Exp(float64(v)-mx) / sum
			}

			lse := Softmax(x)
			if d := math.Abs(float64(lse) - wantLSE); d > 1e-5*math.Max(1, math.Abs(wantLSE)) {
				t.Errorf("log-sum-exp = %g, want %g", lse, wantLSE)
			}
			var total float64
			for i, p := range x {
				total += float64(p)
				if d := math.Abs(float64(p) - want[i]); d > 1e-5*want[i]+1e-30 {
					t.Fatalf("p[%d] = %g, want %g", i, p, want[i])
				}
			}
			if math.Abs(total-1) > 1e-4 {
				t.Errorf("probabilities sum to %g", total)
			}
		})
	}
}

func TestSoftmaxRejectsEmpty(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Softmax of an empty slice did not panic")
		}
	}()
	Softmax(nil)
}

func TestMaxOf(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for _, n := range vecLengths[1:] {
		x := offsetSlice(rng, n)
		x[rng.IntN(n)] = 100 // the maximum, wherever it falls (body or tail)
		if got := maxOf(x); got != 100 {
			t.Errorf("max of %d entries = %g, want 100", n, got)
		}
	}
}

// BenchmarkSoftmax is one row of the output head's logits (a 32000-token vocabulary): the training
// step runs it for every counted token.
func BenchmarkSoftmax(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	src := make([]float32, 32000)
	for i := range src {
		src[i] = float32(rng.NormFloat64() * 3)
	}
	x := make([]float32, len(src))
	for b.Loop() {
		copy(x, src)
		Softmax(x)
	}
	b.ReportMetric(float64(len(x))*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
}
