package format

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/lathe-ml/lathe/llm/format/gguf"
	"github.com/lathe-ml/lathe/llm/format/safetensors"
)

// Checkpoint is a model's weights and configuration, whatever format they came in.
type Checkpoint interface {
	// Config describes the model; Config().Rope says which rotary pairing Q/K tensors expect.
	Config() ModelConfig
	// Names lists the tensors present, under GGUF names, sorted.
	Names() []string
	// Tensor returns a tensor (GGUF name) as float32, row-major, with its shape ([out, in] for
	// weights), dequantizing or widening as needed.
	Tensor(name string) ([]float32, []int, error)
	Close() error
}

// Open opens a checkpoint: a directory (or its config.json or a .safetensors file in it) is read
// as a Hugging Face model, any other file as GGUF.
func Open(path string) (Checkpoint, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	if st.IsDir() {
		return OpenHF(path)
	}
	if strings.HasSuffix(path, ".safetensors") || filepath.Base(path) == "config.json" {
		return OpenHF(filepath.Dir(path)) // a file of a Hugging Face directory
	}
	return OpenGGUF(path)
}

// GGUFCheckpoint is a checkpoint read from a GGUF file. File gives access to the full metadata
// (the tokenizer lives there too).
type GGUFCheckpoint struct {
	File   *gguf.File
	cfg    ModelConfig
	names  []string
	refs   map[string]tensorRef // canonical name -> GGUF name (and part of attn_qkv)
	reader *fusedReader
}

// OpenGGUF opens a GGUF checkpoint of a llama-family architecture.
func OpenGGUF(path string) (*GGUFCheckpoint, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	cfg, err := ConfigFromGGUF(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c := &GGUFCheckpoint{File: f, cfg: cfg, refs: map[string]tensorRef{}}
	arch, _ := LookupArch(cfg.Architecture)
	stored := map[string]bool{}
	var extra []string
	for _, t := range f.Tensors {
		stored[t.Name] = true
		extra = append(extra, t.Name)
	}
	for name, ref := range arch.ggufRefs(cfg, append(canonicalNames(cfg), extra...)) {
		if stored[ref.file] {
			c.refs[name] = ref
			c.names = append(c.names, name)
		}
	}
	sort.Strings(c.names)
	c.reader = &fusedReader{cfg: cfg, layout: QKVThirds, read: func(name string) ([]float32, []int, error) {
		info, _ := c.File.Tensor(name)
		data, err := c.File.Float32(name)
		return data, info.Shape(), err
	}}
	return c, nil
}

// ConfigFromGGUF reads the model configuration from a GGUF file's metadata, with llama.cpp's
// defaults for absent keys (kv heads = heads, rope base 10000, head dim = dim/heads).
func ConfigFromGGUF(f *gguf.File) (ModelConfig, error) {
	md := &f.Metadata
	arch, ok := md.String("general.architecture")
	if !ok {
		return ModelConfig{}, fmt.Errorf("gguf has no general.architecture")
	}
	a, err := archFor(arch)
	if err != nil {
		return ModelConfig{}, fmt.Errorf("gguf: %w", err)
	}
	rope := a.GGUFRope
	u := func(key string) int {
		v, _ := md.Uint(arch + "." + key)
		return int(v)
	}
	c := ModelConfig{
		Architecture: a.Name, Dim: u("embedding_length"), Layers: u("block_count"), Heads: u("attention.head_count"),
		KVHeads: u("attention.head_count_kv"), HeadDim: u("attention.key_length"), FFN: u("feed_forward_length"),
		RopeDim: u("rope.dimension_count"), ContextLength: u("context_length"),
		Layout: LayoutGGUF, Rope: rope, BOS: -1, Pad: -1,
	}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Dim / c.Heads
	}
	if c.RopeDim == 0 {
		c.RopeDim = c.HeadDim
	}
	has := func(name string) bool { _, ok := f.Tensor(name); return ok }
	if a.ReadGGUF != nil {
		if err := a.ReadGGUF(md, has, &c); err != nil {
			return ModelConfig{}, fmt.Errorf("gguf: %w", err)
		}
	}
	epsKey := arch + ".attention.layer_norm_rms_epsilon"
	if c.Norm == NormLayer {
		epsKey = arch + ".attention.layer_norm_epsilon"
	}
	var found bool
	if c.NormEps, found = md.Float(epsKey); !found {
		return ModelConfig{}, fmt.Errorf("gguf has no %s", epsKey)
	}
	if c.RopeTheta, found = md.Float(arch + ".rope.freq_base"); !found {
		c.RopeTheta = 10000
	}
	// GGUF stores these as float32: take the shortest decimal that float32 holds (1e-05, not
	// 9.999999747378752e-06), which is what the model was configured with.
	c.NormEps, c.RopeTheta = shortestFloat32(c.NormEps), shortestFloat32(c.RopeTheta)
	if typ, ok := md.String(arch + ".rope.scaling.type"); ok && typ != "none" {
		factor, _ := md.Float(arch + ".rope.scaling.factor")
		c.RopeScaling = &RopeScaling{Type: typ, Factor: factor, OriginalMaxPositionEmbeddings: u("rope.scaling.original_context_length")}
	}
	if emb, ok := f.Tensor("token_embd.weight"); ok && len(emb.Dims) == 2 {
		c.Vocab = int(emb.Dims[1])
	} else if toks, ok := md.Strings("tokenizer.ggml.tokens"); ok {
		c.Vocab = len(toks)
	}
	_, hasOutput := f.Tensor("output.weight")
	c.TiedEmbeddings = !hasOutput
	if a.ReadGGUF == nil {
		_, c.AttentionBias = f.Tensor("blk.0.attn_q.bias")
	}
	c.BOS = tokenID(md, "tokenizer.ggml.bos_token_id")
	c.Pad = tokenID(md, "tokenizer.ggml.padding_token_id")
	if eos := tokenID(md, "tokenizer.ggml.eos_token_id"); eos >= 0 {
		c.EOS = append(c.EOS, eos)
	}
	if eot := tokenID(md, "tokenizer.ggml.eot_token_id"); eot >= 0 && (len(c.EOS) == 0 || c.EOS[0] != eot) {
		c.EOS = append(c.EOS, eot)
	}
	return c, c.Validate()
}

