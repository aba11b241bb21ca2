package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// stories260K's greedy continuation of "Once upon a time", as the model's README gives it (measured
// with an independent implementation).
const storiesGreedy = ", there was a little girl named Lily. She loved to play outside in the park."

func TestGenerate(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		stdin      string
		wantPrefix string // stdout starts with it
		wantStderr string
	}{
		{"greedy raw prompt", []string{"--raw", "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "30"},
			"", storiesGreedy, "finish: length"},
		{"greedy says so, not a seed", []string{"--raw", "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "3"},
			"", "", "prompt: 5 tokens, greedy decoding\n"},
		{"a seed with greedy decoding has no effect", []string{"--raw", "--prompt", "Once upon a time", "--temperature", "0", "--seed", "3", "--max-new-tokens", "3"},
			"", "", "--seed has no effect: greedy decoding"},
		{"sampling prints its seed", []string{"--raw", "--prompt", "Once upon a time", "--seed", "3", "--max-new-tokens", "3"},
			"", "", "prompt: 5 tokens, seed 3\n"},
		{"prompt from stdin", []string{"--raw", "--temperature", "0", "--max-new-tokens", "30"},
			"Once upon a time\n", storiesGreedy, "finish: length"},
		{"chat without a template", []string{"--chat", "--prompt", "Tell me a story.", "--temperature", "0", "--max-new-tokens", "4"},
			"", "", "the model has no chat template: using the plain instruction template"},
		{"stop sequence", []string{"--raw", "--prompt", "Once upon a time", "--temperature", "0", "--stop", "girl"},
			"", ", there was a little \n", "finish: stop"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			out, err := runCommand(context.Background(), generateCommand(), strings.NewReader(c.stdin), &stderr,
				append([]string{"--model", storiesModel}, c.args...)...)
			if err != nil {
				t.Fatalf("lathe generate: %v", err)
			}
			if !strings.HasPrefix(out, c.wantPrefix) {
				t.Errorf("output %q, want it to start with %q", out, c.wantPrefix)
			}
			if !strings.Contains(stderr.String(), c.wantStderr) {
				t.Errorf("stderr %q, want %q", stderr.String(), c.wantStderr)
			}
		})
	}
}

// TestGenerateSeed samples at temperature 1: the same seed gives the same text.
func TestGenerateSeed(t *testing.T) {
	run := func(seed string) string {
		out, err := runCommand(context.Background(), generateCommand(), nil, nil, "--model", storiesModel, "--raw",
			"--prompt", "Once upon a time", "--temperature", "1", "--top-k", "0", "--top-p", "1", "--seed", seed, "--max-new-tokens", "40")
		if err != nil {
			t.Fatalf("lathe generate --seed %s: %v", seed, err)
		}
		return out
	}
	a, b := run("7"), run("7")
	if a != b {
		t.Errorf("seed 7 gave %q, then %q", a, b)
	}
	if len(strings.Fields(a)) < 5 {
		t.Errorf("40 sampled tokens gave %q", a)
	}
}

// TestGenerateAfterFinetune: a model that "lathe finetune" wrote answers the task's prompt through
// the same template, from both the GGUF file and the Hugging Face directory.
func TestGenerateAfterFinetune(t *testing.T) {
	tmp := t.TempDir()
	data := writeTaskCSV(t, tmp)
	out := filepath.Join(tmp, "tuned")
	if _, err := runCommand(context.Background(), finetuneCommand(), nil, nil, "--model", storiesModel, "--data", data,
		"--out", out, "--epochs", "3", "--batch-size", "4"); err != nil {
		t.Fatalf("lathe finetune: %v", err)
	}
	for _, model := range []string{out, filepath.Join(out, "model.gguf")} {
		got, err := runCommand(context.Background(), generateCommand(), nil, nil, "--model", model,
			"--prompt", "Tell me about Tom and the dog.", "--temperature", "0", "--max-new-tokens", "12")
		if err != nil {
			t.Fatalf("lathe generate --model %s: %v", model, err)
		}
		if !strings.HasPrefix(got, "Tom had a dog.") {
			t.Errorf("--model %s answered %q, want the trained answer %q", model, got, "Tom had a dog. ...")
		}
	}
}

func TestGenerateRejectsBadInput(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no model", []string{"--prompt", "hi"}, `required flag(s) "model" not set`},
		{"raw and chat", []string{"--model", storiesModel, "--prompt", "hi", "--raw", "--chat"}, "--raw and --chat exclude each other"},
		{"no new tokens", []string{"--model", storiesModel, "--prompt", "hi", "--max-new-tokens", "0"}, "--max-new-tokens must be at least 1"},
		{"missing model", []string{"--model", "nope.gguf", "--prompt", "hi", "--data-dir", "testdata-none"},
			"--model nope.gguf: no such file or folder, and no model of that name in the store of testdata-none (lathe models list shows them)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := runCommand(context.Background(), generateCommand(), nil, nil, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}
