package tokenizer

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/gguf"
)

// stories260K's GGUF tokenizer (merged by score, llama.cpp style) written as tokenizer.json and
// read back (merged by rank, Hugging Face style) encodes text to the same ids.
func TestStories260KAsTokenizerJSON(t *testing.T) {
	tok := loadStories(t)
	dir := t.TempDir()
	if err := tok.WriteHF(dir); err != nil {
		t.Fatal(err)
	}
	hf, err := LoadHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	if hf.Kind() != SentencePiece || hf.BOS != 1 || hf.EOS != 2 || hf.UNK != 0 || !hf.AddBOS || hf.VocabSize() != 512 {
		t.Fatalf("kind %v bos %d eos %d unk %d addBOS %v vocab %d", hf.Kind(), hf.BOS, hf.EOS, hf.UNK, hf.AddBOS, hf.VocabSize())
	}
	texts := []string{
		"Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
		"One day, she saw a big, red ball.\nShe said, \"Can I play?\"</s>Tom smiled.",
		"  two leading spaces, trailing tab\t",
	}
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 300; i++ {
		texts = append(texts, randomText(r))
	}
	for _, s := range texts {
		want := tok.Encode(s, true)
		if got := hf.Encode(s, true); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: tokenizer.json gives %v, GGUF gives %v", s, got, want)
		}
		if hf.Decode(want) != tok.Decode(want) {
			t.Fatalf("%q: decodes differ", s)
		}
	}
}

// A byte-level tokenizer written into GGUF metadata (tokenizer.ggml.model=gpt2, merges, pre) and
// read back encodes like the tokenizer.json it came from; and through tokenizer.json again.
func TestByteLevelThroughGGUFAndTokenizerJSON(t *testing.T) {
	src := byteLevelFixture(t, false)
	kvs, err := src.GGUFMetadata()
	if err != nil {
		t.Fatal(err)
	}
	md, err := gguf.NewMetadata(kvs...)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := md.String("tokenizer.ggml.model"); m != "gpt2" {
		t.Errorf("model %q", m)
	}
	fromGGUF, err := FromGGUF(&md)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := src.WriteHF(dir); err != nil {
		t.Fatal(err)
	}
	fromJSON, err := LoadHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(8, 9))
	texts := []string{"hello the  the<|im_end|>", "<|im_start|>user\nhello[NAME]<|im_end|>\n"}
	for i := 0; i < 200; i++ {
		texts = append(texts, randomText(r))
	}
	for _, s := range texts {
		want := src.Encode(s, false)
		if got := fromGGUF.Encode(s, false); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: from GGUF %v, want %v", s, got, want)
		}
		if got := fromJSON.Encode(s, false); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: from re-written tokenizer.json %v, want %v", s, got, want)
		}
	}
	if fromGGUF.EOS != src.EOS || fromGGUF.PAD != src.PAD || fromGGUF.ChatTemplate != src.ChatTemplate {
		t.Errorf("special ids or template lost: eos %d pad %d", fromGGUF.EOS, fromGGUF.PAD)
	}
}

func TestLoadRejectsBadTokenizers(t *testing.T) {
	tests := []struct {
		name string
		json string
	}{
		{"not JSON", `{"model": `},
		{"WordPiece", `{"model": {"type": "WordPiece", "vocab": {"a": 0}}}`},
		{"unknown normalizer", `{"normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}`},
		{"unknown split regex", `{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated"}, {"type": "ByteLevel", "use_regex": false}]}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}`},
		{"neither kind", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}`},
		{"bad merge", `{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["ab"]}}`},
		{"subword prefix", `{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "continuing_subword_prefix": "##", "vocab": {"a": 0}, "merges": []}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := FromHF([]byte(tc.json), nil); err == nil {
				t.Error("accepted")
			}
		})
	}
	for _, md := range []gguf.Metadata{
		mustMetadata(t, gguf.KV{Key: "tokenizer.ggml.model", Value: "llama"}),
		mustMetadata(t, gguf.KV{Key: "tokenizer.ggml.model", Value: "bert"}, gguf.KV{Key: "tokenizer.ggml.tokens", Value: []string{"a"}}),
		mustMetadata(t, gguf.KV{Key: "tokenizer.ggml.model", Value: "llama"}, gguf.KV{Key: "tokenizer.ggml.tokens", Value: []string{"a"}}),
		mustMetadata(t, gguf.KV{Key: "tokenizer.ggml.model", Value: "gpt2"}, gguf.KV{Key: "tokenizer.ggml.tokens", Value: []string{"a"}},
			gguf.KV{Key: "tokenizer.ggml.merges", Value: []string{"a b"}}, gguf.KV{Key: "tokenizer.ggml.pre", Value: "made-up"}),
	} {
		if _, err := FromGGUF(&md); err == nil {
			t.Errorf("FromGGUF accepted %v", md.KVs())
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Load of a missing path succeeded")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{}`), 0o644)
	if _, err := LoadHF(dir); err == nil {
		t.Error("LoadHF of an empty tokenizer.json succeeded")
	}
}

func mustMetadata(t *testing.T, kvs ...gguf.KV) gguf.Metadata {
	t.Helper()
	md, err := gguf.NewMetadata(kvs...)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// stories260K's tokenizer exported as GGUF metadata, directly and after a trip through
// tokenizer.json (where scores must be rebuilt from merge ranks), encodes as the original.
func TestSentencePieceGGUFMetadataExport(t *testing.T) {
	tok := loadStories(t)
	dir := t.TempDir()
	if err := tok.WriteHF(dir); err != nil {
		t.Fatal(err)
	}
	viaJSON, err := LoadHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]*Tokenizer{"direct": tok, "via tokenizer.json": viaJSON} {
		kvs, err := src.GGUFMetadata()
		if err != nil {
			t.Fatal(err)
		}
		md := mustMetadata(t, kvs...)
		back, err := FromGGUF(&md)
		if err != nil {
			t.Fatal(err)
		}
		if tokens, _ := md.Strings("tokenizer.ggml.tokens"); !reflect.DeepEqual(tokens, tok.Tokens()) {
			t.Errorf("%s: token list differs", name)
		}
		if back.BOS != 1 || back.EOS != 2 || back.UNK != 0 || !back.AddBOS || back.AddEOS {
			t.Errorf("%s: bos %d eos %d unk %d addBOS %v addEOS %v", name, back.BOS, back.EOS, back.UNK, back.AddBOS, back.AddEOS)
		}
		r := rand.New(rand.NewPCG(1, 1))
		for i := 0; i < 200; i++ {
			s := randomText(r)
			if got, want := back.Encode(s, true), tok.Encode(s, true); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: %q encodes to %v, want %v", name, s, got, want)
			}
		}
	}
}
