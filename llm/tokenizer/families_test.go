package tokenizer

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/gguf"
	"golang.org/x/text/unicode/norm"
)

// The real tokenizers of Falcon, MPT and GPT-NeoX with the ids Hugging Face gives llama.cpp's
// test texts (see ../shared/models/README.md); never copied into the repo.
const vocabDir = "../../../shared/models/vocab/"

// family is one model family's vocabulary file and the expected ids for the test texts.
// mosaicml/mpt-7b ships EleutherAI/gpt-neox-20b's tokenizer (the two GGUF vocabularies are
// identical), so gpt-neox is checked against MPT's ids.
type family struct {
	name   string
	gguf   string
	ids    string // X.gguf.out
	pre    string // tokenizer.ggml.pre that an export writes
	bos    int    // the BOS id the GGUF names (added by neither Hugging Face nor Lathe)
	eos    int
	hfPre  string // the pre-tokenizer and normalizer as Hugging Face writes them
	hfNorm string
	hfTCfg string // tokenizer_config.json
	hfBOS  int    // BOS after loading tokenizer.json: Falcon's has no bos_token
	hfNFC  bool   // Hugging Face normalizes the text to NFC first
}

var families = []family{
	{
		name: "falcon", gguf: "ggml-vocab-falcon.gguf", ids: "ggml-vocab-falcon.gguf.out", pre: "falcon", bos: 11, eos: 11,
		hfPre: `{"type":"Sequence","pretokenizers":[{"type":"Punctuation","behavior":"Contiguous"},` +
			`{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},` +
			`{"type":"Digits","individual_digits":false},` +
			`{"type":"Split","pattern":{"Regex":"[0-9][0-9][0-9]"},"behavior":"Isolated","invert":false}]}`,
		hfNorm: `null`,
		hfTCfg: `{"add_prefix_space": false, "eos_token": "<|endoftext|>", "model_max_length": 2048, "tokenizer_class": "PreTrainedTokenizerFast"}`,
		hfBOS:  -1,
	},
	{
		name: "mpt", gguf: "ggml-vocab-mpt.gguf", ids: "ggml-vocab-mpt.gguf.out", pre: "mpt", bos: 0, eos: 0,
		hfPre:  `{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}`,
		hfNorm: `{"type":"NFC"}`,
		hfTCfg: `{"add_prefix_space": false, "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "model_max_length": 2048, "tokenizer_class": "GPTNeoXTokenizer"}`,
		hfBOS:  0, hfNFC: true,
	},
	{
		name: "gpt-neox", gguf: "ggml-vocab-gpt-neox.gguf", ids: "ggml-vocab-mpt.gguf.out", pre: "mpt", bos: 0, eos: 0,
		hfPre:  `{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}`,
		hfNorm: `{"type":"NFC"}`,
		hfTCfg: `{"add_prefix_space": false, "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "tokenizer_class": "GPTNeoXTokenizer"}`,
		hfBOS:  0, hfNFC: true,
	},
}

// vocabTexts reads llama.cpp's test texts (X.gguf.inp: each text followed by
// "\n__ggml_vocab_test__\n", so a text's own newlines are kept) and the expected ids (X.gguf.out:
// one line per text, no BOS).
func vocabTexts(t *testing.T, f family) ([]string, [][]int) {
	t.Helper()
	inp, err := os.ReadFile(vocabDir + strings.TrimSuffix(f.ids, ".out") + ".inp")
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(vocabDir + f.ids)
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Split(string(inp), "\n__ggml_vocab_test__\n")
	if texts[len(texts)-1] != "" {
		t.Fatalf("%s.inp does not end with a separator", f.name)
	}
	texts = texts[:len(texts)-1]
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(texts) || len(texts) != 46 {
		t.Fatalf("%s: %d texts, %d id lines; llama.cpp's files have 46", f.name, len(texts), len(lines))
	}
	want := make([][]int, len(lines))
	for i, line := range lines {
		want[i] = []int{}
		for _, s := range strings.Fields(line) {
			id, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("%s line %d: %v", f.ids, i+1, err)
			}
			want[i] = append(want[i], id)
		}
	}
	return texts, want
}

