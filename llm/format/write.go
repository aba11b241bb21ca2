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
	// Fill, used when Data is nil, writes the tensor's values (as many as Shape holds) into dst
	// when the writer reaches it, once per file written. A model held quantized or in bfloat16
	// hands its tensors out this way, widened (and merged with its adapters) one at a time, so an
	// export never holds more than a few tensors in float32 whatever the model's size.
	Fill func(dst []float32) error
}

// Len is the number of values the tensor's shape holds.
func (t NamedTensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// values returns t's values: Data, or what Fill writes into *buf (grown as needed and kept for the
// next tensor).
func (t NamedTensor) values(buf *[]float32) ([]float32, error) {
	if t.Data != nil || t.Fill == nil {
		return t.Data, nil
	}
	n := t.Len()
	if cap(*buf) < n {
		*buf = make([]float32, n)
	}
	dst := (*buf)[:n]
	if err := t.Fill(dst); err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	return dst, nil
}

// check reports a tensor whose Data does not match its shape (a streamed one is checked by its
// writer's length when filled).
func (t NamedTensor) check() error {
	if t.Data == nil && t.Fill != nil {
		return nil
	}
	if len(t.Data) != t.Len() {
		return fmt.Errorf("tensor %s: shape %v holds %d values, got %d", t.Name, t.Shape, t.Len(), len(t.Data))
	}
	return nil
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
	var src []float32 // the values a rotary tensor is permuted from, one tensor at a time
	for _, t := range fused {
		t, err := convertRope(t, cfg, target, &src)
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
		if t.Data == nil && t.Fill != nil {
			err = w.AddTensorFunc(t.Name, dims, typ, t.Fill)
		} else {
			err = w.AddTensor(t.Name, dims, typ, t.Data)
		}
		if err != nil {
			return fmt.Errorf("write gguf: %w", err)
		}
	}
	return w.WriteFile(path)
}

// convertRope returns t in the target rotary layout: t itself when it is not a rotary projection
// or is in that layout already, else a tensor whose Fill permutes t's rows into the writer's buffer
// when it is written (t's own values go through *src, shared by the tensors of one file: the writer
// fills one tensor at a time).
func convertRope(t NamedTensor, cfg ModelConfig, target RopePairing, src *[]float32) (NamedTensor, error) {
	rotary, isQ := isRotaryProjection(t.Name)
	if !rotary || cfg.Rope == target {
		return t, nil
	}
	heads := cfg.KVHeads
	if isQ {
		heads = cfg.Heads
	}
	cols := 1
	if len(t.Shape) == 2 {
		cols = t.Shape[1]
	}
	n := len(t.Data)
	if t.Data == nil && t.Fill != nil {
		n = t.Len()
	}
	if err := checkRotaryRows(n, heads, cols); err != nil {
		return NamedTensor{}, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	toGGUF := target == RopeAdjacent
	fill := func(dst []float32) error {
		w, err := t.values(src)
		if err != nil {
			return err
		}
		if len(w) != len(dst) {
			return fmt.Errorf("tensor %s: %d values, shape %v holds %d", t.Name, len(w), t.Shape, len(dst))
		}
		permuteRowsInto(dst, w, heads, cols, toGGUF)
		return nil
	}
	return NamedTensor{Name: t.Name, Shape: t.Shape, Fill: fill}, nil
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
	var src []float32 // the values a rotary tensor is permuted from, one tensor at a time
	for _, t := range tensors {
		if (t.Name == "output.weight" && cfg.TiedEmbeddings) || t.Name == RopeFreqsTensor {
			continue // tied: lm_head is embed_tokens; rope factors: config.json's rope_scaling says them
		}
		t, err := convertRope(t, cfg, RopeHalf, &src)
		if err != nil {
			return fmt.Errorf("write hf: %w", err)
		}
		kept = append(kept, t)
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
		st = append(st, safetensors.Tensor{Name: t.Name, DType: dtype, Shape: t.Shape, Data: t.Data, Fill: t.Fill})
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
// name is an error: the file would silently lose it. A fused tensor is assembled when the writer
// fills it, from its parts' values then.
func fuseTensors(ts []NamedTensor, refs map[string]tensorRef, cfg ModelConfig, layout QKVLayout) ([]NamedTensor, error) {
	var out []NamedTensor
	parts := map[string]*[3]NamedTensor{}
	for _, t := range ts {
		ref, ok := refs[t.Name]
		if !ok {
			return nil, fmt.Errorf("tensor %s has no name in this format", t.Name)
		}
		if ref.part < 0 {
			t.Name = ref.file
			out = append(out, t)
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
		for _, pt := range p {
			if pt.Name == "" {
				return nil, fmt.Errorf("fused %s lacks one of q, k, v", t.Name)
			}
			if err := pt.check(); err != nil {
				return nil, fmt.Errorf("fused %s: %w", t.Name, err)
			}
		}
		cols := 1
		if len(p[0].Shape) == 2 {
			cols = p[0].Shape[1]
		}
		block := cfg.HeadDim * cols
		if p[0].Len() != cfg.Heads*block || p[1].Len() != cfg.KVHeads*block || p[2].Len() != cfg.KVHeads*block {
			return nil, fmt.Errorf("%s: fuse qkv: sizes %d, %d, %d do not match %d/%d heads of %d·%d", t.Name,
				p[0].Len(), p[1].Len(), p[2].Len(), cfg.Heads, cfg.KVHeads, cfg.HeadDim, cols)
		}
		shape := []int{(cfg.Heads + 2*cfg.KVHeads) * cfg.HeadDim}
		if len(p[0].Shape) == 2 {
			shape = append(shape, cols)
		}
		out[i] = NamedTensor{Name: t.Name, Shape: shape, Fill: func(dst []float32) error {
			// Each part gets a buffer of its own: a part may itself be filled through a shared one
			// (convertRope's).
			var vals [3][]float32
			for j, pt := range p {
				var buf []float32
				v, err := pt.values(&buf)
				if err != nil {
					return err
				}
				vals[j] = v
			}
			data, err := FuseQKV(vals[0], vals[1], vals[2], layout, cfg.Heads, cfg.KVHeads, cfg.HeadDim, cols)
			if err != nil {
				return fmt.Errorf("%s: %w", t.Name, err)
			}
			copy(dst, data)
			return nil
		}}
	}
	return out, nil
}
