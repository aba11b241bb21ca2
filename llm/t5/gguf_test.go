package t5

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/gguf"
)

// WriteGGUF lays the model out with llama.cpp's t5 names and keys; a tied head is written scaled by
// d_model^-½ (llama.cpp scales nothing), an untied one as it is.
func TestWriteGGUF(t *testing.T) {
	if err := mustModel(t, tinyConfig("relu", false)).WriteGGUF(filepath.Join(t.TempDir(), "x.gguf"), "x", nil); err == nil {
		t.Fatal("a max distance llama.cpp does not use was written")
	}
	for _, c := range []struct {
		ff   string
		tied bool
	}{{"gated-gelu", false}, {"relu", true}} {
		cfg := tinyConfig(c.ff, c.tied)
		cfg.MaxDistance = 128 // llama.cpp's only one
		m, err := NewRandom(cfg, 9)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "t5.gguf")
		if err := m.WriteGGUF(path, "tiny", []gguf.KV{{Key: "tokenizer.ggml.model", Value: "t5"}}); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if arch, _ := f.Metadata.String("general.architecture"); arch != "t5" {
			t.Fatalf("architecture %q", arch)
		}
		if n, _ := f.Metadata.Uint("t5.decoder_block_count"); int(n) != cfg.DecoderLayers {
			t.Fatalf("decoder_block_count %d, want %d", n, cfg.DecoderLayers)
		}
		ffn := "ffn_gate" // wi_0 of a gated feed-forward; a plain one has wi as ffn_up only
		if !cfg.Gated {
			ffn = "ffn_up"
		}
		for _, name := range []string{"token_embd.weight", "output.weight", "enc.blk.0.attn_rel_b.weight", "dec.blk.0.attn_rel_b.weight",
			"enc.blk.1.attn_q.weight", "dec.blk.0.cross_attn_o.weight", "dec.blk.1." + ffn + ".weight", "enc.output_norm.weight", "dec.output_norm.weight"} {
			if _, ok := f.Tensor(name); !ok {
				t.Errorf("ff=%s: no tensor %s", c.ff, name)
			}
		}
		if rel, _ := f.Tensor("enc.blk.0.attn_rel_b.weight"); rel.Dims[0] != uint64(cfg.Heads) || rel.Dims[1] != uint64(cfg.Buckets) {
			t.Errorf("attn_rel_b dims %v, want {heads, buckets}", rel.Dims)
		}
		out, _ := f.Float32("output.weight")
		emb, _ := f.Float32("token_embd.weight")
		want := m.n.w.head()[5]
		if c.tied {
			want = emb[5] * float32(1/math.Sqrt(float64(cfg.DModel)))
		}
		if out[5] != want {
			t.Errorf("tied=%v: output.weight[5] = %g, want %g", c.tied, out[5], want)
		}
		f.Close()
	}
}

func mustModel(t *testing.T, cfg Config) *Model {
	t.Helper()
	m, err := NewRandom(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