// tokenID reads an optional token id; llama.cpp writes 0xFFFFFFFF (-1) for "none".
func tokenID(md *gguf.Metadata, key string) int {
	v, ok := md.Int(key)
	if !ok || v < 0 || v >= 1<<31-1 {
		return -1
	}
	return int(v)
}

// Config returns the model configuration.
func (c *GGUFCheckpoint) Config() ModelConfig { return c.cfg }

// Names lists the tensor names, sorted.
func (c *GGUFCheckpoint) Names() []string { return c.names }

// Tensor reads a tensor by canonical name as float32 with its row-major shape.
func (c *GGUFCheckpoint) Tensor(name string) ([]float32, []int, error) {
	ref, ok := c.refs[name]
	if !ok {
		return nil, nil, fmt.Errorf("checkpoint has no tensor %q", name)
	}
	return c.reader.tensor(ref)
}

// Close closes the file.
func (c *GGUFCheckpoint) Close() error { return c.File.Close() }

// HFCheckpoint is a checkpoint read from a Hugging Face directory.
type HFCheckpoint struct {
	Dir        string
	HFConfig   HFConfig
	Generation *GenerationConfig // nil when generation_config.json is absent
	Weights    *safetensors.Dir
	cfg        ModelConfig
	names      []string
	refs       map[string]tensorRef // canonical name -> where the file holds it
	reader     *fusedReader
}

