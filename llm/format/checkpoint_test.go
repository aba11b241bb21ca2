package format

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/gguf"
	"github.com/lathe-ml/lathe/llm/format/half"
	"github.com/lathe-ml/lathe/llm/format/safetensors"
)

const stories260K = "../../../shared/models/stories260K.gguf"

func TestStories260KConfig(t *testing.T) {
	ck, err := Open(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	want := ModelConfig{
		Architecture: "llama", Dim: 64, Layers: 5, Heads: 8, KVHeads: 4, HeadDim: 8, FFN: 172, Vocab: 512,
		NormEps: 1e-5, RopeTheta: 10000, RopeDim: 8, ContextLength: 2048,
		TiedEmbeddings: false, Layout: LayoutGGUF, Rope: RopeAdjacent, BOS: 1, EOS: []int{2}, Pad: -1,
	}
	if got := ck.Config(); !reflect.DeepEqual(got, want) {
		t.Errorf("config\n got %+v\nwant %+v", got, want)
	}
	if n := len(ck.Names()); n != 48 {
		t.Errorf("%d tensors", n)
	}
	data, shape, err := ck.Tensor("blk.2.ffn_down.weight")
	if err != nil || !reflect.DeepEqual(shape, []int{64, 172}) || len(data) != 64*172 {
		t.Errorf("ffn_down shape %v, %d values, err %v", shape, len(data), err)
	}
	if AdjacentRope(ck) != ck {
		t.Error("AdjacentRope wrapped a checkpoint that is already adjacent")
	}
}

// stories260K saved as a Hugging Face directory and read back gives the same model: same config,
// Q/K rows in HF's half-split order on disk, and the original rows again through AdjacentRope.
// Saved back to GGUF from there, it reads as the original too.
func TestStories260KThroughHFAndBack(t *testing.T) {
	src, err := OpenGGUF(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cfg := src.Config()
	var tensors []NamedTensor
	for _, name := range src.Names() {
		data, shape, err := src.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		tensors = append(tensors, NamedTensor{Name: name, Shape: shape, Data: data})
	}
	dir := t.TempDir()
	if err := WriteHF(dir, cfg, tensors, HFOptions{MaxShardBytes: 400_000}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "generation_config.json", safetensors.IndexFile, "model-00001-of-00003.safetensors"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	hf, err := OpenHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	if hf.HFConfig.Architectures[0] != "LlamaForCausalLM" || hf.Generation == nil || hf.Generation.BOSTokenID.First() != 1 {
		t.Errorf("config.json %+v generation %+v", hf.HFConfig, hf.Generation)
	}
	got := hf.Config()
	want := cfg
	want.Layout, want.Rope = LayoutHF, RopeHalf
	if !reflect.DeepEqual(got, want) {
		t.Errorf("HF config\n got %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(hf.Names(), src.Names()) {
		t.Errorf("names differ: %v", hf.Names())
	}
	q, _, _ := src.Tensor("blk.1.attn_k.weight")
	onDisk, _, _ := hf.Tensor("blk.1.attn_k.weight")
	if wantHF, _ := PermuteGGUFToHF(q, 4, 64); !reflect.DeepEqual(onDisk, wantHF) {
		t.Error("k_proj on disk is not the GGUF rows permuted to half-split order")
	}
	adj := AdjacentRope(hf)
	if adj.Config().Rope != RopeAdjacent {
		t.Error("AdjacentRope config still half-split")
	}
	for _, name := range src.Names() {
		a, sa, _ := src.Tensor(name)
		b, sb, err := adj.Tensor(name)
		if err != nil || !reflect.DeepEqual(a, b) || !reflect.DeepEqual(sa, sb) {
			t.Errorf("%s differs after the HF round trip (err %v)", name, err)
		}
	}

	// Back to GGUF from the HF directory (half-split tensors), with the original tokenizer.
	var back []NamedTensor
	for _, name := range hf.Names() {
		data, shape, _ := hf.Tensor(name)
		back = append(back, NamedTensor{Name: name, Shape: shape, Data: data})
	}
	var extra []gguf.KV
	for _, kv := range src.File.Metadata.KVs() {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			extra = append(extra, kv)
		}
	}
	out := filepath.Join(t.TempDir(), "back.gguf")
	if err := WriteGGUF(out, hf.Config(), back, GGUFOptions{Extra: extra, Name: "stories260K"}); err != nil {
		t.Fatal(err)
	}
	g, err := OpenGGUF(out)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if !reflect.DeepEqual(g.Config(), cfg) {
		t.Errorf("GGUF config after the round trip\n got %+v\nwant %+v", g.Config(), cfg)
	}
	for _, name := range src.Names() {
		a, _, _ := src.Tensor(name)
		b, _, err := g.Tensor(name)
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%s differs after GGUF -> HF -> GGUF (err %v)", name, err)
		}
	}
	for _, kv := range extra {
		v, _ := g.File.Metadata.Get(kv.Key)
		if !reflect.DeepEqual(v, kv.Value) {
			t.Errorf("metadata %s differs", kv.Key)
		}
	}
}

func TestWriteGGUFHalfPrecision(t *testing.T) {
	cfg := ModelConfig{Architecture: "llama", Dim: 4, Layers: 1, Heads: 2, KVHeads: 1, HeadDim: 2, FFN: 8, Vocab: 3,
		NormEps: 1e-6, RopeTheta: 500000, RopeDim: 2, ContextLength: 16, TiedEmbeddings: true, Layout: LayoutHF, Rope: RopeAdjacent, BOS: -1, Pad: -1}
	tensors := []NamedTensor{
		{Name: "token_embd.weight", Shape: []int{3, 4}, Data: []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0.1}},
		{Name: "output_norm.weight", Shape: []int{4}, Data: []float32{1, 1, 1, 0.1}},
	}
	for _, typ := range []gguf.TensorType{gguf.F16, gguf.BF16} {
		path := filepath.Join(t.TempDir(), "m.gguf")
		if err := WriteGGUF(path, cfg, tensors, GGUFOptions{Type: typ}); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		emb, _ := f.Tensor("token_embd.weight")
		norm, _ := f.Tensor("output_norm.weight")
		ft, _ := f.Metadata.Uint("general.file_type")
		if emb.Type != typ || norm.Type != gguf.F32 || !reflect.DeepEqual(emb.Dims, []uint64{4, 3}) {
			t.Errorf("%s: embedding %s %v, norm %s", typ, emb.Type, emb.Dims, norm.Type)
		}
		if (typ == gguf.F16 && ft != 1) || (typ == gguf.BF16 && ft != 32) {
			t.Errorf("%s: general.file_type %d", typ, ft)
		}
		if theta, _ := f.Metadata.Float("llama.rope.freq_base"); theta != 500000 {
			t.Errorf("rope base %g", theta)
		}
		f.Close()
	}
	bad := cfg
	bad.Heads, bad.KVHeads = 3, 2
	if err := WriteGGUF(filepath.Join(t.TempDir(), "x.gguf"), bad, tensors, GGUFOptions{}); err == nil {
		t.Error("3 query heads over 2 kv heads accepted")
	}
}

func TestNameMapping(t *testing.T) {
	tests := []struct{ gguf, hf string }{
		{"token_embd.weight", "model.embed_tokens.weight"},
		{"output_norm.weight", "model.norm.weight"},
		{"output.weight", "lm_head.weight"},
		{"blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"},
		{"blk.12.attn_q.weight", "model.layers.12.self_attn.q_proj.weight"},
		{"blk.3.attn_k.bias", "model.layers.3.self_attn.k_proj.bias"},
		{"blk.3.attn_v.weight", "model.layers.3.self_attn.v_proj.weight"},
		{"blk.3.attn_output.weight", "model.layers.3.self_attn.o_proj.weight"},
		{"blk.3.ffn_norm.weight", "model.layers.3.post_attention_layernorm.weight"},
		{"blk.3.ffn_gate.weight", "model.layers.3.mlp.gate_proj.weight"},
		{"blk.3.ffn_up.weight", "model.layers.3.mlp.up_proj.weight"},
		{"blk.31.ffn_down.weight", "model.layers.31.mlp.down_proj.weight"},
	}
	for _, tc := range tests {
		if got, ok := HFName(tc.gguf); !ok || got != tc.hf {
			t.Errorf("HFName(%s) = %q %v, want %q", tc.gguf, got, ok, tc.hf)
		}
		if got, ok := GGUFName(tc.hf); !ok || got != tc.gguf {
			t.Errorf("GGUFName(%s) = %q %v, want %q", tc.hf, got, ok, tc.gguf)
		}
	}
	for _, bad := range []string{"rope_freqs.weight", "blk.x.attn_q.weight", "blk.01.attn_q.weight", "blk.1.attn_qq.weight", "model.layers.1.self_attn.rotary_emb.inv_freq"} {
		if _, ok := HFName(bad); ok {
			t.Errorf("HFName accepted %s", bad)
		}
		if _, ok := GGUFName(bad); ok {
			t.Errorf("GGUFName accepted %s", bad)
		}
	}
	if LayerTensor(7, "attn_q.weight") != "blk.7.attn_q.weight" {
		t.Error("LayerTensor")
	}
}

// Raw access hands out the stored bytes (here BF16), and through AdjacentRope the Q/K rows are
// in the same order as the permuted float32 view.
func TestRawTensorAccess(t *testing.T) {
	src, err := OpenGGUF(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var tensors []NamedTensor
	for _, name := range src.Names() {
		data, shape, _ := src.Tensor(name)
		tensors = append(tensors, NamedTensor{Name: name, Shape: shape, Data: data})
	}
	dir := t.TempDir()
	if err := WriteHF(dir, src.Config(), tensors, HFOptions{DType: safetensors.BF16}); err != nil {
		t.Fatal(err)
	}
	hf, err := OpenHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	adj := AdjacentRope(hf).(RawTensorReader)
	for _, name := range []string{"blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.ffn_up.weight"} {
		raw, dtype, shape, err := adj.RawTensor(name)
		if err != nil {
			t.Fatal(err)
		}
		widened, _, _ := AdjacentRope(hf).Tensor(name)
		if dtype != "BF16" || len(raw) != 2*len(widened) {
			t.Fatalf("%s: dtype %s, %d bytes for %d values", name, dtype, len(raw), len(widened))
		}
		for i, w := range widened {
			if got := half.BF16ToF32(binary.LittleEndian.Uint16(raw[2*i:])); got != w {
				t.Fatalf("%s value %d: raw %g, widened %g (shape %v)", name, i, got, w, shape)
			}
		}
	}
	raw, dtype, shape, err := src.RawTensor("blk.1.attn_norm.weight")
	if err != nil || dtype != "F32" || len(raw) != 4*64 || !reflect.DeepEqual(shape, []int{64}) {
		t.Errorf("gguf raw: %s %v %d bytes, err %v", dtype, shape, len(raw), err)
	}
}

func TestOpenPicksTheFormat(t *testing.T) {
	src, err := OpenGGUF(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var tensors []NamedTensor
	for _, name := range src.Names() {
		data, shape, _ := src.Tensor(name)
		tensors = append(tensors, NamedTensor{Name: name, Shape: shape, Data: data})
	}
	dir := t.TempDir()
	if err := WriteHF(dir, src.Config(), tensors, HFOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "config.json"), filepath.Join(dir, "model.safetensors")} {
		ck, err := Open(p)
		if err != nil {
			t.Fatalf("Open(%s): %v", p, err)
		}
		if ck.Config().Layout != LayoutHF {
			t.Errorf("Open(%s) layout %s", p, ck.Config().Layout)
		}
		ck.Close()
	}
	if _, err := Open(filepath.Join(dir, "generation_config.json")); err == nil || !strings.Contains(err.Error(), "not a GGUF") {
		t.Errorf("a JSON file opened as GGUF: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing path opened")
	}
}
