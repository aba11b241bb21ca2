package format

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/gguf"
	"github.com/lathe-ml/lathe/llm/format/safetensors"
)

// streamed returns ts with every tensor's values handed out by Fill instead of Data, counting the
// calls per tensor.
func streamed(ts []NamedTensor, calls map[string]int) []NamedTensor {
	out := make([]NamedTensor, len(ts))
	for i, t := range ts {
		data := t.Data
		out[i] = NamedTensor{Name: t.Name, Shape: t.Shape, Fill: func(dst []float32) error {
			calls[t.Name]++
			copy(dst, data)
			return nil
		}}
	}
	return out
}

// Tensors whose values are produced on demand (Fill) are written to the same bytes as the same
// values held in memory, in every output the writers offer: GGUF in float32, bfloat16 and Q8_0,
// Hugging Face safetensors in float32 and sharded bfloat16 (stories260K's Q/K rows permuted to the
// half-split layout on the way), and each Fill runs once per file.
func TestStreamedTensorsWriteTheSameFiles(t *testing.T) {
	src, err := OpenGGUF(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cfg := src.Config()
	var held []NamedTensor
	for _, name := range src.Names() {
		data, shape, err := src.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, NamedTensor{Name: name, Shape: shape, Data: data})
	}
	writes := []struct {
		name    string
		sharded bool // the write makes several safetensors files and their index
		write   func(path string, ts []NamedTensor) error
	}{
		{"gguf f32", false, func(p string, ts []NamedTensor) error {
			return WriteGGUF(filepath.Join(p, "m.gguf"), cfg, ts, GGUFOptions{})
		}},
		{"gguf bf16", false, func(p string, ts []NamedTensor) error {
			return WriteGGUF(filepath.Join(p, "m.gguf"), cfg, ts, GGUFOptions{Type: gguf.BF16})
		}},
		{"gguf q8_0", false, func(p string, ts []NamedTensor) error {
			return WriteGGUF(filepath.Join(p, "m.gguf"), cfg, ts, GGUFOptions{Type: gguf.Q8_0, TypeOf: func(_ string, shape []int) gguf.TensorType {
				if shape[len(shape)-1]%32 != 0 {
					return gguf.F16 // stories260K's ffn_down rows of 172 values are no whole Q8_0 blocks
				}
				return gguf.Q8_0
			}})
		}},
		{"hf f32", false, func(p string, ts []NamedTensor) error { return WriteHF(p, cfg, ts, HFOptions{}) }},
		{"hf bf16 sharded", true, func(p string, ts []NamedTensor) error {
			return WriteHF(p, cfg, ts, HFOptions{DType: safetensors.BF16, MaxShardBytes: 200_000})
		}},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			a, b := t.TempDir(), t.TempDir()
			if err := w.write(a, held); err != nil {
				t.Fatal(err)
			}
			calls := map[string]int{}
			if err := w.write(b, streamed(held, calls)); err != nil {
				t.Fatal(err)
			}
			entries, err := os.ReadDir(a)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				x, err := os.ReadFile(filepath.Join(a, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				y, err := os.ReadFile(filepath.Join(b, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(x, y) {
					t.Errorf("%s: %d bytes written from memory, %d streamed, not the same", e.Name(), len(x), len(y))
				}
			}
			if _, err := os.Stat(filepath.Join(a, safetensors.IndexFile)); w.sharded && err != nil {
				t.Errorf("not sharded: %v", err)
			}
			for _, tn := range held {
				if calls[tn.Name] > 1 {
					t.Errorf("%s filled %d times", tn.Name, calls[tn.Name])
				}
			}
			if len(calls) == 0 {
				t.Error("no tensor was filled")
			}
		})
	}
}

// A tensor whose Fill fails fails the write with its name and the cause, and leaves no file behind.
func TestStreamedTensorErrorFailsTheWrite(t *testing.T) {
	src, err := OpenGGUF(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var ts []NamedTensor
	for _, name := range src.Names() {
		data, shape, _ := src.Tensor(name)
		ts = append(ts, NamedTensor{Name: name, Shape: shape, Data: data})
	}
	disk := errors.New("disk on fire")
	for i := range ts {
		if ts[i].Name == "blk.1.ffn_up.weight" {
			ts[i].Data, ts[i].Fill = nil, func([]float32) error { return disk }
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	err = WriteGGUF(path, src.Config(), ts, GGUFOptions{})
	if !errors.Is(err, disk) || !strings.Contains(err.Error(), "blk.1.ffn_up.weight") {
		t.Errorf("gguf: %v", err)
	}
	err = WriteHF(filepath.Join(dir, "hf"), src.Config(), ts, HFOptions{})
	if !errors.Is(err, disk) || !strings.Contains(err.Error(), "model.layers.1.mlp.up_proj.weight") {
		t.Errorf("hf: %v", err)
	}
	for _, p := range []string{path, filepath.Join(dir, "hf", safetensors.SingleFile)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind after a failed write: %v", p, err)
		}
	}
}
