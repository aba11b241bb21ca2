// Command ggufcheck checks that the GGUF files Lathe writes for each model family load in llama.cpp
// and compute what Lathe computes: for a tiny random model of each layout (Falcon-7B, Falcon-40B,
// falcon-rw's ALiBi, GPT-NeoX, MPT, and llama for reference), in exact Hugging Face layout with the
// family's real tokenizer, it fine-tunes nothing but exports the model as a job does (format.WriteGGUF
// with the tokenizer's GGUF metadata), runs llama.cpp on the file through a small driver (-logits,
// built by bench/gguf_vs_llamacpp.sh), and compares its logits at every position with Lathe's, and its
// tokenization of a few texts (from the file's tokenizer metadata) with Lathe's. Flan-T5's layout goes
// through llama_encode and the decoder.
//
//	go run ./bench/ggufcheck -logits /tmp/llamacpp-logits/logits -shared ../shared
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lathe-ml/lathe/internal/hubtest"
	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/t5"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

// families: tol is the agreement required of llama.cpp's logits (relative to the largest): its CPU
// GELU reads a float16 table (GGML_GELU_FP16), which moves the GELU families' logits by a few 1e-4;
// "" for unsupported means llama.cpp runs the layout.
var families = []struct {
	name, config, vocab string
	tol                 float64
	unsupported         string
}{
	{"llama (reference: no GELU)", `{"model_type": "llama", "hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2,
		"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512, "rms_norm_eps": 1e-5,
		"max_position_embeddings": 512, "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2}`, "stories260K", 1e-5, ""},
	{"falcon-7b", hubtest.Falcon7BConfig, "falcon", 1e-3, ""},
	{"falcon-40b", `{"model_type": "falcon", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
		"num_kv_heads": 2, "new_decoder_architecture": true, "parallel_attn": true, "bias": false, "alibi": false,
		"layer_norm_epsilon": 1e-5, "vocab_size": 65024, "bos_token_id": 11, "eos_token_id": 11}`, "falcon", 1e-3, ""},
	{"falcon-rw (alibi, sequential)", `{"model_type": "falcon", "hidden_size": 64, "num_hidden_layers": 2,
		"num_attention_heads": 4, "multi_query": false, "parallel_attn": false, "bias": true, "alibi": true,
		"new_decoder_architecture": false, "layer_norm_epsilon": 1e-5, "vocab_size": 65024, "bos_token_id": 1, "eos_token_id": 2}`, "falcon", 1e-3,
		"llama.cpp's falcon has neither biases nor ALiBi"},
	{"gpt_neox", `{"model_type": "gpt_neox", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
		"intermediate_size": 256, "hidden_act": "gelu", "rotary_pct": 0.25, "rotary_emb_base": 10000, "layer_norm_eps": 1e-5,
		"use_parallel_residual": true, "tie_word_embeddings": false, "vocab_size": 50432, "max_position_embeddings": 2048,
		"bos_token_id": 0, "eos_token_id": 0}`, "gpt-neox", 1e-3, ""},
	{"mpt", `{"model_type": "mpt", "d_model": 64, "n_heads": 4, "n_layers": 2, "expansion_ratio": 4, "max_seq_len": 2048,
		"vocab_size": 50432, "no_bias": true, "layer_norm_epsilon": 1e-5,
		"attn_config": {"alibi": true, "alibi_bias_max": 8, "clip_qkv": null, "attn_impl": "torch", "qk_ln": false}}`, "mpt", 1e-3, ""},
}