// OpenHF opens a Hugging Face model directory: config.json is read by the architecture its
// model_type names, and its tensors are mapped to canonical names (fused query/key/value tensors
// split on read).
func OpenHF(dir string) (*HFCheckpoint, error) {
	hc, arch, cfg, err := readHFModelConfig(dir)
	if err != nil {
		return nil, err
	}
	gen, ok, err := ReadGenerationConfig(dir)
	if err != nil {
		return nil, err
	}
	w, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	c := &HFCheckpoint{Dir: dir, HFConfig: hc, Weights: w, cfg: cfg, refs: map[string]tensorRef{}}
	if ok {
		c.Generation = &gen
	}
	stored := map[string]bool{}
	for _, n := range w.Names() {
		stored[n] = true
	}
	// A tied head is usually absent from the file; an untied one must be there.
	if _, ok := stored[arch.hfRefs(cfg)["output.weight"].file]; !ok {
		c.cfg.TiedEmbeddings = true
	}
	for name, ref := range arch.hfRefs(c.cfg) {
		if stored[ref.file] {
			c.refs[name] = ref
			c.names = append(c.names, name)
		}
	}
	sort.Strings(c.names)
	var layout QKVLayout
	if arch.HFQKV != nil {
		layout = arch.HFQKV(c.cfg)
	}
	c.reader = &fusedReader{cfg: c.cfg, layout: layout, read: func(file string) ([]float32, []int, error) {
		info, _ := c.Weights.Tensor(file)
		data, err := c.Weights.Float32(file)
		return data, info.Shape, err
	}}
	return c, nil
}

// ReadHFModelConfig reads a Hugging Face directory's config.json with its architecture's keys and
// defaults (no weights are opened).
func ReadHFModelConfig(dir string) (ModelConfig, error) {
	_, _, cfg, err := readHFModelConfig(dir)
	return cfg, err
}

func readHFModelConfig(dir string) (HFConfig, *Arch, ModelConfig, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return HFConfig{}, nil, ModelConfig{}, fmt.Errorf("read model config: %w", err)
	}
	var hc HFConfig
	if err := json.Unmarshal(raw, &hc); err != nil {
		return HFConfig{}, nil, ModelConfig{}, fmt.Errorf("parse %s: %w", filepath.Join(dir, "config.json"), err)
	}
	arch, err := archFor(hc.ModelType)
	if err != nil {
		return HFConfig{}, nil, ModelConfig{}, fmt.Errorf("%s: model_type %q (architectures %v): %w", dir, hc.ModelType, hc.Architectures, err)
	}
	cfg, err := arch.ParseHF(raw)
	if err != nil {
		return HFConfig{}, nil, ModelConfig{}, fmt.Errorf("%s: %w", dir, err)
	}
	return hc, arch, cfg, nil
}

// Config returns the model configuration.
func (c *HFCheckpoint) Config() ModelConfig { return c.cfg }

// Names lists the tensor names (GGUF names), sorted.
func (c *HFCheckpoint) Names() []string { return c.names }

// Tensor reads a tensor by canonical name as float32 with its row-major shape.
func (c *HFCheckpoint) Tensor(name string) ([]float32, []int, error) {
	ref, ok := c.refs[name]
	if !ok {
		return nil, nil, fmt.Errorf("checkpoint has no tensor %q", name)
	}
	return c.reader.tensor(ref)
}

// Close closes the weight files.
func (c *HFCheckpoint) Close() error { return c.Weights.Close() }

// AdjacentRope returns a view of ck whose Q and K tensors are in the adjacent-pair rotary layout
// (Config().Rope == RopeAdjacent), permuting rows on read when ck is half-split. A model that
// only implements adjacent-pair RoPE loads every checkpoint through it.
func AdjacentRope(ck Checkpoint) Checkpoint {
	if ck.Config().Rope == RopeAdjacent {
		return ck
	}
	return adjacentView{ck}
}

type adjacentView struct{ Checkpoint }

func (v adjacentView) Config() ModelConfig {
	c := v.Checkpoint.Config()
	c.Rope = RopeAdjacent
	return c
}

