package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lathe-ml/lathe/llm/format/gguf"
	"github.com/lathe-ml/lathe/llm/format/safetensors"
)

// NamedTensor is a tensor to save: GGUF name, row-major shape ([out, in] for weights), values.
// Q/K tensors are in the rotary layout of the ModelConfig passed with them (its Rope field); the
// writers convert to the layout each format expects.
type NamedTensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// GGUFOptions tunes WriteGGUF.
type GGUFOptions struct {
	// Type stores matrices as F32 (the zero value), F16 or BF16, or quantized (Q8_0, Q4_0, Q4_K,
	// Q6_K: ggml's reference quantizers, as llama-quantize without an importance matrix). Vectors
	// (norms, biases) are always F32, as llama.cpp's converter writes them.
	Type gguf.TensorType
	// TypeOf, when set, picks each matrix's type instead of Type (gguf.Q4KM is llama-quantize's
	// Q4_K_M mix); Type still names the file's general.file_type.
	TypeOf func(name string, shape []int) gguf.TensorType
	// Name is general.name (default: the architecture).
	Name string
	// Extra metadata written after the model's own keys, replacing any with the same key: the
	// tokenizer (tokenizer.ggml.*, e.g. copied from the source GGUF or from
	// tokenizer.Tokenizer.GGUFMetadata), tokenizer.chat_template, general.* provenance.
	Extra []gguf.KV
}

// fileTypes is general.file_type per tensor type (llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_BF16).
var fileTypes = map[gguf.TensorType]uint32{gguf.F32: 0, gguf.F16: 1, gguf.BF16: 32, gguf.Q4_0: 2, gguf.Q8_0: 7, gguf.Q4_K: 15, gguf.Q6_K: 18}

// WriteGGUF writes a llama.cpp-loadable GGUF file (atomically) from a model's config and tensors.
func WriteGGUF(path string, cfg ModelConfig, tensors []NamedTensor, opts GGUFOptions) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	a, err := archFor(cfg.Architecture)
	if err != nil {
		return fmt.Errorf("write gguf: %w", err)
	}
	target := a.GGUFRope
	ft, ok := fileTypes[opts.Type]
	if !ok {
		return fmt.Errorf("write gguf: tensor type %s is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K are)", opts.Type)
	}
	w := gguf.NewWriter()
	arch := a.GGUF
	name := opts.Name
	if name == "" {
		name = arch
	}
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: arch},
		{Key: "general.name", Value: name},
		{Key: "general.file_type", Value: ft},
		{Key: arch + ".vocab_size", Value: uint32(cfg.Vocab)},
		{Key: arch + ".context_length", Value: uint32(cfg.ContextLength)},
		{Key: arch + ".embedding_length", Value: uint32(cfg.Dim)},
		{Key: arch + ".block_count", Value: uint32(cfg.Layers)},
		{Key: arch + ".feed_forward_length", Value: uint32(cfg.FFN)},
		{Key: arch + ".attention.head_count", Value: uint32(cfg.Heads)},
		{Key: arch + ".attention.head_count_kv", Value: uint32(cfg.KVHeads)},
		{Key: arch + ".attention." + ggufEpsKey(cfg), Value: float32(cfg.NormEps)},
		{Key: arch + ".rope.freq_base", Value: float32(cfg.RopeTheta)},
		{Key: arch + ".rope.dimension_count", Value: uint32(cfg.RopeDim)},
	}
	if cfg.HeadDim != cfg.Dim/cfg.Heads {
		kvs = append(kvs, gguf.KV{Key: arch + ".attention.key_length", Value: uint32(cfg.HeadDim)},
			gguf.KV{Key: arch + ".attention.value_length", Value: uint32(cfg.HeadDim)})
	}
	if a.GGUFKeys != nil {
		kvs = append(kvs, a.GGUFKeys(cfg)...)
	}
	var ropeFreqs []float32
	switch s := cfg.RopeScaling; {
	case s == nil:
	case s.Type == "linear" || s.Type == "yarn":
		kvs = append(kvs, gguf.KV{Key: arch + ".rope.scaling.type", Value: s.Type},
			gguf.KV{Key: arch + ".rope.scaling.factor", Value: float32(s.Factor)})
		if s.OriginalMaxPositionEmbeddings > 0 {
			kvs = append(kvs, gguf.KV{Key: arch + ".rope.scaling.original_context_length", Value: uint32(s.OriginalMaxPositionEmbeddings)})
		}
	case s.Type == "llama3":
		// llama.cpp takes llama-3 scaling as per-frequency factors in a tensor, as its converter writes.
		var err error
		if ropeFreqs, err = Llama3RopeFactors(cfg); err != nil {
			return fmt.Errorf("write gguf: %w", err)
		}
	default:
		return fmt.Errorf("write gguf: rope scaling %q is not supported (linear, yarn, llama3 are)", s.Type)
	}
	for _, kv := range append(kvs, opts.Extra...) {
		if err := w.Metadata.Set(kv.Key, kv.Value); err != nil {
			return fmt.Errorf("write gguf: %w", err)
		}
	}
	if ropeFreqs != nil && !hasTensor(tensors, RopeFreqsTensor) {
		if err := w.AddTensor(RopeFreqsTensor, []uint64{uint64(len(ropeFreqs))}, gguf.F32, ropeFreqs); err != nil {
			return fmt.Errorf("write gguf: %w", err)
		}
	}
	refs := a.ggufRefs(cfg, tensorNames(tensors))
	fused, err := fuseTensors(tensors, refs, cfg, QKVThirds)
	if err != nil {
		return fmt.Errorf("write gguf: %w", err)
	}
	for _, t := range fused {
		data, err := convertRope(t, cfg, target)
		if err != nil {
			return fmt.Errorf("write gguf: %w", err)
		}
		dims := make([]uint64, len(t.Shape))
		for i, d := range t.Shape {
			dims[len(t.Shape)-1-i] = uint64(d)
		}
		typ := opts.Type
		if opts.TypeOf != nil {
			typ = opts.TypeOf(t.Name, t.Shape)
		}
		if len(t.Shape) < 2 {
			typ = gguf.F32
		}
		if err := w.AddTensor(t.Name, dims, typ, data); err != nil {
			return fmt.Errorf("write gguf: %w", err)
		}
	}
	return w.WriteFile(path)
}

