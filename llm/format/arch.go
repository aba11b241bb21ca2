package format

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/lathe-ml/lathe/llm/format/gguf"
)

// Arch is one model architecture as checkpoints spell it: how its config.json reads and writes, how
// its tensors are named in Hugging Face and GGUF files, and which of them are fused. Each architecture
// is a file (arch_llama.go, arch_falcon.go, ...) that registers itself under its Hugging Face
// model_type, as ollama's model.Register does; the loader and the writers pick by that name.
//
// Inside Lathe every tensor goes by one canonical name, llama.cpp's llama names
// ("blk.3.attn_q.weight", "blk.3.ffn_up.bias"; see names.go), whatever the file calls it. A fused
// query/key/value tensor is split into attn_q, attn_k and attn_v on read and fused again on write.
type Arch struct {
	Name    string   // Hugging Face model_type, and ModelConfig.Architecture
	Aliases []string // other model_type values of the same architecture (falcon's "RefinedWebModel")
	Class   string   // transformers class written into config.json's "architectures"
	GGUF    string   // llama.cpp's general.architecture
	// GGUFRope is the rotary pairing GGUF files of this architecture hold their Q/K rows in.
	GGUFRope RopePairing
	// ParseHF reads config.json (applying transformers' defaults); WriteHF writes it back.
	ParseHF func(raw []byte) (ModelConfig, error)
	WriteHF func(m ModelConfig, torchDType string) (any, error)
	// HFNames maps the canonical names of the model's global tensors and of one layer's tensors
	// (the suffix after "blk.N.") to their Hugging Face names (the layer's without its prefix).
	HFNames func(m ModelConfig) (global, layer map[string]string)
	// HFLayerPrefix is the Hugging Face prefix of layer N's tensors ("model.layers.%d.").
	HFLayerPrefix string
	// HFFused, when set, is the Hugging Face name (within a layer, without ".weight") of the fused
	// query/key/value projection, whose rows HFQKV orders.
	HFFused string
	HFQKV   func(m ModelConfig) QKVLayout
	// GGUFKeys returns the architecture's own GGUF metadata (beyond the common keys); ReadGGUF sets
	// the ModelConfig fields those keys hold.
	GGUFKeys func(m ModelConfig) []gguf.KV
	ReadGGUF func(md *gguf.Metadata, has func(tensor string) bool, m *ModelConfig) error
	// GGUFNames renames canonical layer suffixes whose GGUF name differs (falcon's second norm).
	GGUFNames map[string]string
	// GGUFFused says whether GGUF files fuse Q, K and V into attn_qkv (llama.cpp's converter writes
	// them in thirds: all query rows, then key, then value).
	GGUFFused bool
}

var archs = map[string]*Arch{}

// Register adds an architecture; it panics on a duplicate name (a programming error).
func Register(a *Arch) {
	for _, n := range append([]string{a.Name, a.GGUF}, a.Aliases...) {
		if prev, ok := archs[n]; ok && prev != a {
			panic(fmt.Sprintf("format: architecture %q registered twice", n))
		}
		archs[n] = a
	}
}

// LookupArch returns the architecture a model_type, an alias or a GGUF general.architecture names.
func LookupArch(name string) (*Arch, bool) {
	a, ok := archs[name]
	return a, ok
}

// CanonicalArch returns the model_type an architecture name stands for ("gptneox" and "gpt_neox" are
// both "gpt_neox"; "RefinedWebModel" is "falcon"), and whether Lathe knows it.
func CanonicalArch(name string) (string, bool) {
	if a, ok := archs[name]; ok {
		return a.Name, true
	}
	if a, ok := archs[strings.ToLower(name)]; ok {
		return a.Name, true
	}
	return name, false
}

// Architectures lists the model_types Lathe reads, sorted.
func Architectures() []string {
	var out []string
	for _, a := range archs {
		if !slices.Contains(out, a.Name) {
			out = append(out, a.Name)
		}
	}
	sort.Strings(out)
	return out
}

func archFor(name string) (*Arch, error) {
	a, ok := LookupArch(name)
	if !ok {
		return nil, fmt.Errorf("architecture %q is not supported; supported: %s", name, strings.Join(Architectures(), ", "))
	}
	return a, nil
}

// QKVLayout orders the rows of a fused query/key/value projection, in units of whole heads.
type QKVLayout int

const (
	// QKVThirds is [all query heads, all key heads, all value heads] (mpt's Wqkv, GGUF's attn_qkv,
	// falcon-7b's multi-query layout).
	QKVThirds QKVLayout = iota
	// QKVGrouped repeats, per key/value head, [its Heads/KVHeads query heads, key, value]: falcon's
	// new_decoder_architecture, and with one query head per group gpt_neox's and falcon-rw's
	// per-head [q, k, v].
	QKVGrouped
)