func (v adjacentView) Tensor(name string) ([]float32, []int, error) {
	data, shape, err := v.Checkpoint.Tensor(name)
	if err != nil {
		return nil, nil, err
	}
	rotary, isQ := isRotaryProjection(name)
	if !rotary {
		return data, shape, nil
	}
	cfg := v.Checkpoint.Config()
	heads := cfg.KVHeads
	if isQ {
		heads = cfg.Heads
	}
	cols := 1
	if len(shape) == 2 {
		cols = shape[1]
	}
	data, err = PermuteHFToGGUF(data, heads, cols)
	if err != nil {
		return nil, nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	return data, shape, nil
}

func shortestFloat32(v float64) float64 {
	f, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', -1, 32), 64)
	if err != nil {
		return v
	}
	return f
}

// RawTensorReader is implemented by checkpoints that can hand out a tensor's bytes as stored,
// for callers that keep frozen weights in 16-bit (or quantized) form instead of widening them.
// dtype is the stored element type: "F32", "F16", "BF16", or a ggml block type such as "Q8_0".
// Rows are contiguous in every format, so raw[r*rowBytes:(r+1)*rowBytes] is row r of a
// [rows, cols] weight.
type RawTensorReader interface {
	RawTensor(name string) (raw []byte, dtype string, shape []int, err error)
}

// RawTensor returns the tensor's bytes as stored in the GGUF file (not for a part of attn_qkv).
func (c *GGUFCheckpoint) RawTensor(name string) ([]byte, string, []int, error) {
	ref, ok := c.refs[name]
	if !ok {
		return nil, "", nil, fmt.Errorf("checkpoint has no tensor %q", name)
	}
	if ref.part >= 0 {
		return nil, "", nil, fmt.Errorf("tensor %q is part of the fused %s", name, ref.file)
	}
	info, _ := c.File.Tensor(ref.file)
	raw, err := c.File.Raw(ref.file)
	if err != nil {
		return nil, "", nil, err
	}
	return raw, info.Type.String(), info.Shape(), nil
}

// RawTensor returns the tensor's bytes as stored in the safetensors file. A part of a fused tensor
// has no stored bytes of its own: those are read as float32 (Tensor).
func (c *HFCheckpoint) RawTensor(name string) ([]byte, string, []int, error) {
	ref, ok := c.refs[name]
	if !ok {
		return nil, "", nil, fmt.Errorf("checkpoint has no tensor %q", name)
	}
	if ref.part >= 0 {
		return nil, "", nil, fmt.Errorf("tensor %q is part of the fused %s", name, ref.file)
	}
	info, _ := c.Weights.Tensor(ref.file)
	raw, err := c.Weights.Raw(ref.file)
	if err != nil {
		return nil, "", nil, err
	}
	return raw, info.DType, info.Shape, nil
}

// RawTensor returns the stored bytes with Q/K rows in the adjacent-pair order (whole rows move,
// so this works for any element type). It fails if the wrapped checkpoint has no raw access.
func (v adjacentView) RawTensor(name string) ([]byte, string, []int, error) {
	rr, ok := v.Checkpoint.(RawTensorReader)
	if !ok {
		return nil, "", nil, fmt.Errorf("checkpoint %T gives no raw tensor access", v.Checkpoint)
	}
	raw, dtype, shape, err := rr.RawTensor(name)
	if err != nil {
		return nil, "", nil, err
	}
	rotary, isQ := isRotaryProjection(name)
	if !rotary {
		return raw, dtype, shape, nil
	}
	cfg := v.Checkpoint.Config()
	heads := cfg.KVHeads
	if isQ {
		heads = cfg.Heads
	}
	rows := shape[0]
	if rows == 0 || len(raw)%rows != 0 || rows%(2*heads) != 0 {
		return nil, "", nil, fmt.Errorf("tensor %s: %d bytes are not %d rows of %d heads", name, len(raw), rows, heads)
	}
	rowBytes := len(raw) / rows
	headDim := rows / heads
	half := headDim / 2
	out := make([]byte, len(raw))
	for h := 0; h < heads; h++ {
		for i := 0; i < half; i++ {
			for j := 0; j < 2; j++ {
				dst, src := h*headDim+2*i+j, h*headDim+j*half+i
				copy(out[dst*rowBytes:(dst+1)*rowBytes], raw[src*rowBytes:(src+1)*rowBytes])
			}
		}
	}
	return out, dtype, shape, nil
}
