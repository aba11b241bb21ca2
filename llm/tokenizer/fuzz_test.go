package tokenizer

import (
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lathe-ml/lathe/llm/format/gguf"
)

// FuzzFromHF: any tokenizer.json and tokenizer_config.json bytes give a Tokenizer or an error,
// never a panic; a Tokenizer that loads encodes and decodes text into ids inside its vocabulary.
func FuzzFromHF(f *testing.F) {
	for _, name := range []string{"testdata/bytelevel512.tokenizer.json", "testdata/unigram_t5like.tokenizer.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, []byte(`{"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "bos_token": null, "add_bos_token": false}`))
	}
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"added_tokens":[{"id":3,"content":"<s>","special":true}]}`),
		[]byte(`{"bos_token":"<s>","add_bos_token":true}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":5},"merges":[["a","a"]],"byte_fallback":true},"pre_tokenizer":{"type":"Metaspace"}}`), []byte(nil))
	f.Add([]byte(`{"model":{"type":"Unigram","unk_id":7,"vocab":[["a",-1],["b"]]}}`), []byte(`{"eos_token":{"content":"</s>"}}`))
	f.Add([]byte(`{"model":{"type":"WordPiece"}}`), []byte(`[]`))
	f.Fuzz(func(t *testing.T, tokenizerJSON, configJSON []byte) {
		tok, err := FromHF(tokenizerJSON, configJSON)
		if err != nil {
			return
		}
		for _, text := range []string{"Hello world", " <|im_end|> ▁x\n\t\u00e9\U0001F600", "", "\xff"} {
			checkEncodeDecode(t, tok, text)
		}
	})
}

// checkEncodeDecode: encoding gives ids inside the vocabulary, and decoding them (and any id) gives
// valid UTF-8.
func checkEncodeDecode(t *testing.T, tok *Tokenizer, text string) []int {
	t.Helper()
	ids := tok.Encode(text, true)
	for _, id := range ids {
		if id < 0 || id >= tok.VocabSize() {
			t.Fatalf("Encode(%q) gave id %d outside the %d-token vocabulary", text, id, tok.VocabSize())
		}
	}
	if s := tok.Decode(ids); !utf8.ValidString(s) {
		t.Fatalf("Decode(Encode(%q)) = %q is not valid UTF-8", text, s)
	}
	if s := tok.Decode([]int{-1, tok.VocabSize(), 0, tok.VocabSize() - 1}); !utf8.ValidString(s) {
		t.Fatalf("Decode of out-of-range ids = %q", s)
	}
	d := tok.NewStreamDecoder()
	var streamed strings.Builder
	for _, id := range tok.Encode(text, false) {
		streamed.WriteString(d.Next(id))
	}
	streamed.WriteString(d.Flush())
	if !utf8.ValidString(streamed.String()) {
		t.Fatalf("streamed decoding of %q = %q is not valid UTF-8", text, streamed.String())
	}
	return ids
}

// FuzzEncodeDecode: for the tokenizers in testdata (a byte-level BPE, a T5-like Unigram, and
// stories260K's SentencePiece BPE), any text encodes and decodes without a panic, and the
// byte-level BPE gives back exactly the text (valid UTF-8 without its special tokens), as GPT-2's
// byte-level scheme promises.
func FuzzEncodeDecode(f *testing.F) {
	tj, err := os.ReadFile("testdata/bytelevel512.tokenizer.json")
	if err != nil {
		f.Fatal(err)
	}
	byteLevel, err := FromHF(tj, []byte(`{"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "bos_token": null, "add_bos_token": false}`))
	if err != nil {
		f.Fatal(err)
	}
	unigram, _ := t5Like(f)
	gf, err := gguf.Open("../../../shared/models/stories260K.gguf")
	if err != nil {
		f.Fatal(err)
	}
	defer gf.Close()
	spm, err := FromGGUF(&gf.Metadata)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"Hello, world!", "  leading and trailing  ", "naïve café 日本語 🤖\r\n\ttabs", "<|im_start|>user\nhi<|im_end|>",
		"'s 've 123456 ...!!", "\u200b\u00a0\ufeff", "a\x00b", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		checkEncodeDecode(t, unigram, text)
		checkEncodeDecode(t, spm, text)
		checkEncodeDecode(t, byteLevel, text)
		if !utf8.ValidString(text) {
			return
		}
		for _, special := range []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"} {
			if strings.Contains(text, special) {
				return // special tokens decode to nothing, by design
			}
		}
		if got := byteLevel.Decode(byteLevel.Encode(text, false)); got != text {
			t.Fatalf("byte-level BPE: Decode(Encode(%q)) = %q", text, got)
		}
	})
}
