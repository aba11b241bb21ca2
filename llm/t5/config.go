package t5

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ModelType is config.json's model_type for the checkpoints this package reads (t5, t5 v1.1,
// flan-t5); Architecture is the transformers class it writes into "architectures".
const (
	ModelType    = "t5"
	Architecture = "T5ForConditionalGeneration"
)

// Activation is the feed-forward nonlinearity.
type Activation int

const (
	ActReLU     Activation = iota // max(0, x): t5 v1.0 ("relu")
	ActGELUTanh                   // transformers' gelu_new, the tanh approximation ("gated-gelu": t5 v1.1, flan-t5)
	ActGELU                       // exact erf GELU ("gelu", "gated-gelu" never maps here)
	ActSiLU                       // x·σ(x) ("silu", "gated-silu")
)

// Config is a T5 architecture, read once from config.json.
type Config struct {
	DModel        int // d_model: the residual width
	DKV           int // d_kv: one head's width (inner attention width is Heads·DKV, not always DModel)
	DFF           int // d_ff: feed-forward hidden width
	EncoderLayers int // num_layers
	DecoderLayers int // num_decoder_layers (num_layers when absent)
	Heads         int // num_heads
	Buckets       int // relative_attention_num_buckets
	MaxDistance   int // relative_attention_max_distance
	Eps           float64
	// FeedForwardProj is config.json's feed_forward_proj ("relu", "gated-gelu", ...); Act and Gated
	// are what it means: gated feed-forwards have wi_0 (through Act) times wi_1, the others one wi.
	FeedForwardProj string
	Act             Activation
	Gated           bool
	// Tied: the output head is shared.weight and the decoder output is scaled by DModel^-½ first.
	Tied         bool
	Vocab        int
	DecoderStart int32 // decoder_start_token_id: the first decoder input (the pad token for T5)
	EOS          int32
	Pad          int32
}

// hfConfig is config.json; pointers tell a missing key from a zero.
type hfConfig struct {
	ModelType         string   `json:"model_type"`
	Architectures     []string `json:"architectures,omitempty"`
	DModel            int      `json:"d_model"`
	DKV               int      `json:"d_kv"`
	DFF               int      `json:"d_ff"`
	NumLayers         int      `json:"num_layers"`
	NumDecoderLayers  *int     `json:"num_decoder_layers,omitempty"`
	NumHeads          int      `json:"num_heads"`
	Buckets           *int     `json:"relative_attention_num_buckets,omitempty"`
	MaxDistance       *int     `json:"relative_attention_max_distance,omitempty"`
	Eps               *float64 `json:"layer_norm_epsilon,omitempty"`
	FeedForwardProj   string   `json:"feed_forward_proj,omitempty"`
	TieWordEmbeddings *bool    `json:"tie_word_embeddings,omitempty"`
	VocabSize         int      `json:"vocab_size"`
	DecoderStart      *int32   `json:"decoder_start_token_id,omitempty"`
	EOS               *int32   `json:"eos_token_id,omitempty"`
	Pad               *int32   `json:"pad_token_id,omitempty"`
	IsEncoderDecoder  bool     `json:"is_encoder_decoder"`
	// Written for transformers' sake, ignored when read (feed_forward_proj decides).
	DenseActFn        string  `json:"dense_act_fn,omitempty"`
	IsGatedAct        bool    `json:"is_gated_act"`
	DropoutRate       float64 `json:"dropout_rate"`
	InitializerFactor float64 `json:"initializer_factor"`
	UseCache          bool    `json:"use_cache"`
}

