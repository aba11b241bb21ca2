package t5

import (
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// The reference is reference/t5_reference.py: T5 written in plain PyTorch (float64) after
// transformers' modeling_t5.py. It writes tiny random checkpoints in Hugging Face's layout and prints
// what the model computes on them; this test loads the same checkpoints and compares.

const python = "/usr/bin/python3"

type referenceOutput struct {
	Cases []struct {
		Name        string               `json:"name"`
		B           int                  `json:"B"`
		TEnc        int                  `json:"t_enc"`
		TDec        int                  `json:"t_dec"`
		EncIDs      []int32              `json:"enc_ids"`
		EncMask     []float32            `json:"enc_mask"`
		DecIDs      []int32              `json:"dec_ids"`
		Labels      []int32              `json:"labels"`
		Logits      []float64            `json:"logits"`
		Loss        float64              `json:"loss"`
		Grads       map[string][]float64 `json:"grads"`
		GreedyInput []int32              `json:"greedy_input"`
		Greedy      []int32              `json:"greedy"`
	} `json:"cases"`
	Buckets []struct {
		NumBuckets    int     `json:"num_buckets"`
		MaxDistance   int     `json:"max_distance"`
		Bidirectional bool    `json:"bidirectional"`
		First         int     `json:"first"`
		Buckets       []int32 `json:"buckets"`
	} `json:"buckets"`
}

// runReference runs the PyTorch reference into dir and returns its output. Without PyTorch the test
// fails (it is the independent check of the whole model), unless -short.
func runReference(t *testing.T, dir string) referenceOutput {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the PyTorch reference is not run")
	}
	if out, err := exec.Command(python, "-c", "import torch").CombinedOutput(); err != nil {
		t.Fatalf("the T5 reference needs PyTorch for %s: apt-get install python3-torch (%v: %s)", python, err, out)
	}
	cmd := exec.Command(python, filepath.Join("reference", "t5_reference.py"), dir)
	js, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("reference/t5_reference.py: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("reference/t5_reference.py: %v", err)
	}
	var ref referenceOutput
	if err := json.Unmarshal(js, &ref); err != nil {
		t.Fatalf("reference output: %v", err)
	}
	return ref
}

func TestMatchesPyTorchReference(t *testing.T) {
	dir := t.TempDir()
	ref := runReference(t, dir)

	t.Run("relative position buckets", func(t *testing.T) {
		for _, c := range ref.Buckets {
			for i, want := range c.Buckets {
				r := c.First + i
				if got := relativeBucket(r, c.Bidirectional, c.NumBuckets, c.MaxDistance); got != int(want) {
					t.Fatalf("buckets=%d max=%d bidirectional=%v: bucket(%d) = %d, torch %d",
						c.NumBuckets, c.MaxDistance, c.Bidirectional, r, got, want)
				}
			}
		}
	})

	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			m, err := Load(filepath.Join(dir, c.Name))
			if err != nil {
				t.Fatal(err)
			}
			cfg := m.Config()
			b := Batch{B: c.B, TEnc: c.TEnc, TDec: c.TDec, EncTokens: c.EncIDs, EncMask: c.EncMask, DecTokens: c.DecIDs,
				Targets: make([]int32, len(c.Labels)), Mask: make([]float32, len(c.Labels))}
			for i, l := range c.Labels {
				if l != -100 { // transformers' ignore_index
					b.Targets[i], b.Mask[i] = l, 1
				}
			}

			logits, err := m.Logits(b)
			if err != nil {
				t.Fatal(err)
			}
			rel := relDiff(logits, c.Logits)
			t.Logf("logits: %d values, max |Go − torch| / max |torch| = %.2e", len(logits), rel)
			if rel > 1e-4 {
				t.Errorf("logits differ from the reference by %.2e relative", rel)
			}

			sum, n, err := m.LossSum(b)
			if err != nil {
				t.Fatal(err)
			}
			loss := sum / n
			t.Logf("loss: Go %.9f, torch %.9f (relative %.2e)", loss, c.Loss, math.Abs(loss-c.Loss)/c.Loss)
			if math.Abs(loss-c.Loss) > 1e-5*math.Max(1, math.Abs(c.Loss)) {
				t.Errorf("loss %.9f, reference %.9f", loss, c.Loss)
			}

			ps := m.Params()
			if _, err := m.ForwardBackward(b, 1/n); err != nil {
				t.Fatal(err)
			}
			worst, worstName := 0.0, ""
			for _, p := range ps {
				want, ok := c.Grads[p.Name]
				if !ok {
					t.Fatalf("the reference has no gradient for %s", p.Name)
				}
				if r := relDiff(p.Grad, want); r > worst {
					worst, worstName = r, p.Name
				}
			}
			t.Logf("gradients: %d tensors, worst max |Go − torch| / max |torch| = %.2e (%s)", len(ps), worst, worstName)
			if worst > 1e-4 {
				t.Errorf("gradient of %s differs from the reference by %.2e relative", worstName, worst)
			}

			// Greedy through the KV-cache decoder, 32 tokens without stopping at EOS, as the reference.
			enc, err := m.Encode(c.GreedyInput)
			if err != nil {
				t.Fatal(err)
			}
			d := m.NewDecoder(enc, len(c.Greedy))
			step := make([]float32, cfg.Vocab)
			tok, got := cfg.DecoderStart, []int32{}
			for range c.Greedy {
				if err := d.Step(tok, step); err != nil {
					t.Fatal(err)
				}
				tok = argmax(step)
				got = append(got, tok)
			}
			if !slices.Equal(got, c.Greedy) {
				t.Errorf("greedy tokens\n Go    %v\n torch %v", got, c.Greedy)
			}
			want := c.Greedy
			if i := slices.Index(want, cfg.EOS); i >= 0 {
				want = want[:i+1]
			}
			if g, err := m.Greedy(c.GreedyInput, len(c.Greedy)); err != nil || !slices.Equal(g, want) {
				t.Errorf("Greedy = %v (%v), want %v", g, err, want)
			}
			t.Logf("greedy: %d tokens identical", len(got))
		})
	}
}

// relDiff is max|a − b| / max|b|.
func relDiff(a []float32, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d, m float64
	for i := range b {
		d = max(d, math.Abs(float64(a[i])-b[i]))
		m = max(m, math.Abs(b[i]))
	}
	return d / m
}
