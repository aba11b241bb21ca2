package format

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// Worked by hand: one head of dim 4, one column. HF rotates (0,2) and (1,3); GGUF rotates (0,1)
// and (2,3), so the converter's permute puts HF rows [r0 r1 r2 r3] in the order [r0 r2 r1 r3].
func TestPermuteHFToGGUFByHand(t *testing.T) {
	got, err := PermuteHFToGGUF([]float32{10, 11, 12, 13, 20, 21, 22, 23}, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{10, 12, 11, 13, 20, 22, 21, 23}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Two columns: whole rows move.
	got, _ = PermuteHFToGGUF([]float32{0, 1, 2, 3, 4, 5, 6, 7}, 1, 2)
	if want := []float32{0, 1, 4, 5, 2, 3, 6, 7}; !reflect.DeepEqual(got, want) {
		t.Errorf("two columns: got %v, want %v", got, want)
	}
}

// numpyPermute spells out convert_hf_to_gguf.py's permute with explicit strides:
// w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2).reshape(rows, cols).
func numpyPermute(w []float32, nHead, cols int) []float32 {
	rows := len(w) / cols
	half := rows / nHead / 2
	// source strides of the reshaped (n_head, 2, half, cols) array
	sH, s2, sHalf := 2*half*cols, half*cols, cols
	out := make([]float32, 0, len(w))
	// iterate the swapped array (n_head, half, 2, cols) in C order
	for h := 0; h < nHead; h++ {
		for i := 0; i < half; i++ {
			for j := 0; j < 2; j++ {
				for c := 0; c < cols; c++ {
					out = append(out, w[h*sH+j*s2+i*sHalf+c])
				}
			}
		}
	}
	return out
}

func TestPermuteMatchesConverterAndInverts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ heads, headDim, cols int }{{8, 8, 64}, {4, 8, 64}, {3, 6, 5}, {2, 128, 3}, {5, 2, 1}} {
		w := make([]float32, tc.heads*tc.headDim*tc.cols)
		for i := range w {
			w[i] = r.Float32()
		}
		gg, err := PermuteHFToGGUF(w, tc.heads, tc.cols)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gg, numpyPermute(w, tc.heads, tc.cols)) {
			t.Errorf("%+v: differs from the converter's permute", tc)
		}
		back, _ := PermuteGGUFToHF(gg, tc.heads, tc.cols)
		if !reflect.DeepEqual(back, w) {
			t.Errorf("%+v: GGUFToHF(HFToGGUF(w)) != w", tc)
		}
	}
	if _, err := PermuteHFToGGUF(make([]float32, 12), 2, 2); err == nil {
		t.Error("odd head dim accepted")
	}
	if _, err := PermuteHFToGGUF(make([]float32, 10), 4, 1); err == nil {
		t.Error("rows not divisible by heads accepted")
	}
}

// The point of the permutation: rotating half-split pairs of HF rows gives the same attention
// scores as rotating adjacent pairs of the permuted rows.
func TestPermutedRowsWithAdjacentRopeMatchHalfRope(t *testing.T) {
	const heads, hd, dim, pos = 2, 8, 5, 7
	r := rand.New(rand.NewPCG(3, 4))
	wq := make([]float32, heads*hd*dim)
	wk := make([]float32, heads*hd*dim)
	x := make([]float32, dim)
	y := make([]float32, dim)
	for _, s := range [][]float32{wq, wk, x, y} {
		for i := range s {
			s[i] = r.Float32()*2 - 1
		}
	}
	ggq, _ := PermuteHFToGGUF(wq, heads, dim)
	ggk, _ := PermuteHFToGGUF(wk, heads, dim)
	for h := 0; h < heads; h++ {
		hfScore := dot(ropeHalf(matvec(wq, x, dim)[h*hd:(h+1)*hd], pos), ropeHalf(matvec(wk, y, dim)[h*hd:(h+1)*hd], 3))
		ggScore := dot(ropeAdjacent(matvec(ggq, x, dim)[h*hd:(h+1)*hd], pos), ropeAdjacent(matvec(ggk, y, dim)[h*hd:(h+1)*hd], 3))
		if math.Abs(hfScore-ggScore) > 1e-9 {
			t.Errorf("head %d: half-split score %g, adjacent score %g", h, hfScore, ggScore)
		}
		wrong := dot(ropeAdjacent(matvec(wq, x, dim)[h*hd:(h+1)*hd], pos), ropeAdjacent(matvec(wk, y, dim)[h*hd:(h+1)*hd], 3))
		if math.Abs(hfScore-wrong) < 1e-6 {
			t.Errorf("head %d: the test cannot tell the layouts apart", h)
		}
	}
}

func matvec(w, x []float32, cols int) []float64 {
	out := make([]float64, len(w)/cols)
	for i := range out {
		for j := 0; j < cols; j++ {
			out[i] += float64(w[i*cols+j]) * float64(x[j])
		}
	}
	return out
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func rotate(v []float64, a, b, i, n, pos int) {
	theta := float64(pos) * math.Pow(10000, -2*float64(i)/float64(n))
	c, s := math.Cos(theta), math.Sin(theta)
	v[a], v[b] = v[a]*c-v[b]*s, v[a]*s+v[b]*c
}

func ropeHalf(v []float64, pos int) []float64 {
	v = append([]float64(nil), v...)
	for i := 0; i < len(v)/2; i++ {
		rotate(v, i, i+len(v)/2, i, len(v), pos)
	}
	return v
}

func ropeAdjacent(v []float64, pos int) []float64 {
	v = append([]float64(nil), v...)
	for i := 0; i < len(v)/2; i++ {
		rotate(v, 2*i, 2*i+1, i, len(v), pos)
	}
	return v
}