// ParseConfig reads a config.json. Missing keys take transformers' T5Config defaults (32 buckets,
// max distance 128, eps 1e-6, relu, tied embeddings, decoder start = pad = 0, eos = 1).
func ParseConfig(js []byte) (Config, error) {
	var h hfConfig
	if err := json.Unmarshal(js, &h); err != nil {
		return Config{}, fmt.Errorf("t5 config: %w", err)
	}
	if h.ModelType != "" && h.ModelType != ModelType {
		return Config{}, fmt.Errorf("t5 config: model_type %q is not %q", h.ModelType, ModelType)
	}
	c := Config{DModel: h.DModel, DKV: h.DKV, DFF: h.DFF, EncoderLayers: h.NumLayers, DecoderLayers: h.NumLayers,
		Heads: h.NumHeads, Buckets: 32, MaxDistance: 128, Eps: 1e-6, FeedForwardProj: "relu", Tied: true,
		Vocab: h.VocabSize, DecoderStart: 0, EOS: 1, Pad: 0}
	if h.NumDecoderLayers != nil {
		c.DecoderLayers = *h.NumDecoderLayers
	}
	if h.Buckets != nil {
		c.Buckets = *h.Buckets
	}
	if h.MaxDistance != nil {
		c.MaxDistance = *h.MaxDistance
	}
	if h.Eps != nil {
		c.Eps = *h.Eps
	}
	if h.FeedForwardProj != "" {
		c.FeedForwardProj = h.FeedForwardProj
	}
	if h.TieWordEmbeddings != nil {
		c.Tied = *h.TieWordEmbeddings
	}
	if h.Pad != nil {
		c.Pad = *h.Pad
	}
	c.DecoderStart = c.Pad // transformers' generate falls back to the pad token
	if h.DecoderStart != nil {
		c.DecoderStart = *h.DecoderStart
	}
	if h.EOS != nil {
		c.EOS = *h.EOS
	}
	var err error
	if c.Act, c.Gated, err = parseFeedForward(c.FeedForwardProj); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// parseFeedForward splits feed_forward_proj as T5Config does: "[gated-]ACT". "gated-gelu" is the tanh
// GELU (transformers maps it to gelu_new for backward compatibility); a plain "gelu" is the erf one.
func parseFeedForward(s string) (Activation, bool, error) {
	parts := strings.Split(s, "-")
	gated := len(parts) == 2 && parts[0] == "gated"
	if len(parts) > 2 || (len(parts) == 2 && !gated) {
		return 0, false, fmt.Errorf("t5 config: feed_forward_proj %q is not ACT or gated-ACT", s)
	}
	switch act := parts[len(parts)-1]; {
	case act == "relu":
		return ActReLU, gated, nil
	case act == "gelu" && gated, act == "gelu_new":
		return ActGELUTanh, gated, nil
	case act == "gelu":
		return ActGELU, gated, nil
	case act == "silu" || act == "swish":
		return ActSiLU, gated, nil
	default:
		return 0, false, fmt.Errorf("t5 config: feed_forward_proj %q: activation %q is not supported (relu, gelu, gelu_new, silu)", s, act)
	}
}

// LoadConfig reads dir/config.json.
func LoadConfig(dir string) (Config, error) {
	js, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return Config{}, fmt.Errorf("t5: %w", err)
	}
	return ParseConfig(js)
}

// Validate reports a configuration the kernels cannot run.
func (c Config) Validate() error {
	switch {
	case c.DModel <= 0 || c.DKV <= 0 || c.DFF <= 0 || c.Heads <= 0 || c.Vocab <= 0:
		return fmt.Errorf("t5 config: d_model, d_kv, d_ff, num_heads and vocab_size must be positive: %+v", c)
	case c.EncoderLayers <= 0 || c.DecoderLayers <= 0:
		return fmt.Errorf("t5 config: %d encoder and %d decoder layers; both must be positive", c.EncoderLayers, c.DecoderLayers)
	case c.Buckets < 4 || c.Buckets%2 != 0:
		// Bidirectional buckets halve the count, and each half splits again into exact and log-spaced.
		return fmt.Errorf("t5 config: relative_attention_num_buckets %d must be even and at least 4", c.Buckets)
	case c.MaxDistance <= c.Buckets/2:
		// The log-spaced buckets divide by log(max_distance / exact), exact up to num_buckets/2.
		return fmt.Errorf("t5 config: relative_attention_max_distance %d must exceed half the %d buckets", c.MaxDistance, c.Buckets)
	case c.Eps <= 0:
		return fmt.Errorf("t5 config: layer_norm_epsilon %g must be positive", c.Eps)
	case c.DecoderStart < 0 || int(c.DecoderStart) >= c.Vocab:
		return fmt.Errorf("t5 config: decoder_start_token_id %d outside vocabulary of %d", c.DecoderStart, c.Vocab)
	}
	return nil
}

// Inner is the attention width, Heads·DKV.
func (c Config) Inner() int { return c.Heads * c.DKV }

// JSON returns the config.json transformers reads back as this architecture.
func (c Config) JSON() ([]byte, error) {
	dl, nb, md, eps, tied := c.DecoderLayers, c.Buckets, c.MaxDistance, c.Eps, c.Tied
	ds, eos, pad := c.DecoderStart, c.EOS, c.Pad
	act := c.FeedForwardProj
	if i := strings.LastIndex(act, "-"); i >= 0 {
		act = act[i+1:]
	}
	if c.Gated && act == "gelu" {
		act = "gelu_new"
	}
	h := hfConfig{ModelType: ModelType, Architectures: []string{Architecture}, DModel: c.DModel, DKV: c.DKV,
		DFF: c.DFF, NumLayers: c.EncoderLayers, NumDecoderLayers: &dl, NumHeads: c.Heads, Buckets: &nb,
		MaxDistance: &md, Eps: &eps, FeedForwardProj: c.FeedForwardProj, TieWordEmbeddings: &tied,
		VocabSize: c.Vocab, DecoderStart: &ds, EOS: &eos, Pad: &pad, IsEncoderDecoder: true,
		DenseActFn: act, IsGatedAct: c.Gated, DropoutRate: 0.1, InitializerFactor: 1, UseCache: true}
	js, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("t5 config: %w", err)
	}
	return append(js, '\n'), nil
}

// IsCheckpoint reports whether path is a Hugging Face directory whose config.json has model_type t5.
func IsCheckpoint(path string) bool {
	js, err := os.ReadFile(filepath.Join(path, "config.json"))
	if err != nil {
		return false
	}
	var head struct {
		ModelType string `json:"model_type"`
	}
	return json.Unmarshal(js, &head) == nil && head.ModelType == ModelType
}
