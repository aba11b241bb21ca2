package tokenizer

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

const stories260K = "../../../shared/models/stories260K.gguf"

func loadStories(t *testing.T) *Tokenizer {
	t.Helper()
	tok, err := Load(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Golden ids from an independent implementation: llama2.c's encode() (prefix a space, look up
// characters or fall back to bytes, then repeatedly merge the best-scoring pair by rescanning)
// written in Python and run on the stories260K vocabulary.
func TestStories260KGoldenIDs(t *testing.T) {
	tok := loadStories(t)
	tests := []struct {
		text string
		want []int
	}{
		{"Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
			[]int{1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426}},
		{`The cat sat on the mat. "Hello!" said Tom.`,
			[]int{1, 291, 280, 294, 262, 294, 353, 265, 284, 294, 426, 313, 440, 411, 306, 414, 443, 436, 336, 274, 287, 426}},
		{"Tim and Sue were best friends; they shared 3 toys.",
			[]int{1, 326, 269, 301, 425, 411, 382, 276, 329, 356, 374, 419, 474, 366, 262, 415, 295, 266, 410, 472, 267, 422, 419, 426}},
		{"Hello 世界 😀\n\tok", []int{1, 346, 306, 414, 410, 231, 187, 153, 234, 152, 143, 410, 243, 162, 155, 131, 13, 12, 414, 433}},
		{"", []int{1}},
	}
	for _, tc := range tests {
		got := tok.Encode(tc.text, true)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Encode(%q)\n got %v\nwant %v", tc.text, got, tc.want)
		}
		if back := tok.Decode(got); back != tc.text {
			t.Errorf("Decode(Encode(%q)) = %q", tc.text, back)
		}
	}
}

func TestStories260KBehaviour(t *testing.T) {
	tok := loadStories(t)
	if tok.Kind() != SentencePiece || tok.VocabSize() != 512 || tok.BOS != 1 || tok.EOS != 2 || tok.UNK != 0 || tok.PAD != -1 || !tok.AddBOS || tok.AddEOS {
		t.Fatalf("kind %v vocab %d bos %d eos %d unk %d pad %d addBOS %v addEOS %v", tok.Kind(), tok.VocabSize(), tok.BOS, tok.EOS, tok.UNK, tok.PAD, tok.AddBOS, tok.AddEOS)
	}
	// Merges are applied: the prompt is five tokens after BOS, far fewer than its 16 characters.
	if ids := tok.Encode("Once upon a time", true); len(ids) != 5 || tok.Token(ids[1]) != "▁Once" {
		t.Errorf("Once upon a time -> %v", ids)
	}
	if ids := tok.Encode("Once upon a time", false); len(ids) != 4 || ids[0] == tok.BOS {
		t.Errorf("without BOS: %v", ids)
	}
	// Special tokens written in the text become their ids; the text after one gets the "▁" prefix
	// again, as llama.cpp does.
	got := tok.Encode("The end.</s>Once", false)
	want := append(tok.Encode("The end.", false), 2)
	want = append(want, tok.Encode("Once", false)...)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("with </s> in text: %v, want %v", got, want)
	}
	if s := tok.Decode(got); s != "The end. Once" {
		// Decode drops </s> (control) and keeps the "▁" of the next word as a space.
		t.Errorf("decode %q", s)
	}
	if tok.TokenText(tok.BOS) != "<s>" || tok.TokenText(tok.EOS) != "</s>" || string(tok.TokenBytes(13)) != "\n" {
		t.Errorf("token texts %q %q %q", tok.TokenText(1), tok.TokenText(2), tok.TokenBytes(13))
	}
}

// randomText draws printable text from a mix of scripts, emoji and whitespace (never U+2581
// "▁", which SentencePiece reads as a space).
func randomText(r *rand.Rand) string {
	pools := [][2]rune{{'a', 'z'}, {'A', 'Z'}, {'0', '9'}, {' ', ' '}, {'!', '/'}, {'\n', '\n'}, {'\t', '\t'},
		{0xe0, 0xff}, {0x4e00, 0x4fff}, {0x3040, 0x309f}, {0x1f600, 0x1f64f}, {0x0400, 0x04ff}, {0x0600, 0x06ff}, {0x1f3fb, 0x1f3ff}}
	n := r.IntN(40)
	var sb strings.Builder
	for i := 0; i < n; i++ {
		p := pools[r.IntN(len(pools))]
		sb.WriteRune(p[0] + rune(r.IntN(int(p[1]-p[0]+1))))
	}
	return sb.String()
}