func loadFamily(t *testing.T, f family) *Tokenizer {
	t.Helper()
	tok, err := Load(vocabDir + f.gguf)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// checkIDs asserts that tok encodes every text as Hugging Face does (Encode with addBOS true is
// add_special_tokens=True: these tokenizers add no BOS) and decodes back to the text (in NFC
// where the tokenizer normalizes).
func checkIDs(t *testing.T, label string, tok *Tokenizer, texts []string, want [][]int) {
	t.Helper()
	bad := 0
	for i, text := range texts {
		got := tok.Encode(text, true)
		if len(got) == 0 {
			got = []int{}
		}
		if !reflect.DeepEqual(got, want[i]) {
			bad++
			t.Errorf("%s: Encode(%q)\n got %v\nwant %v", label, text, got, want[i])
		}
		back := text
		if tok.nfc {
			back = norm.NFC.String(text)
		}
		if s := tok.Decode(got); s != back {
			t.Errorf("%s: Decode(Encode(%q)) = %q", label, text, s)
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d texts differ from Hugging Face", label, bad, len(texts))
	}
}

func TestFamiliesFromGGUFMatchHuggingFace(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			tok := loadFamily(t, f)
			if tok.Kind() != ByteLevel || tok.BOS != f.bos || tok.EOS != f.eos || tok.AddBOS || tok.AddEOS {
				t.Errorf("kind %v bos %d eos %d addBOS %v addEOS %v", tok.Kind(), tok.BOS, tok.EOS, tok.AddBOS, tok.AddEOS)
			}
			texts, want := vocabTexts(t, f)
			checkIDs(t, f.name+" gguf", tok, texts, want)
		})
	}
}

// hfDocument writes a family's GGUF vocabulary as the tokenizer.json Hugging Face ships: the
// vocabulary and merges, the control and user-defined tokens as added tokens (special or not),
// and the family's normalizer and pre-tokenizer. The "[PADn]" tokens that llama.cpp's converter
// made up to fill the model's padded embedding are not in Hugging Face's tokenizer.
func hfDocument(t *testing.T, f family, extra ...map[string]any) []byte {
	t.Helper()
	src := loadFamily(t, f)
	vocab := map[string]int{}
	added := []map[string]any{}
	for id, s := range src.Tokens() {
		typ := src.TokenType(id)
		if typ == TypeUserDefined && s == fmt.Sprintf("[PAD%d]", id) {
			continue
		}
		vocab[s] = id
		if typ == TypeControl || typ == TypeUserDefined {
			added = append(added, map[string]any{"id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false,
				"normalized": typ == TypeUserDefined, "special": typ == TypeControl})
		}
	}
	added = append(added, extra...)
	var merges []string
	for _, pair := range src.mergeList() {
		merges = append(merges, pair[0]+" "+pair[1])
	}
	doc := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added,
		"normalizer":     json.RawMessage(f.hfNorm),
		"pre_tokenizer":  json.RawMessage(f.hfPre),
		"post_processor": json.RawMessage(`{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true}`),
		"decoder":        json.RawMessage(`{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}`),
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": merges},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFamiliesFromTokenizerJSONMatchHuggingFace(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			tok, err := FromHF(hfDocument(t, f), []byte(f.hfTCfg))
			if err != nil {
				t.Fatal(err)
			}
			if tok.Kind() != ByteLevel || tok.BOS != f.hfBOS || tok.EOS != f.eos || tok.AddBOS || tok.AddEOS {
				t.Errorf("kind %v bos %d eos %d addBOS %v addEOS %v", tok.Kind(), tok.BOS, tok.EOS, tok.AddBOS, tok.AddEOS)
			}
			if tok.TokenType(f.eos) != TypeControl {
				t.Errorf("EOS %q has type %d, want control (Decode drops it)", tok.Token(f.eos), tok.TokenType(f.eos))
			}
			texts, want := vocabTexts(t, f)
			checkIDs(t, f.name+" tokenizer.json", tok, texts, want)
		})
	}
}