func main() {
	logits := flag.String("logits", "/tmp/llamacpp-logits/logits", "the llama.cpp logits driver")
	shared := flag.String("shared", "../shared", "the shared folder (models/vocab)")
	t5tok := flag.String("t5-tokenizer", "llm/tokenizer/testdata/unigram_t5like.tokenizer.json", "a T5 tokenizer.json")
	keep := flag.Bool("keep", false, "keep the models and GGUF files written (their folder is printed)")
	flag.Parse()
	tmp, err := os.MkdirTemp("", "ggufcheck")
	if err != nil {
		fail(err)
	}
	if *keep {
		fmt.Println("files in", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	bad := 0
	for i, f := range families {
		d, err := check(*logits, vocabPath(*shared, f.vocab), f.config, filepath.Join(tmp, strconv.Itoa(i)))
		switch {
		case err != nil && f.unsupported != "" && strings.Contains(err.Error(), "load failed"):
			fmt.Printf("%-30s not run: %s (llama.cpp refuses the file)\n", f.name, f.unsupported)
			continue
		case err != nil:
			fmt.Printf("%-30s FAIL %v\n", f.name, err)
			bad++
			continue
		}
		status := "ok"
		if d > f.tol {
			status, bad = "FAIL", bad+1
		}
		fmt.Printf("%-30s %s: max |llama.cpp - Lathe| / max |logit| = %.2e over every position\n", f.name, status, d)
	}
	d, err := checkT5(*logits, filepath.Join(tmp, "t5"), *t5tok)
	switch {
	case err != nil:
		fmt.Printf("%-30s FAIL %v\n", "t5 (flan, gated-gelu)", err)
		bad++
	case d > 1e-3: // llama.cpp's float16 GELU table, as for the decoder families
		fmt.Printf("%-30s FAIL: max |llama.cpp - Lathe| / max |logit| = %.2e\n", "t5 (flan, gated-gelu)", d)
		bad++
	default:
		fmt.Printf("%-30s ok: max |llama.cpp - Lathe| / max |logit| = %.2e over every decoder position\n", "t5 (flan, gated-gelu)", d)
	}
	if bad > 0 {
		os.Exit(1)
	}
}

// texts are tokenized by both engines from the GGUF file's tokenizer metadata.
var texts = []string{"Once upon a time, 3 small foxes jumped over 27 lazy dogs!", "  Hello\tworld  ", "naïve café: 1,234.5 €"}

// sameTokens compares llama.cpp's tokenization of texts (from the GGUF file) with Lathe's.
func sameTokens(driver, path string, tok *tokenizer.Tokenizer) error {
	for _, text := range texts {
		var stderr bytes.Buffer
		cmd := exec.Command(driver, path, "--tokenize", text)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			tail := stderr.String()
			if len(tail) > 600 {
				tail = tail[len(tail)-600:]
			}
			return fmt.Errorf("llama.cpp tokenize: %v: %s", err, tail)
		}
		var want []string
		for _, id := range tok.Encode(text, true) {
			want = append(want, strconv.Itoa(id))
		}
		if got := strings.TrimSpace(string(out)); got != strings.Join(want, " ") {
			return fmt.Errorf("tokens of %q: llama.cpp %s, Lathe %s", text, got, strings.Join(want, " "))
		}
	}
	return nil
}

// checkT5 exports a tiny Flan-T5-shaped model as a job does and compares the decoder's logits for an
// input encoded by llama.cpp (llama_encode) with Lathe's.
func checkT5(driver, dir, tokJSON string) (float64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	// The test tokenizer with SentencePiece's nmt_nfkc normalization table filled in, as Flan-T5's has.
	tj, err := withCharsmap(tokJSON, filepath.Join(filepath.Dir(tokJSON), "nmt_nfkc.charsmap.gz"), filepath.Join(dir, "src.tokenizer.json"))
	if err != nil {
		return 0, err
	}
	if err := hubtest.WriteT5(dir, tj, 6); err != nil {
		return 0, err
	}
	m, err := t5.Load(dir)
	if err != nil {
		return 0, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return 0, err
	}
	meta, err := tok.GGUFMetadataFor(m.Config().Vocab)
	if err != nil {
		return 0, err
	}
	path := filepath.Join(dir, "model.gguf")
	if err := m.WriteGGUF(path, "ggufcheck", meta); err != nil {
		return 0, err
	}
	if err := sameTokens(driver, path, tok); err != nil {
		return 0, err
	}
	c := m.Config()
	var enc []int32
	for _, id := range tok.Encode(texts[0], true) {
		enc = append(enc, int32(id))
	}
	dec := []int32{c.DecoderStart, 100, 7, 2000, 55, 1234}
	b := t5.Batch{B: 1, TEnc: len(enc), TDec: len(dec), EncTokens: enc, EncMask: make([]float32, len(enc)), DecTokens: dec}
	for i := range b.EncMask {
		b.EncMask[i] = 1
	}
	want, err := m.Logits(b)
	if err != nil {
		return 0, err
	}
	args := []string{path}
	for _, id := range enc {
		args = append(args, strconv.Itoa(int(id)))
	}
	args = append(args, "--")
	for _, id := range dec {
		args = append(args, strconv.Itoa(int(id)))
	}
	return compare(driver, args, want, c.Vocab, len(dec))
}

func vocabPath(shared, name string) string {
	if name == "stories260K" {
		return filepath.Join(shared, "models", "stories260K.gguf")
	}
	return filepath.Join(shared, "models", "vocab", "ggml-vocab-"+name+".gguf")
}

func check(driver, vocab, config, dir string) (float64, error) {
	if err := hubtest.WriteDecoder(dir, config, vocab, 5); err != nil {
		return 0, err
	}
	ck, err := format.Open(dir)
	if err != nil {
		return 0, err
	}
	base := ck.Config()
	m, err := model.FromCheckpoint(ck)
	ck.Close()
	if err != nil {
		return 0, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return 0, err
	}
	// As finetune's Export writes model.gguf.
	meta, err := tok.GGUFMetadataFor(m.Config().Vocab)
	if err != nil {
		return 0, err
	}
	path := filepath.Join(dir, "model.gguf")
	if err := format.WriteGGUF(path, m.ExportConfig(base), m.NamedTensors(), format.GGUFOptions{Name: "ggufcheck", Extra: meta}); err != nil {
		return 0, err
	}
	var ids []int32
	for _, id := range tok.Encode("Once upon a time, 3 small foxes jumped over 27 lazy dogs!", false) {
		ids = append(ids, int32(id))
	}
	want, err := m.Logits(ids, 1, len(ids))
	if err != nil {
		return 0, err
	}
	if err := sameTokens(driver, path, tok); err != nil {
		return 0, err
	}
	args := []string{path}
	for _, id := range ids {
		args = append(args, strconv.Itoa(int(id)))
	}
	return compare(driver, args, want, m.Config().Vocab, len(ids))
}

// compare runs the driver and returns max |llama.cpp − Lathe| / max |Lathe| over every position.
func compare(driver string, args []string, want []float32, vocab, positions int) (float64, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(driver, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tail := stderr.String()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return 0, fmt.Errorf("llama.cpp: %v: %s", err, tail)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	sc.Scan()
	V, _ := strconv.Atoi(strings.TrimSpace(sc.Text()))
	if V != vocab {
		return 0, fmt.Errorf("llama.cpp's vocabulary %d, Lathe's %d", V, vocab)
	}
	var maxDiff, maxAbs float64
	pos := 0
	for ; sc.Scan(); pos++ {
		fields := strings.Fields(sc.Text())
		if len(fields) != V || pos >= positions {
			return 0, fmt.Errorf("position %d: %d logits", pos, len(fields))
		}
		for v, s := range fields {
			x, _ := strconv.ParseFloat(s, 64)
			w := float64(want[pos*V+v])
			maxDiff, maxAbs = math.Max(maxDiff, math.Abs(x-w)), math.Max(maxAbs, math.Abs(w))
		}
	}
	if pos != positions {
		return 0, fmt.Errorf("llama.cpp gave %d positions, want %d", pos, positions)
	}
	return maxDiff / maxAbs, nil
}

// withCharsmap writes tokJSON with its Precompiled normalizer's table set to the gzipped charsmap.
func withCharsmap(tokJSON, charsmapGz, out string) (string, error) {
	raw, err := os.ReadFile(tokJSON)
	if err != nil {
		return "", err
	}
	f, err := os.Open(charsmapGz)
	if err != nil {
		return "", err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "", err
	}
	cm, err := io.ReadAll(zr)
	if err != nil {
		return "", err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return "", err
	}
	norm, ok := doc["normalizer"].(map[string]any)
	if !ok || norm["type"] != "Precompiled" {
		return "", fmt.Errorf("%s: no Precompiled normalizer", tokJSON)
	}
	norm["precompiled_charsmap"] = base64.StdEncoding.EncodeToString(cm)
	js, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	return out, os.WriteFile(out, js, 0o644)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ggufcheck:", err)
	os.Exit(1)
}
