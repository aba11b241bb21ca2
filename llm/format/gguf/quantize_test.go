package gguf

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// ggml quantized testdata/ggml_quants.gguf's "src" itself (see ggml_test.go): Quantize must write
// the same bytes, block for block.
func TestQuantizeMatchesGGML(t *testing.T) {
	f, err := Open("testdata/ggml_quants.gguf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src, err := f.Float32("src")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []TensorType{Q8_0, Q4_0, Q4_K, Q6_K, F16, BF16} {
		name := strings.Replace(strings.ToLower(typ.String()), "_k", "_K", 1)
		t.Run(typ.String(), func(t *testing.T) {
			want, err := f.Raw(name)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Quantize(typ, src)
			if err != nil {
				t.Fatal(err)
			}
			bb := typ.BlockBytes()
			for i := 0; i < len(want); i += bb {
				if !bytes.Equal(got[i:i+bb], want[i:i+bb]) {
					t.Fatalf("block %d: Lathe % x\nggml % x", i/bb, got[i:i+bb], want[i:i+bb])
				}
			}
		})
	}
}

// Quantizing then dequantizing stays within each format's step: half a Q8_0 step (amax/254) per
// value, and for the 4- and 6-bit formats an RMS error well under the values' own RMS.
func TestQuantizeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	x[7] = 0 // a zero block must not divide by zero
	for i := 256; i < 512; i++ {
		x[i] = 0
	}
	// worst relative RMS error each format may show on Gaussian data (ggml's own figures are about
	// 0.4% for Q8_0, 10% for Q4_0, 8% for Q4_K and 2.5% for Q6_K)
	bound := map[TensorType]float64{Q8_0: 0.006, Q4_0: 0.12, Q4_K: 0.10, Q6_K: 0.035}
	for typ, b := range bound {
		raw, err := Quantize(typ, x)
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, len(x))
		if err := Dequantize(typ, raw, y); err != nil {
			t.Fatal(err)
		}
		var se, ss float64
		for i := range x {
			d := float64(y[i] - x[i])
			se += d * d
			ss += float64(x[i]) * float64(x[i])
			if x[i] == 0 && typ != Q4_K && y[i] != 0 {
				t.Fatalf("%s: zero at %d decodes to %g", typ, i, y[i])
			}
		}
		if rel := math.Sqrt(se / ss); rel > b {
			t.Errorf("%s: relative RMS error %.4f, want <= %.3f", typ, rel, b)
		} else {
			t.Logf("%s: relative RMS error %.4f", typ, rel)
		}
	}
	if _, err := Quantize(Q4_K, x[:100]); err == nil {
		t.Fatal("100 values quantized as Q4_K (256-value blocks)")
	}
}