// Dolly v2 adds three special tokens to gpt-neox-20b's tokenizer for its prompt format; each is
// one id wherever it is written, and the text between them is tokenized as before.
func TestDollySpecialTokens(t *testing.T) {
	neox := families[2]
	dollyTokens := []map[string]any{
		{"id": 50277, "content": "### End", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
		{"id": 50278, "content": "### Instruction:", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
		{"id": 50279, "content": "### Response:", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
	}
	tc := `{"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
	  "additional_special_tokens": ["### End", "### Instruction:", "### Response:"], "tokenizer_class": "GPTNeoXTokenizer"}`
	tok, err := FromHF(hfDocument(t, neox, dollyTokens...), []byte(tc))
	if err != nil {
		t.Fatal(err)
	}
	id := func(token string) int {
		id, ok := tok.ID(token)
		if !ok {
			t.Fatalf("no token %q", token)
		}
		return id
	}
	hi := id("hi")
	const nl, nlnl, space = 187, 535, 209 // "\n", "\n\n", " " in MPT's expected ids
	tests := []struct {
		name, text string
		want       []int
	}{
		{"prompt", "### Instruction:\nhi\n\n### Response:\n", []int{50278, nl, hi, nlnl, 50279, nl}},
		{"end of response", "hi\n\n### End", []int{hi, nlnl, 50277}},
		{"markers side by side", "### End### Instruction:", []int{50277, 50278}},
		{"not a marker without its colon", "### Response", []int{id("###"), id("ĠResponse")}},
		{"space before a marker stays a space", " ### End", []int{space, 50277}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tok.Encode(tc.text, true); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Encode(%q) = %v, want %v", tc.text, got, tc.want)
			}
		})
	}
}

// Each family's tokenizer, loaded from GGUF or from tokenizer.json, written out as GGUF metadata
// and as tokenizer.json and loaded back, encodes every text to the same ids and keeps its
// llama.cpp pre-tokenizer name.
func TestFamiliesExportRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	var random []string
	for i := 0; i < 100; i++ {
		random = append(random, randomText(r))
	}
	for _, f := range families {
		texts, _ := vocabTexts(t, f)
		texts = append(append(texts, random...), "12345 ½ 3.14159 $x+=1; <|endoftext|>>>TITLE<<", "  a\u0301 cafe\u0301  ")
		fromJSON, err := FromHF(hfDocument(t, f), []byte(f.hfTCfg))
		if err != nil {
			t.Fatal(err)
		}
		sources := []struct {
			name string
			tok  *Tokenizer
		}{{"gguf", loadFamily(t, f)}, {"tokenizer.json", fromJSON}}
		for _, src := range sources {
			t.Run(f.name+" from "+src.name, func(t *testing.T) {
				kvs, err := src.tok.GGUFMetadata()
				if err != nil {
					t.Fatal(err)
				}
				md, err := gguf.NewMetadata(kvs...)
				if err != nil {
					t.Fatal(err)
				}
				if pre, _ := md.String("tokenizer.ggml.pre"); pre != f.pre {
					t.Errorf("tokenizer.ggml.pre %q, want %q", pre, f.pre)
				}
				viaGGUF, err := FromGGUF(&md)
				if err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				if err := src.tok.WriteHF(dir); err != nil {
					t.Fatal(err)
				}
				viaJSON, err := LoadHF(dir)
				if err != nil {
					t.Fatal(err)
				}
				for _, text := range texts {
					want := src.tok.Encode(text, true)
					for _, back := range []struct {
						name string
						tok  *Tokenizer
					}{{"GGUF", viaGGUF}, {"tokenizer.json", viaJSON}} {
						if got := back.tok.Encode(text, true); !reflect.DeepEqual(got, want) {
							t.Fatalf("%q: written as %s and read back gives %v, want %v", text, back.name, got, want)
						}
						if back.tok.Decode(want) != src.tok.Decode(want) {
							t.Fatalf("%q: written as %s and read back decodes differently", text, back.name)
						}
					}
				}
			})
		}
	}
}