// convertRope returns t's data in the target rotary layout.
func convertRope(t NamedTensor, cfg ModelConfig, target RopePairing) ([]float32, error) {
	rotary, isQ := isRotaryProjection(t.Name)
	if !rotary || cfg.Rope == target {
		return t.Data, nil
	}
	heads := cfg.KVHeads
	if isQ {
		heads = cfg.Heads
	}
	cols := 1
	if len(t.Shape) == 2 {
		cols = t.Shape[1]
	}
	var err error
	var data []float32
	if target == RopeAdjacent {
		data, err = PermuteHFToGGUF(t.Data, heads, cols)
	} else {
		data, err = PermuteGGUFToHF(t.Data, heads, cols)
	}
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	return data, nil
}

// HFOptions tunes WriteHF.
type HFOptions struct {
	DType         string // safetensors.F32 (default), F16 or BF16
	MaxShardBytes int64  // shard above this size (0: one file)
	Generation    *GenerationConfig
}

var torchDTypes = map[string]string{safetensors.F32: "float32", safetensors.F16: "float16", safetensors.BF16: "bfloat16"}

// WriteHF writes a Hugging Face model directory: config.json, generation_config.json and
// model.safetensors (or shards with model.safetensors.index.json). Tensors are renamed to HF names
// and Q/K rows put in the half-split layout transformers expects. With tied embeddings an
// output.weight tensor is left out. Tokenizer files are written by the tokenizer package.
func WriteHF(dir string, cfg ModelConfig, tensors []NamedTensor, opts HFOptions) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	dtype := opts.DType
	if dtype == "" {
		dtype = safetensors.F32
	}
	torch, ok := torchDTypes[dtype]
	if !ok {
		return fmt.Errorf("write hf: dtype %q is not supported (F32, F16, BF16 are)", dtype)
	}
	a, err := archFor(cfg.Architecture)
	if err != nil {
		return fmt.Errorf("write hf: %w", err)
	}
	hc, err := a.WriteHF(cfg, torch)
	if err != nil {
		return err
	}
	var layout QKVLayout
	if a.HFQKV != nil {
		layout = a.HFQKV(cfg)
	}
	var kept []NamedTensor
	for _, t := range tensors {
		if (t.Name == "output.weight" && cfg.TiedEmbeddings) || t.Name == RopeFreqsTensor {
			continue // tied: lm_head is embed_tokens; rope factors: config.json's rope_scaling says them
		}
		data, err := convertRope(t, cfg, RopeHalf)
		if err != nil {
			return fmt.Errorf("write hf: %w", err)
		}
		kept = append(kept, NamedTensor{t.Name, t.Shape, data})
	}
	fused, err := fuseTensors(kept, a.hfRefs(cfg), cfg, layout)
	if err != nil {
		return fmt.Errorf("write hf: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write hf: %w", err)
	}
	var st []safetensors.Tensor
	for _, t := range fused {
		st = append(st, safetensors.Tensor{Name: t.Name, DType: dtype, Shape: t.Shape, Data: t.Data})
	}
	if _, err := safetensors.WriteDir(dir, st, map[string]string{"format": "pt"}, opts.MaxShardBytes); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "config.json"), hc); err != nil {
		return err
	}
	gen := opts.Generation
	if gen == nil {
		gen = &GenerationConfig{EOSTokenID: TokenIDs(cfg.EOS)}
		if cfg.BOS >= 0 {
			gen.BOSTokenID = TokenIDs{cfg.BOS}
		}
		if cfg.Pad >= 0 {
			gen.PadTokenID = TokenIDs{cfg.Pad}
		}
	}
	return writeJSON(filepath.Join(dir, "generation_config.json"), gen)
}

