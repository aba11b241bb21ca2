package tokenizer

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// byteLevelFixture builds a GPT-2-style tokenizer.json: the 256 byte symbols, a few merges whose
// effect is worked out by hand below, and ChatML added tokens.
func byteLevelFixture(t *testing.T, ignoreMerges bool) *Tokenizer {
	t.Helper()
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[string(byteToUnicode[b])] = len(vocab)
	}
	merges := []string{"Ġ t", "h e", "Ġt he", "l l", "e ll", "h ell", "hell o", "t he"}
	for _, m := range merges {
		vocab[strings.ReplaceAll(m, " ", "")] = len(vocab)
	}
	doc := map[string]any{
		"version": "1.0",
		"added_tokens": []map[string]any{
			{"id": 300, "content": "<|endoftext|>", "special": true},
			{"id": 301, "content": "<|im_start|>", "special": true},
			{"id": 302, "content": "<|im_end|>", "special": true},
			{"id": 303, "content": "[NAME]", "special": false},
		},
		"normalizer":    nil,
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"decoder":       map[string]any{"type": "ByteLevel"},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": "",
			"end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": ignoreMerges, "vocab": vocab, "merges": merges},
	}
	tj, _ := json.Marshal(doc)
	tc := `{"add_bos_token": false, "bos_token": null, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
	  "chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"}`
	tok, err := FromHF(tj, []byte(tc))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestByteLevelMergesByRank(t *testing.T) {
	tok := byteLevelFixture(t, false)
	if tok.Kind() != ByteLevel || tok.EOS != 302 || tok.PAD != 300 || tok.BOS != -1 || tok.AddBOS {
		t.Fatalf("kind %v eos %d pad %d bos %d addBOS %v", tok.Kind(), tok.EOS, tok.PAD, tok.BOS, tok.AddBOS)
	}
	tokens := func(ids []int) []string {
		var out []string
		for _, id := range ids {
			out = append(out, tok.Token(id))
		}
		return out
	}
	tests := []struct {
		text string
		want []string
	}{
		// "hello": h+e (rank 1) beats l+l (rank 3); then e+ll can no longer apply: he|ll|o.
		{"hello", []string{"he", "ll", "o"}},
		// " the": Ġ+t (0), h+e (1), Ġt+he (2). Between words, the second of two spaces starts " the".
		{"hello the  the", []string{"he", "ll", "o", "Ġthe", "Ġ", "Ġthe"}},
		{"the", []string{"the"}},
		// Bytes outside ASCII map to their GPT-2 characters.
		{"é\n", []string{"Ã", "©", "Ċ"}},
		// Added tokens are matched before BPE, special or not.
		{"<|im_start|>the<|im_end|>[NAME]", []string{"<|im_start|>", "the", "<|im_end|>", "[NAME]"}},
	}
	for _, tc := range tests {
		ids := tok.Encode(tc.text, true)
		if got := tokens(ids); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Encode(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
	// Decode drops special tokens but keeps non-special added ones.
	if s := tok.Decode(tok.Encode("<|im_start|>the<|im_end|>[NAME]", false)); s != "the[NAME]" {
		t.Errorf("decode %q", s)
	}
	// With ignore_merges (llama 3), a piece that is itself a token is taken whole.
	if got := tokens(byteLevelFixture(t, true).Encode("hello", false)); !reflect.DeepEqual(got, []string{"hello"}) {
		t.Errorf("ignore_merges: %q", got)
	}
}

// Golden splits from Python's regex module running the exact patterns from the models'
// tokenizer.json (GPT-2, llama 3, qwen2; SmolLM = Digits(individual_digits) then GPT-2).
func TestPreTokenizerSplitsMatchRegex(t *testing.T) {
	texts := []string{"Hello world!  How's it going?\n\n  123abc", "I'M DONE'S 12345 x\r\n\r\n\tend  ",
		"(0.5+x)**2 == 'test' ;-)  \n", "中文字符 résumé 😀😀 --> ok", " leading and trailing   ", "a\u00a0b\u3000c 1\u00bd ⅷ"}
	want := map[string][][]string{
		"gpt2": {
			{"Hello", " world", "!", " ", " How", "'s", " it", " going", "?", "\n\n ", " 123", "abc"},
			{"I", "'", "M", " DONE", "'", "S", " 12345", " x", "\r\n\r\n", "\t", "end", "  "},
			{"(", "0", ".", "5", "+", "x", ")**", "2", " ==", " '", "test", "'", " ;-)", "  \n"},
			{"中文字符", " résumé", " 😀😀", " -->", " ok"},
			{" leading", " and", " trailing", "   "},
			{"a", "\u00a0", "b", "\u3000", "c", " 1\u00bd", " ⅷ"},
		},
		"llama3": {
			{"Hello", " world", "!", " ", " How", "'s", " it", " going", "?\n\n", " ", " ", "123", "abc"},
			{"I", "'M", " DONE", "'S", " ", "123", "45", " x", "\r\n\r\n", "\tend", "  "},
			{"(", "0", ".", "5", "+x", ")**", "2", " ==", " '", "test", "'", " ;-)", "  \n"},
			{"中文字符", " résumé", " 😀😀", " -->", " ok"},
			{" leading", " and", " trailing", "   "},
			{"a", "\u00a0b", "\u3000c", " ", "1\u00bd", " ", "ⅷ"},
		},
		"qwen2": {
			{"Hello", " world", "!", " ", " How", "'s", " it", " going", "?\n\n", " ", " ", "1", "2", "3", "abc"},
			{"I", "'M", " DONE", "'S", " ", "1", "2", "3", "4", "5", " x", "\r\n\r\n", "\tend", "  "},
			{"(", "0", ".", "5", "+x", ")**", "2", " ==", " '", "test", "'", " ;-)", "  \n"},
			{"中文字符", " résumé", " 😀😀", " -->", " ok"},
			{" leading", " and", " trailing", "   "},
			{"a", "\u00a0b", "\u3000c", " ", "1", "\u00bd", " ", "ⅷ"},
		},
		"smollm": {
			{"Hello", " world", "!", " ", " How", "'s", " it", " going", "?", "\n\n  ", "1", "2", "3", "abc"},
			{"I", "'", "M", " DONE", "'", "S", " ", "1", "2", "3", "4", "5", " x", "\r\n\r\n", "\t", "end", "  "},
			{"(", "0", ".", "5", "+", "x", ")**", "2", " ==", " '", "test", "'", " ;-)", "  \n"},
			{"中文字符", " résumé", " 😀😀", " -->", " ok"},
			{" leading", " and", " trailing", "   "},
			{"a", "\u00a0", "b", "\u3000", "c", " ", "1", "\u00bd", " ", "ⅷ"},
		},
	}
	for name, splits := range want {
		pre, err := ggufPre(map[string]string{"gpt2": "gpt2", "llama3": "llama-bpe", "qwen2": "qwen2", "smollm": "smollm"}[name])
		if err != nil {
			t.Fatal(err)
		}
		for i, text := range texts {
			if got := pre.split(text); !reflect.DeepEqual(got, splits[i]) {
				t.Errorf("%s split %q\n got %q\nwant %q", name, text, got, splits[i])
			}
		}
	}
	if _, err := ggufPre("chatglm-bpe"); err == nil {
		t.Error("unknown tokenizer.ggml.pre accepted")
	}
	if _, err := styleForRegex(`\w+`); err == nil {
		t.Error("unknown regex accepted")
	}
}

// Golden ids produced by llama.cpp (see the file's "source") for a 512-token byte-level BPE under
// each pre-tokenizer name: Lathe's tokenizer built from GGUF metadata with the same
// tokenizer.ggml.pre must agree on every text, and the tokenizer.json itself (GPT-2 ByteLevel)
// must agree with llama.cpp's "gpt-2".
func TestByteLevelMatchesLlamaCpp(t *testing.T) {
	tj, err := os.ReadFile("testdata/bytelevel512.tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/bytelevel512_llamacpp.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Texts []string           `json:"texts"`
		IDs   map[string][][]int `json:"ids"`
	}
	if err := json.Unmarshal(b, &golden); err != nil {
		t.Fatal(err)
	}
	hf, err := FromHF(tj, []byte(`{"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "bos_token": null, "add_bos_token": false}`))
	if err != nil {
		t.Fatal(err)
	}
	kvs, err := hf.GGUFMetadata()
	if err != nil {
		t.Fatal(err)
	}
	if len(golden.IDs) != 4 {
		t.Fatalf("golden has %d pre-tokenizers", len(golden.IDs))
	}
	for pre, want := range golden.IDs {
		t.Run(pre, func(t *testing.T) {
			md := mustMetadata(t, kvs...)
			if err := md.Set("tokenizer.ggml.pre", pre); err != nil {
				t.Fatal(err)
			}
			tok, err := FromGGUF(&md)
			if err != nil {
				t.Fatal(err)
			}
			for i, text := range golden.Texts {
				if got := tok.Encode(text, true); !slices.Equal(got, want[i]) {
					t.Errorf("Encode(%q)\n got %v\nwant %v", text, got, want[i])
				}
				if pre == "gpt-2" {
					if got := hf.Encode(text, true); !slices.Equal(got, want[i]) {
						t.Errorf("tokenizer.json Encode(%q)\n got %v\nwant %v", text, got, want[i])
					}
				}
			}
		})
	}
}