// Pre-tokenizer sequences that Lathe cannot reproduce are refused, not tokenized differently.
func TestUnsupportedPreTokenizerSequences(t *testing.T) {
	byteLevel := `{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}`
	tests := []struct {
		name, pre string
	}{
		{"punctuation isolated", `{"type":"Sequence","pretokenizers":[{"type":"Punctuation","behavior":"Isolated"},` + byteLevel + `]}`},
		{"punctuation after ByteLevel", `{"type":"Sequence","pretokenizers":[` + byteLevel + `,{"type":"Punctuation","behavior":"Contiguous"}]}`},
		{"digit runs before ByteLevel", `{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":false},` + byteLevel + `]}`},
		{"other Split after ByteLevel", `{"type":"Sequence","pretokenizers":[` + byteLevel + `,{"type":"Split","pattern":{"Regex":"[0-9]"},"behavior":"Isolated","invert":false}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := `{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":` + tc.pre + `}`
			if _, err := FromHF([]byte(doc), nil); err == nil {
				t.Errorf("pre-tokenizer %s accepted", tc.pre)
			}
		})
	}
}

// Falcon's pre-tokenizer pieces, written in byte-level characters. Hugging Face runs Digits and the
// three-digit Split after ByteLevel, on those characters: "½" is "Â½" and only "½" is a digit,
// which is why Hugging Face's ids for " ½" are "ĠÂ" (3068) and "½" (133).
func TestFalconPreTokenizerSplits(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"non-ASCII digit", "ied 4 ½ months", []string{"ied", "Ġ", "4", "ĠÂ", "½", "Ġmonths"}},
		{"punctuation cut before the regex", "Hello, y'all!", []string{"Hello", ",", "Ġy", "'", "all", "!"}},
		{"ASCII symbols count as punctuation", "a+=b|c", []string{"a", "+=", "b", "|", "c"}},
		{"spaces before punctuation stay together", "x  (y)", []string{"x", "ĠĠ", "(", "y", ")"}},
		{"digits in groups of three", "12345678", []string{"123", "456", "78"}},
		{"a space is cut from a number", "pi 3.14159", []string{"pi", "Ġ", "3", ".", "141", "59"}},
		{"superscript digit", "x²+1", []string{"x", "Â", "²", "+", "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, piece := range falconPre.split(tc.text) {
				got = append(got, byteLevelString(piece))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("split(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
}

// gpt-neox-20b's tokenizer (MPT, Pythia, Dolly v2) normalizes text to NFC, so a decomposed "é"
// (e + U+0301) gives the ids of the composed one; Falcon's has no normalizer and keeps them apart.
func TestFamiliesNFC(t *testing.T) {
	const composed, decomposed = "café Ångström", "cafe\u0301 A\u030angstro\u0308m"
	for _, f := range families {
		fromJSON, err := FromHF(hfDocument(t, f), []byte(f.hfTCfg))
		if err != nil {
			t.Fatal(err)
		}
		for _, src := range []struct {
			name string
			tok  *Tokenizer
		}{{"gguf", loadFamily(t, f)}, {"tokenizer.json", fromJSON}} {
			t.Run(f.name+" from "+src.name, func(t *testing.T) {
				a, b := src.tok.Encode(composed, true), src.tok.Encode(decomposed, true)
				if same := reflect.DeepEqual(a, b); same != f.hfNFC {
					t.Errorf("composed %v, decomposed %v: same ids %v, want %v", a, b, same, f.hfNFC)
				}
				if f.hfNFC && src.tok.Decode(b) != composed {
					t.Errorf("Decode gives %q, want the NFC text %q", src.tok.Decode(b), composed)
				}
			})
		}
	}
}
