package gguf

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// testdata/ggml_quants.gguf was written by ggml itself (gguf_write_to_file, from the ggml copy
// vendored in ollama at commit b1fccabb3): "src" holds 2x256 random floats, each of Q8_0, Q4_0,
// Q4_K, Q6_K, F16 and BF16 holds src converted by ggml_quantize_chunk, and NAME.ggml holds ggml's
// own to_float of NAME. Lathe's decoding must agree bit for bit, and its F16/BF16 encoding must
// produce ggml's bytes.
func TestDequantizeMatchesGGML(t *testing.T) {
	f, err := Open("testdata/ggml_quants.gguf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if a, _ := f.Metadata.String("general.architecture"); a != "lathe-quant-test" {
		t.Fatalf("architecture %q", a)
	}
	for _, typ := range []TensorType{Q8_0, Q4_0, Q4_K, Q6_K, F16, BF16} {
		name := strings.ToLower(typ.String()) // ggml_type_name: "q4_K", "f16", ...
		name = strings.Replace(name, "_k", "_K", 1)
		t.Run(typ.String(), func(t *testing.T) {
			info, ok := f.Tensor(name)
			if !ok || info.Type != typ {
				t.Fatalf("tensor %s: %+v", typ, info)
			}
			got, err := f.Float32(name)
			if err != nil {
				t.Fatal(err)
			}
			want, err := f.Float32(name + ".ggml")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 512 || len(want) != 512 {
				t.Fatalf("%d and %d values", len(got), len(want))
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("value %d: Lathe %g, ggml %g", i, got[i], want[i])
				}
			}
		})
	}
	src, _ := f.Float32("src")
	for _, typ := range []TensorType{F16, BF16} {
		raw, err := f.Raw(strings.ToLower(typ.String()))
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range src {
			var mine uint16
			if typ == F16 {
				mine = half.F32ToF16(x)
			} else {
				mine = half.F32ToBF16(x)
			}
			if theirs := binary.LittleEndian.Uint16(raw[2*i:]); mine != theirs {
				t.Fatalf("%s of %g: Lathe %#04x, ggml %#04x", typ, x, mine, theirs)
			}
		}
	}
}