func TestRoundTripRandomText(t *testing.T) {
	for _, tc := range []struct {
		name string
		tok  *Tokenizer
	}{
		{"SentencePiece (stories260K)", loadStories(t)},
		{"byte-level (tokenizer.json)", byteLevelFixture(t, false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 11))
			for i := 0; i < 500; i++ {
				s := randomText(r)
				ids := tc.tok.Encode(s, true)
				if back := tc.tok.Decode(ids); back != s {
					t.Fatalf("round trip of %q gave %q (ids %v)", s, back, ids)
				}
				// Streaming gives the same text, and never half a character.
				d := tc.tok.NewStreamDecoder()
				var sb strings.Builder
				for _, id := range ids {
					piece := d.Next(id)
					if !utf8.ValidString(piece) {
						t.Fatalf("stream emitted invalid UTF-8 %q", piece)
					}
					sb.WriteString(piece)
				}
				sb.WriteString(d.Flush())
				streamed := sb.String()
				if tc.tok.Kind() == SentencePiece && s != "" {
					streamed = strings.TrimPrefix(streamed, " ")
				}
				if streamed != s {
					t.Fatalf("streamed %q, want %q", streamed, s)
				}
			}
		})
	}
}

func TestStreamDecoderHoldsPartialCharacters(t *testing.T) {
	tok := loadStories(t)
	// "😀" is not in the vocabulary: four byte tokens after "▁".
	ids := tok.Encode("😀!", false)
	if !reflect.DeepEqual(ids, []int{410, 243, 162, 155, 131, 443}) {
		t.Fatalf("ids %v", ids)
	}
	d := tok.NewStreamDecoder()
	var got []string
	for _, id := range ids {
		got = append(got, d.Next(id))
	}
	if want := []string{" ", "", "", "", "😀", "!"}; !reflect.DeepEqual(got, want) {
		t.Errorf("pieces %q, want %q", got, want)
	}
	d.Next(243) // a lone lead byte, never completed
	if s := d.Flush(); s != "\uFFFD" {
		t.Errorf("flush of an unfinished character %q", s)
	}
	if s := tok.Decode([]int{243, 162}); s != "\uFFFD" {
		t.Errorf("decode of a truncated character %q", s)
	}
}

func TestEncodeContinuation(t *testing.T) {
	tok := loadStories(t)
	tests := []struct {
		text string
		want []string
	}{
		{" time", []string{"▁time"}},
		{"time", []string{"t", "ime"}}, // no "▁" prefix: the word continues the previous text (llama2.c reference)
		{"end</s>Once", []string{"end", "</s>", "▁Once"}},
	}
	for _, tc := range tests {
		var got []string
		for _, id := range tok.EncodeContinuation(tc.text) {
			got = append(got, tok.Token(id))
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("EncodeContinuation(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
	// Prompt and continuation concatenated decode to the concatenated text.
	ids := append(tok.Encode("Once upon a", true), tok.EncodeContinuation(" time, there was")...)
	if s := tok.Decode(ids); s != "Once upon a time, there was" {
		t.Errorf("decoded %q", s)
	}
}

// Golden ids produced by llama.cpp itself (llama_tokenize with special-token parsing, from the
// copy vendored in ollama; see the file's "source") for random text mixing words, scripts, emoji,
// whitespace and special-token strings.
func TestStories260KMatchesLlamaCpp(t *testing.T) {
	tok := loadStories(t)
	b, err := os.ReadFile("testdata/stories260k_llamacpp.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Cases []struct {
			Text string `json:"text"`
			IDs  []int  `json:"ids"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden.Cases) < 50 {
		t.Fatalf("only %d golden cases", len(golden.Cases))
	}
	for _, c := range golden.Cases {
		if got := tok.Encode(c.Text, true); !reflect.DeepEqual(got, c.IDs) {
			t.Errorf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.IDs)
		}
	}
}

// Invalid UTF-8 never panics; decoding shows it as U+FFFD, as Hugging Face does.
func TestInvalidUTF8(t *testing.T) {
	for _, tok := range []*Tokenizer{loadStories(t), byteLevelFixture(t, false)} {
		for _, s := range []string{"\xff", "ab\xc3", "\xe4\xb8", "ok\x80\x80ok", "<|im_end|>\xf0"} {
			ids := tok.Encode(s, true)
			if got := tok.Decode(ids); !utf8.ValidString(got) || !strings.Contains(got, "\uFFFD") {
				t.Errorf("%v: %q decoded to %q", tok.Kind(), s, got)
			}
		}
	}
}
