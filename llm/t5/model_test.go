package t5

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

// flanT5SmallConfig is google/flan-t5-small's config.json (task_specific_params left out).
const flanT5SmallConfig = `{
  "architectures": ["T5ForConditionalGeneration"],
  "d_ff": 1024, "d_kv": 64, "d_model": 512, "decoder_start_token_id": 0, "dense_act_fn": "gelu_new",
  "dropout_rate": 0.1, "eos_token_id": 1, "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0,
  "is_encoder_decoder": true, "is_gated_act": true, "layer_norm_epsilon": 1e-06, "model_type": "t5",
  "n_positions": 512, "num_decoder_layers": 8, "num_heads": 6, "num_layers": 8, "output_past": true,
  "pad_token_id": 0, "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32,
  "tie_word_embeddings": false, "torch_dtype": "float32", "transformers_version": "4.23.1",
  "use_cache": true, "vocab_size": 32128
}`

func TestParseConfig(t *testing.T) {
	cases := []struct {
		name string
		js   string
		want Config
	}{
		{"flan-t5-small", flanT5SmallConfig, Config{DModel: 512, DKV: 64, DFF: 1024, EncoderLayers: 8, DecoderLayers: 8,
			Heads: 6, Buckets: 32, MaxDistance: 128, Eps: 1e-6, FeedForwardProj: "gated-gelu", Act: ActGELUTanh, Gated: true,
			Tied: false, Vocab: 32128, DecoderStart: 0, EOS: 1, Pad: 0}},
		{"t5-small: relu, tie_word_embeddings missing means tied, decoder layers default to num_layers",
			`{"model_type": "t5", "d_model": 512, "d_kv": 64, "d_ff": 2048, "num_layers": 6, "num_heads": 8,
			  "vocab_size": 32128, "feed_forward_proj": "relu", "decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0}`,
			Config{DModel: 512, DKV: 64, DFF: 2048, EncoderLayers: 6, DecoderLayers: 6, Heads: 8, Buckets: 32,
				MaxDistance: 128, Eps: 1e-6, FeedForwardProj: "relu", Act: ActReLU, Tied: true, Vocab: 32128, EOS: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(c.js))
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
			js, err := got.JSON()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseConfig(js)
			if err != nil || back != got {
				t.Fatalf("config.json round trip: %+v, %v\n%s", back, err, js)
			}
		})
	}
	for _, bad := range []string{`{"model_type": "llama"}`, `{"model_type": "t5", "d_model": 8, "d_kv": 4, "d_ff": 8,
		"num_layers": 1, "num_heads": 2, "vocab_size": 10, "feed_forward_proj": "gated-tanh"}`} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("ParseConfig(%s) accepted it", bad)
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, tied := range []bool{false, true} {
		cfg := tinyConfig("gated-gelu", tied)
		m, err := NewRandom(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := m.Save(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err != nil {
			t.Fatal(err)
		}
		back, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if back.Config() != cfg {
			t.Fatalf("config after round trip %+v, want %+v", back.Config(), cfg)
		}
		want, got := m.Tensors(), back.Tensors()
		if len(want) != len(got) {
			t.Fatalf("%d tensors after round trip, want %d", len(got), len(want))
		}
		for i := range want {
			if want[i].Name != got[i].Name || !slices.Equal(want[i].Data, got[i].Data) {
				t.Fatalf("tensor %s changed in the round trip", want[i].Name)
			}
		}
		hasHead := false
		for _, ts := range got {
			hasHead = hasHead || ts.Name == "lm_head.weight"
		}
		if hasHead == tied {
			t.Fatalf("tied=%v: lm_head.weight present=%v", tied, hasHead)
		}
	}
}

// TestIncrementalDecoderMatchesFullForward runs the KV-cache decoder step by step and compares each
// step's logits with the full decoder forward over the whole prefix.
func TestIncrementalDecoderMatchesFullForward(t *testing.T) {
	for _, cfg := range []Config{tinyConfig("gated-gelu", false), tinyConfig("relu", true)} {
		cfg.Vocab = 40
		m, err := NewRandom(cfg, 3)
		if err != nil {
			t.Fatal(err)
		}
		input := []int32{5, 9, 2, 33, 17, 8, 1}
		const steps = 20 // beyond the 16 positions of max distance, into the capped bucket
		enc, err := m.Encode(input)
		if err != nil {
			t.Fatal(err)
		}
		d := m.NewDecoder(enc, steps)
		V := cfg.Vocab
		stepLogits := make([]float32, steps*V)
		dec := []int32{cfg.DecoderStart}
		for i := range steps {
			if err := d.Step(dec[i], stepLogits[i*V:]); err != nil {
				t.Fatal(err)
			}
			dec = append(dec, argmax(stepLogits[i*V:(i+1)*V]))
		}
		full, err := m.Logits(Batch{B: 1, TEnc: len(input), TDec: steps, EncTokens: input,
			EncMask: ones(len(input)), DecTokens: dec[:steps]})
		if err != nil {
			t.Fatal(err)
		}
		if rel := maxRelDiff(stepLogits, full); rel > 1e-5 {
			t.Fatalf("incremental logits differ from the full forward by %.2e (relative to the largest)", rel)
		}
		greedy, err := m.Greedy(input, steps)
		if err != nil {
			t.Fatal(err)
		}
		want := dec[1:]
		if i := slices.Index(want, cfg.EOS); i >= 0 {
			want = want[:i+1]
		}
		if !slices.Equal(greedy, want) {
			t.Fatalf("Greedy = %v, step by step %v", greedy, want)
		}
	}
}

func ones(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

// maxRelDiff is max|a − b| / max|b|.
func maxRelDiff(a, b []float32) float64 {
	var d, m float64
	for i := range b {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
		m = max(m, math.Abs(float64(b[i])))
	}
	return d / m
}

func TestPackBatch(t *testing.T) {
	cfg := tinyConfig("relu", true)
	b := PackBatch(cfg, []Example{{Input: []int32{4, 5, 6}, Target: []int32{7, 8, 1}}, {Input: []int32{9}, Target: []int32{1}}}, 4, 3)
	want := Batch{B: 2, TEnc: 4, TDec: 3,
		EncTokens: []int32{4, 5, 6, 0, 9, 0, 0, 0}, EncMask: []float32{1, 1, 1, 0, 1, 0, 0, 0},
		DecTokens: []int32{0, 7, 8, 0, 1, 0}, Targets: []int32{7, 8, 1, 1, 0, 0}, Mask: []float32{1, 1, 1, 1, 0, 0}}
	if !slices.Equal(b.EncTokens, want.EncTokens) || !slices.Equal(b.EncMask, want.EncMask) ||
		!slices.Equal(b.DecTokens, want.DecTokens) || !slices.Equal(b.Targets, want.Targets) || !slices.Equal(b.Mask, want.Mask) {
		t.Fatalf("PackBatch = %+v\nwant %+v", b, want)
	}
	bad := b
	bad.EncMask = make([]float32, 8)
	if err := bad.Validate(cfg.Vocab); err == nil {
		t.Fatal("a batch whose encoder inputs are all padding validated")
	}
}

// TestTrainingStepAllocations: once the batch shape is known, ForwardBackward allocates no tensors: the
// activations and gradients are reused. What remains are the closures handed to tensor.Parallel (~200
// bytes each, as in llm/model) and tensor's packing buffers growing to a new size: kilobytes, not tensors.
func TestTrainingStepAllocations(t *testing.T) {
	cfg := tinyConfig("gated-gelu", false)
	m, err := NewRandom(cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	perStep := func(b Batch) uint64 {
		if _, err := m.ForwardBackward(b, 1); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		const steps = 5
		runtime.ReadMemStats(&before)
		for range steps {
			m.ZeroGrads()
			if _, err := m.ForwardBackward(b, 1); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / steps
	}
	small := tinyBatch()
	large := PackBatch(cfg, []Example{
		{Input: []int32{3, 4, 5, 6, 7, 8, 9, 10, 2, 3, 4, 5}, Target: []int32{9, 10, 3, 4, 5, 6, 7, 1}},
		{Input: []int32{3, 4}, Target: []int32{2, 1}}, {Input: []int32{5}, Target: []int32{1}},
		{Input: []int32{6, 7, 8}, Target: []int32{8, 7, 6, 5, 1}}}, 12, 8)
	s, l := perStep(small), perStep(large)
	t.Logf("%d bytes a step at %d tokens, %d at %d", s, small.B*(small.TEnc+small.TDec), l, large.B*(large.TEnc+large.TDec))
	if s > 32<<10 || l > 32<<10 {
		t.Errorf("ForwardBackward allocates %d bytes a step on a small batch, %d on a larger one", s, l)
	}
}

// TestForwardBackwardLowersLoss: the loss of a training pass is the evaluation loss, and a step
// along −gradient lowers it.
func TestForwardBackwardLowersLoss(t *testing.T) {
	cfg := tinyConfig("gated-gelu", false)
	m, err := NewRandom(cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	b := tinyBatch()
	before, n, err := m.LossSum(b)
	if err != nil {
		t.Fatal(err)
	}
	ps := m.Params()
	sum, err := m.ForwardBackward(b, 1/n)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(sum-before) > 1e-4*before {
		t.Fatalf("ForwardBackward loss %g, LossSum %g", sum, before)
	}
	for _, p := range ps {
		for i := range p.Data {
			p.Data[i] -= 0.05 * p.Grad[i]
		}
	}
	after, _, _ := m.LossSum(b)
	if after >= before {
		t.Fatalf("loss %g after a gradient step, %g before", after, before)
	}
}