func writeJSON(path string, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<s>"-style token strings readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	b := bytes.TrimRight(buf.Bytes(), "\n")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func hasTensor(ts []NamedTensor, name string) bool {
	for _, t := range ts {
		if t.Name == name {
			return true
		}
	}
	return false
}

// ggufEpsKey is the GGUF key (after "<arch>.attention.") of the norm epsilon.
func ggufEpsKey(cfg ModelConfig) string {
	if cfg.Norm == NormLayer {
		return "layer_norm_epsilon"
	}
	return "layer_norm_rms_epsilon"
}

func tensorNames(ts []NamedTensor) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

// fuseTensors renames canonical tensors to a file's names (refs) and fuses the q, k and v parts
// that refs put in one tensor, in the order of the first part's appearance. A tensor refs does not
// name is an error: the file would silently lose it.
func fuseTensors(ts []NamedTensor, refs map[string]tensorRef, cfg ModelConfig, layout QKVLayout) ([]NamedTensor, error) {
	var out []NamedTensor
	parts := map[string]*[3]NamedTensor{}
	for _, t := range ts {
		ref, ok := refs[t.Name]
		if !ok {
			return nil, fmt.Errorf("tensor %s has no name in this format", t.Name)
		}
		if ref.part < 0 {
			out = append(out, NamedTensor{ref.file, t.Shape, t.Data})
			continue
		}
		p, ok := parts[ref.file]
		if !ok {
			p = &[3]NamedTensor{}
			parts[ref.file] = p
			out = append(out, NamedTensor{Name: ref.file}) // filled below, keeping the order
		}
		p[ref.part] = t
	}
	for i, t := range out {
		p, ok := parts[t.Name]
		if !ok {
			continue
		}
		if p[0].Data == nil || p[1].Data == nil || p[2].Data == nil {
			return nil, fmt.Errorf("fused %s lacks one of q, k, v", t.Name)
		}
		cols := 1
		if len(p[0].Shape) == 2 {
			cols = p[0].Shape[1]
		}
		data, err := FuseQKV(p[0].Data, p[1].Data, p[2].Data, layout, cfg.Heads, cfg.KVHeads, cfg.HeadDim, cols)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		shape := []int{len(data) / cols}
		if len(p[0].Shape) == 2 {
			shape = append(shape, cols)
		}
		out[i] = NamedTensor{t.Name, shape, data}
	}
	return out, nil
}