// qkvRows returns, for the fused tensor's head blocks in order, which part (0 q, 1 k, 2 v) and which
// head of that part each block holds.
func qkvRows(layout QKVLayout, heads, kvHeads int) (part, head []int) {
	if layout == QKVThirds || kvHeads == 1 {
		for p, n := range []int{heads, kvHeads, kvHeads} {
			for h := range n {
				part, head = append(part, p), append(head, h)
			}
		}
		return part, head
	}
	g := heads / kvHeads
	for kv := range kvHeads {
		for i := range g {
			part, head = append(part, 0), append(head, kv*g+i)
		}
		part, head = append(part, 1, 2), append(head, kv, kv)
	}
	return part, head
}

// SplitQKV cuts a fused [(Heads+2·KVHeads)·HeadDim, cols] tensor (cols 1 for a bias) into Q, K, V.
func SplitQKV(data []float32, layout QKVLayout, heads, kvHeads, headDim, cols int) (q, k, v []float32, err error) {
	block := headDim * cols
	if len(data) != (heads+2*kvHeads)*block {
		return nil, nil, nil, fmt.Errorf("fused qkv has %d values, want (%d+2·%d heads)·%d·%d", len(data), heads, kvHeads, headDim, cols)
	}
	parts := [3][]float32{make([]float32, heads*block), make([]float32, kvHeads*block), make([]float32, kvHeads*block)}
	part, head := qkvRows(layout, heads, kvHeads)
	for i := range part {
		copy(parts[part[i]][head[i]*block:(head[i]+1)*block], data[i*block:(i+1)*block])
	}
	return parts[0], parts[1], parts[2], nil
}

// FuseQKV is SplitQKV's inverse.
func FuseQKV(q, k, v []float32, layout QKVLayout, heads, kvHeads, headDim, cols int) ([]float32, error) {
	block := headDim * cols
	if len(q) != heads*block || len(k) != kvHeads*block || len(v) != kvHeads*block {
		return nil, fmt.Errorf("fuse qkv: sizes %d, %d, %d do not match %d/%d heads of %d·%d", len(q), len(k), len(v), heads, kvHeads, headDim, cols)
	}
	parts := [3][]float32{q, k, v}
	out := make([]float32, (heads+2*kvHeads)*block)
	part, head := qkvRows(layout, heads, kvHeads)
	for i := range part {
		copy(out[i*block:(i+1)*block], parts[part[i]][head[i]*block:(head[i]+1)*block])
	}
	return out, nil
}

// tensorRef says where a canonical tensor lives in a file: its name there and, for one part of a
// fused query/key/value tensor, which part (0 q, 1 k, 2 v; -1 for a whole tensor).
type tensorRef struct {
	file string
	part int
}

// qkvPart returns the part index of a canonical attn_q/attn_k/attn_v suffix ("attn_k.bias" -> 1, ".bias").
func qkvPart(suffix string) (int, string, bool) {
	for i, p := range []string{"attn_q.", "attn_k.", "attn_v."} {
		if rest, ok := strings.CutPrefix(suffix, p); ok {
			return i, rest, true
		}
	}
	return -1, "", false
}

// hfRefs maps every canonical tensor name of a model with this configuration to its Hugging Face name.
func (a *Arch) hfRefs(m ModelConfig) map[string]tensorRef {
	global, layer := a.HFNames(m)
	refs := map[string]tensorRef{}
	for c, h := range global {
		refs[c] = tensorRef{h, -1}
	}
	for l := range m.Layers {
		p := fmt.Sprintf(a.HFLayerPrefix, l)
		for c, h := range layer {
			refs[LayerTensor(l, c)] = tensorRef{p + h, -1}
		}
		if a.HFFused == "" {
			continue
		}
		for i, part := range []string{"attn_q", "attn_k", "attn_v"} {
			refs[LayerTensor(l, part+".weight")] = tensorRef{p + a.HFFused + ".weight", i}
			if m.AttentionBias {
				refs[LayerTensor(l, part+".bias")] = tensorRef{p + a.HFFused + ".bias", i}
			}
		}
	}
	return refs
}

// ggufRefs maps canonical names to GGUF names.
func (a *Arch) ggufRefs(m ModelConfig, names []string) map[string]tensorRef {
	refs := map[string]tensorRef{}
	for _, n := range names {
		refs[n] = tensorRef{n, -1}
		rest, ok := strings.CutPrefix(n, "blk.")
		if !ok {
			continue
		}
		layer, suffix, ok := splitLayer(rest)
		if !ok {
			continue
		}
		if g, ok := a.GGUFNames[suffix]; ok {
			refs[n] = tensorRef{"blk." + layer + "." + g, -1}
		}
		if i, kind, ok := qkvPart(suffix); ok && a.GGUFFused {
			refs[n] = tensorRef{"blk." + layer + ".attn_qkv." + kind, i}
		}
	}
	return refs
}

