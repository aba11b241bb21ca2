package finetune

import (
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/llm/tensor"
)

// The server's LATHE_TRAIN_PRECISION reaches a job's resolved hyperparameters and its trainer: bf16
// runs full fine-tuning in bfloat16 mixed precision where the CPU multiplies bfloat16 (float32
// elsewhere, where it is faster), fp32 makes LoRA widen its frozen base, and a value that is neither
// fails the job naming the variable.
func TestPrecisionSetting(t *testing.T) {
	for _, tc := range []struct {
		env, method string
		mixed       bool
		widen       bool
	}{
		{"", "full", false, false},
		{"bf16", "full", true, false},
		{"fp32", "full", false, false},
		{"", "lora", false, false},
		{"bf16", "lora", false, false},
		{"fp32", "lora", false, true},
	} {
		t.Setenv(PrecisionEnv, tc.env)
		hp, err := ResolveHyperParameters(300_000, nil)
		if err != nil {
			t.Fatal(err)
		}
		if hp.Precision != tc.env {
			t.Fatalf("%s=%q: resolved precision %q", PrecisionEnv, tc.env, hp.Precision)
		}
		if hp, err = hp.withMethod(tc.method); err != nil {
			t.Fatal(err)
		}
		lm := loadStories(t)
		if _, err := lm.NewTrainer(hp, 4, 1); err != nil {
			t.Fatal(err)
		}
		m := lm.(*engineModel).m
		lc, _ := m.LoRA()
		if tc.mixed && !tensor.BF16Native() {
			tc.mixed = false
			if _, fallback := hp.mixedBF16(); !fallback {
				t.Errorf("%s=%q, %s on a CPU without AVX512_BF16: no fallback reported", PrecisionEnv, tc.env, tc.method)
			}
		}
		if m.MixedBF16() != tc.mixed || lc.WidenFrozen != tc.widen {
			t.Errorf("%s=%q, %s: mixed precision %v, LoRA base widened %v; want %v, %v", PrecisionEnv, tc.env, tc.method,
				m.MixedBF16(), lc.WidenFrozen, tc.mixed, tc.widen)
		}
	}
	t.Setenv(PrecisionEnv, "fp16")
	if _, err := ResolveHyperParameters(300_000, nil); err == nil || !strings.Contains(err.Error(), PrecisionEnv) {
		t.Fatalf("an unknown precision: error %v, want one naming %s", err, PrecisionEnv)
	}
}
