package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchJSON runs `lathe bench ARGS...` and decodes the last line of its output, which must be the
// only JSON it prints.
func benchJSON(t *testing.T, args ...string) map[string]float64 {
	t.Helper()
	out, err := runCommand(context.Background(), benchCommand(), nil, nil, args...)
	if err != nil {
		t.Fatalf("lathe bench %s: %v", strings.Join(args, " "), err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	last := lines[len(lines)-1]
	var raw map[string]any
	if err := json.Unmarshal([]byte(last), &raw); err != nil {
		t.Fatalf("lathe bench %s: last line %q is not JSON: %v", strings.Join(args, " "), last, err)
	}
	nums := map[string]float64{}
	for k, v := range raw {
		if f, ok := v.(float64); ok {
			nums[k] = f
		}
	}
	return nums
}

func requirePositive(t *testing.T, res map[string]float64, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if !(res[k] > 0) || math.IsInf(res[k], 0) {
			t.Errorf("%s = %v, want a positive number (result %v)", k, res[k], res)
		}
	}
}

func TestBenchMatmul(t *testing.T) {
	for _, layout := range []string{"nn", "nt", "tn"} {
		res := benchJSON(t, "matmul", "--m", "65", "--n", "47", "--k", "33", "--layout", layout, "--iters", "3")
		requirePositive(t, res, "gflops", "gflops_best", "ms_per_iter", "peak_memory_bytes", "threads")
		if res["m"] != 65 || res["n"] != 47 || res["k"] != 33 || res["iters"] != 3 {
			t.Errorf("%s: shape in the result %v", layout, res)
		}
		// gflops is 2·M·N·K over the mean time of a product.
		if want := 2 * 65 * 47 * 33 / (res["ms_per_iter"] * 1e6); math.Abs(res["gflops"]-want) > 1e-9*want {
			t.Errorf("%s: gflops %v, want 2MNK/time = %v", layout, res["gflops"], want)
		}
	}
}

func TestBenchTrain(t *testing.T) {
	// Parameters of this shape, counted by hand: embedding and untied head 2·100·32, final norm 32,
	// per layer Q and O 32·32 each, K and V 32·16 each (2 kv heads of 8), gate, up and down 32·64
	// each, two norms of 32.
	const params = 2*100*32 + 32 + 2*(2*32*32+2*32*16+3*32*64+2*32)
	for _, method := range []string{"full", "lora"} {
		args := []string{"train", "--dim", "32", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--ffn", "64",
			"--vocab", "100", "--batch", "2", "--seq", "16", "--steps", "2"}
		flopPerToken := 6.0
		if method == "lora" {
			args = append(args, "--lora")
			flopPerToken = 4
		}
		res := benchJSON(t, args...)
		requirePositive(t, res, "tokens_per_second", "tokens_per_second_best", "ms_per_step", "ms_per_step_best", "gflops", "mfu", "mfu_best", "final_loss", "peak_memory_bytes", "threads")
		if res["params"] != params {
			t.Errorf("%s: params %v, want %d", method, res["params"], params)
		}
		if got := res["tokens_per_second"] * res["ms_per_step"] / 1e3; math.Abs(got-2*16) > 1e-6 {
			t.Errorf("%s: tokens/s × s/step = %v, want the 32 tokens of a step", method, got)
		}
		if want := flopPerToken * params * res["tokens_per_second"] / 506e9; math.Abs(res["mfu"]-want) > 1e-9*want {
			t.Errorf("%s: mfu %v, want %v·N·tokens/s / 506e9 = %v", method, res["mfu"], flopPerToken, want)
		}
		// A random model predicts random tokens at about ln(vocab) nats.
		if l := res["final_loss"]; math.Abs(l-math.Log(100)) > 0.5 {
			t.Errorf("%s: loss %v, want about ln(100) = %.2f", method, l, math.Log(100))
		}
	}
}

func TestBenchGenerate(t *testing.T) {
	res := benchJSON(t, "generate", "--model", storiesModel, "--new-tokens", "20", "--batch", "2")
	requirePositive(t, res, "tokens_per_second", "ms_per_token", "prefill_ms", "peak_memory_bytes", "params")
	if res["new_tokens"] != 20 || res["batch"] != 2 || res["prompt_tokens"] != 5 {
		t.Errorf("result %v: want 20 new tokens, batch 2, the 5 tokens of <s> Once upon a time", res)
	}
}

func TestBenchRejectsBadInput(t *testing.T) {
	cases := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"matmul", "--layout", "tt"}, `--layout "tt": want nn, nt or tn`},
		{[]string{"matmul", "--m", "0"}, "must be positive"},
		{[]string{"train", "--dim", "30", "--heads", "4"}, "--dim 30 must be a multiple of --heads 4"},
		{[]string{"train", "--heads", "8", "--kv-heads", "3"}, "kv"},
		{[]string{"generate", "--model", storiesModel, "--new-tokens", "5000"}, "do not fit the model's context"},
	}
	for _, c := range cases {
		_, err := runCommand(context.Background(), benchCommand(), nil, nil, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("lathe bench %s: error %v, want one containing %q", strings.Join(c.args, " "), err, c.wantErr)
		}
	}
}

func TestBenchCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	benchJSON(t, "matmul", "--m", "128", "--n", "128", "--k", "128", "--iters", "2", "--cpuprofile", path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A pprof profile is a gzip-compressed protocol buffer.
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		t.Errorf("%s is not a gzip-compressed profile (%d bytes)", path, len(data))
	}
}

// TestBenchTrainFamilies: --arch builds each family's block (falcon-7b's parameters counted by hand:
// tied embedding 100·32, final LayerNorm 2·32, per layer one LayerNorm 2·32, fused QKV of 4 query heads
// and 1 kv head of 8: 32·48, dense 32·32, a 4× MLP 2·32·128) and trains it; a family it does not know
// is refused naming the flag.
func TestBenchTrainFamilies(t *testing.T) {
	const falcon7B = 100*32 + 2*32 + 2*(2*32+32*48+32*32+2*32*128)
	for _, arch := range []string{"falcon-7b", "falcon-40b", "gpt_neox", "mpt", "t5"} {
		for _, lora := range []bool{false, true} {
			args := []string{"train", "--arch", arch, "--dim", "32", "--layers", "2", "--heads", "4", "--kv-heads", "2",
				"--ffn", "64", "--vocab", "100", "--batch", "2", "--seq", "16", "--steps", "2"}
			if lora {
				args = append(args, "--lora")
			}
			res := benchJSON(t, args...)
			requirePositive(t, res, "tokens_per_second", "ms_per_step", "gflops", "final_loss", "params")
			if arch == "falcon-7b" && res["params"] != falcon7B {
				t.Errorf("falcon-7b params %v, want %d", res["params"], falcon7B)
			}
			if arch != "t5" { // T5's initialisation starts far from uniform predictions
				if l := res["final_loss"]; math.Abs(l-math.Log(100)) > 0.7 {
					t.Errorf("%s lora=%v: loss %v, want about ln(100) = %.2f", arch, lora, l, math.Log(100))
				}
			}
		}
	}
	if _, err := runCommand(context.Background(), benchCommand(), nil, nil, "train", "--arch", "bloom", "--steps", "1"); err == nil || !strings.Contains(err.Error(), "--arch") {
		t.Fatalf("--arch bloom: %v, want an error naming --arch", err)
	}
}