// canonicalNames lists the canonical tensor names a model of this configuration has (the engine's
// set): used to map a file's names back.
func canonicalNames(m ModelConfig) []string {
	names := []string{"token_embd.weight", "output_norm.weight"}
	if m.NormBias {
		names = append(names, "output_norm.bias")
	}
	if !m.TiedEmbeddings {
		names = append(names, "output.weight")
	}
	for l := range m.Layers {
		for _, s := range LayerSuffixes(m) {
			names = append(names, LayerTensor(l, s))
		}
	}
	return names
}

// LayerSuffixes lists the canonical names (after "blk.N.") of one layer's tensors.
func LayerSuffixes(m ModelConfig) []string {
	s := []string{"attn_norm.weight"}
	if m.NormBias {
		s = append(s, "attn_norm.bias")
	}
	s = append(s, "attn_q.weight", "attn_k.weight", "attn_v.weight")
	if m.AttentionBias {
		s = append(s, "attn_q.bias", "attn_k.bias", "attn_v.bias")
	}
	s = append(s, "attn_output.weight")
	if m.OutputBias {
		s = append(s, "attn_output.bias")
	}
	if !m.SharedNorm {
		s = append(s, "ffn_norm.weight")
		if m.NormBias {
			s = append(s, "ffn_norm.bias")
		}
	}
	if m.Gated() {
		s = append(s, "ffn_gate.weight")
	}
	s = append(s, "ffn_up.weight", "ffn_down.weight")
	if m.MLPBias {
		s = append(s, "ffn_up.bias", "ffn_down.bias")
	}
	return s
}

// fusedReader reads canonical tensors through refs, splitting fused ones (the last fused tensor read
// is kept, so reading q, k and v costs one read).
type fusedReader struct {
	cfg       ModelConfig
	layout    QKVLayout
	read      func(file string) ([]float32, []int, error)
	lastName  string
	lastParts [3][]float32
}

func (r *fusedReader) tensor(ref tensorRef) ([]float32, []int, error) {
	data, shape, err := r.read(ref.file)
	if err != nil || ref.part < 0 {
		return data, shape, err
	}
	if r.lastName != ref.file {
		cols := 1
		if len(shape) == 2 {
			cols = shape[1]
		}
		q, k, v, err := SplitQKV(data, r.layout, r.cfg.Heads, r.cfg.KVHeads, r.cfg.HeadDim, cols)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %s: %w", ref.file, err)
		}
		r.lastName, r.lastParts = ref.file, [3][]float32{q, k, v}
	}
	out := r.lastParts[ref.part]
	heads := r.cfg.KVHeads
	if ref.part == 0 {
		heads = r.cfg.Heads
	}
	if len(shape) == 2 {
		return out, []int{heads * r.cfg.HeadDim, shape[1]}, nil
	}
	return out, []int{heads * r.cfg.HeadDim}, nil
}

// parseJSON unmarshals config.json into v with a message naming the file.
func parseJSON(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("parse config.json: %w", err)
	}
	return nil
}

// mergeSource returns config.json's keys of the checkpoint a model came from (so keys Lathe does not
// model survive an export), with the keys of out written over them.
func mergeSource(src json.RawMessage, out map[string]any) map[string]any {
	if len(src) == 0 {
		return out
	}
	var base map[string]any
	if json.Unmarshal(src, &base) != nil {
		return out
	}
	for k, v := range out {
		base[k] = v
	}
	return base
}

// HFTensorName returns the Hugging Face name of a canonical tensor of a model with this
// configuration and, when the file fuses it with the other projections of the attention, which part
// it is (0 q, 1 k, 2 v; −1 for a tensor of its own).
func HFTensorName(m ModelConfig, canonical string) (name string, part int, ok bool) {
	a, found := LookupArch(m.Architecture)
	if !found {
		return "", -1, false
	}
	ref, ok := a.hfRefs(m)[canonical]
	return ref.file, ref.part, ok
}

// HFQKVLayout is the row order of the architecture's fused query/key/value tensor in Hugging Face
// files.
func HFQKVLayout(m ModelConfig) QKVLayout {
	if a, ok := LookupArch(m.Architecture); ok && a.HFQKV != nil {
		return a.HFQKV(m)
	}
	return QKVThirds
}
