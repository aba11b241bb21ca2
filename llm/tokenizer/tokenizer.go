// Package tokenizer turns text into token ids and back for llama-family models.
//
// Three kinds of tokenizer are implemented:
//
//   - SentencePiece-style BPE (llama 1/2, mistral, tinyllama, stories260K): spaces become "▁",
//     a "▁" is prefixed to the text, pieces merge by score (llama.cpp's llm_tokenizer_spm, from GGUF
//     metadata) or by merge rank (Hugging Face tokenizer.json), and characters outside the vocabulary
//     fall back to byte tokens <0x00>..<0xFF>.
//   - Byte-level BPE (GPT-2, llama 3, qwen2, SmolLM): the text is split by the model's
//     pre-tokenizer regex, each piece's UTF-8 bytes are mapped to printable characters
//     (GPT-2's bytes_to_unicode) and merged by rank.
//   - SentencePiece Unigram (T5, Flan-T5): the text is normalized by the model's precompiled
//     charsmap, split on whitespace, each word prefixed with "▁" and cut by Viterbi into the
//     pieces whose scores sum highest (unigram*.go); Encode appends </s>, there is no BOS.
//
// Special and added tokens are matched in the text before BPE. Encode and Decode round-trip any
// valid UTF-8 text (invalid bytes come back as U+FFFD); StreamDecoder turns ids into text one token at a time for streaming, holding
// back bytes until they form whole UTF-8 characters.
package tokenizer

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Kind is the tokenizer algorithm family.
type Kind int

// The tokenizer kinds.
const (
	SentencePiece Kind = iota // "▁" for spaces, byte fallback
	ByteLevel                 // GPT-2 bytes_to_unicode
	Unigram                   // SentencePiece Unigram (T5): Viterbi over scored pieces, see unigram.go
)

func (k Kind) String() string {
	if k == ByteLevel {
		return "byte-level BPE"
	}
	if k == Unigram {
		return "SentencePiece Unigram"
	}
	return "SentencePiece BPE"
}

// TokenType is a token's role, numbered as GGUF's tokenizer.ggml.token_type.
type TokenType int32

// The token types.
const (
	TypeNormal      TokenType = 1
	TypeUnknown     TokenType = 2
	TypeControl     TokenType = 3 // BOS, EOS, <|im_end|>...: matched in text, dropped by Decode
	TypeUserDefined TokenType = 4 // added tokens that are not special: matched in text, kept by Decode
	TypeUnused      TokenType = 5
	TypeByte        TokenType = 6 // <0x41>
)

// mergeMode says how BPE picks the next pair to merge.
type mergeMode int

const (
	byScore mergeMode = iota // any adjacent pair whose concatenation is a token; highest score first (llama.cpp SPM)
	byRank                   // only listed merges; lowest rank first (Hugging Face BPE)
)

// prependScheme says where a SentencePiece tokenizer puts its "▁" prefix.
type prependScheme int

const (
	prependFirst prependScheme = iota // before the text and after each special token (llama.cpp, HF legacy normalizer)
	prependStart                      // before the first fragment only (HF Metaspace prepend_scheme "first")
	prependNever                      // no prefix
)

// Tokenizer encodes and decodes text. It is safe for concurrent use.
type Tokenizer struct {
	kind   Kind
	mode   mergeMode
	tokens []string
	scores []float32
	types  []TokenType
	ids    map[string]int
	ranks  map[[2]string]int

	byteTokens   [256]int // SentencePiece: id of <0xXX>, -1 when absent
	byteFallback bool
	prepend      prependScheme
	nfc          bool // apply Unicode NFC to text fragments first (qwen2)

	pre          preTokenizer // byte-level
	ignoreMerges bool         // byte-level: a whole piece that is a token is emitted as is (llama 3)
	addPrefixSpc bool         // byte-level: prefix a space to the text (GPT-2 add_prefix_space)

	uni *unigramModel // Unigram only

	specials      []special    // matched before BPE, longest first
	specialsByte0 [256][]int32 // indexes into specials by first byte, longest first

	// BOS, EOS, UNK and PAD are token ids, -1 when the model has none.
	BOS, EOS, UNK, PAD int
	// AddBOS and AddEOS are the model's defaults for adding BOS/EOS (Encode takes addBOS explicitly).
	AddBOS, AddEOS bool
	// ChatTemplate is the Jinja chat template shipped with the model, "" if none.
	ChatTemplate string
}

type special struct {
	text   string
	id     int
	lstrip bool
	rstrip bool
}

// Kind returns the tokenizer's algorithm family.
func (t *Tokenizer) Kind() Kind { return t.kind }

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// Token returns the vocabulary string of id (as stored: "▁the", "Ġthe", "<0x0A>").
func (t *Tokenizer) Token(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// TokenType returns the type of id.
func (t *Tokenizer) TokenType(id int) TokenType {
	if id < 0 || id >= len(t.types) {
		return TypeUnknown
	}
	return t.types[id]
}

// ID returns the id of a vocabulary string.
func (t *Tokenizer) ID(token string) (int, bool) {
	id, ok := t.ids[token]
	return id, ok
}

// Tokens returns the vocabulary (shared; do not modify).
func (t *Tokenizer) Tokens() []string { return t.tokens }

// TokenText returns the display text of a token id: its content for special tokens, the decoded
// piece otherwise. BOS/EOS variables of chat templates use it.
func (t *Tokenizer) TokenText(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	if t.types[id] == TypeControl || t.types[id] == TypeUserDefined || t.types[id] == TypeUnknown {
		return t.tokens[id]
	}
	return string(t.pieceBytes(id))
}

// init finishes construction: the id map, byte tokens and the special-token list.
func (t *Tokenizer) init() error {
	if len(t.tokens) == 0 {
		return fmt.Errorf("tokenizer: empty vocabulary")
	}
	if len(t.types) != len(t.tokens) {
		return fmt.Errorf("tokenizer: %d token types for %d tokens", len(t.types), len(t.tokens))
	}
	t.ids = make(map[string]int, len(t.tokens))
	for id, s := range t.tokens {
		if _, dup := t.ids[s]; !dup {
			t.ids[s] = id
		}
	}
	for b := range t.byteTokens {
		t.byteTokens[b] = -1
		if id, ok := t.ids[fmt.Sprintf("<0x%02X>", b)]; ok && t.kind == SentencePiece {
			t.byteTokens[b] = id
		}
	}
	have := map[string]bool{}
	kept := t.specials[:0]
	for _, s := range t.specials {
		if s.text != "" && !have[s.text] {
			kept = append(kept, s)
			have[s.text] = true
		}
	}
	t.specials = kept
	for id, typ := range t.types {
		if (typ == TypeControl || typ == TypeUserDefined || typ == TypeUnknown) && t.tokens[id] != "" && !have[t.tokens[id]] {
			t.specials = append(t.specials, special{text: t.tokens[id], id: id})
			have[t.tokens[id]] = true
		}
	}
	sort.SliceStable(t.specials, func(i, j int) bool { return len(t.specials[i].text) > len(t.specials[j].text) })
	for i, s := range t.specials {
		t.specialsByte0[s.text[0]] = append(t.specialsByte0[s.text[0]], int32(i))
	}
	for _, id := range []*int{&t.BOS, &t.EOS, &t.UNK, &t.PAD} {
		if *id >= len(t.tokens) {
			*id = -1
		}
	}
	return nil
}

// Encode turns text into token ids, prefixed with BOS when addBOS is true and the model's
// tokenizer adds one (AddBOS, with a BOS token), followed by EOS when the model's AddEOS default
// says so. Special and added tokens written in the text (e.g. "<|im_end|>") become their ids.
//
// addBOS true is Hugging Face's add_special_tokens=True: a model whose tokenizer adds no BOS
// (Falcon, MPT, GPT-NeoX, Qwen2) gets none even though its vocabulary names a BOS token, since it
// was trained without one.
func (t *Tokenizer) Encode(text string, addBOS bool) []int {
	var out []int
	if addBOS && t.AddBOS && t.BOS >= 0 {
		out = append(out, t.BOS)
	}
	out = t.encode(out, text, true)
	if t.AddEOS && t.EOS >= 0 {
		out = append(out, t.EOS)
	}
	return out
}

// AppendsEOS reports whether Encode ends every text with EOS (T5's "$A </s>"), so that a caller
// building "prompt + response + EOS" itself does not add a second one.
func (t *Tokenizer) AppendsEOS() bool { return t.AddEOS && t.EOS >= 0 }

// EncodeContinuation encodes text that continues earlier text (a response after its prompt):
// no BOS or EOS, and no SentencePiece "▁" prefix at its start, so "Paris" gives "P"... rather
// than "▁Paris" (write " Paris" for that). A "▁" still follows special tokens inside the text
// where the model's tokenizer puts one.
func (t *Tokenizer) EncodeContinuation(text string) []int {
	return t.encode(nil, text, false)
}

func (t *Tokenizer) encode(out []int, text string, atStart bool) []int {
	prevSpecial := atStart // the text start counts as following a special token
	first := atStart
	for _, frag := range t.splitSpecial(text) {
		if frag.id >= 0 {
			out = append(out, frag.id)
			prevSpecial = true
			first = false
			continue
		}
		out = t.encodeFragment(out, frag.text, prevSpecial, first)
		prevSpecial, first = false, false
	}
	return out
}

type fragment struct {
	text string
	id   int // -1 for raw text
}

// splitSpecial cuts text at special tokens, longest match first at each position.
func (t *Tokenizer) splitSpecial(text string) []fragment {
	if len(t.specials) == 0 {
		return []fragment{{text, -1}}
	}
	var frags []fragment
	start := 0
	for i := 0; i < len(text); {
		matched := false
		for _, k := range t.specialsByte0[text[i]] {
			s := t.specials[k]
			if !strings.HasPrefix(text[i:], s.text) {
				continue
			}
			raw := text[start:i]
			if s.lstrip {
				raw = strings.TrimRight(raw, " \t\n\r\f\v")
			}
			if raw != "" {
				frags = append(frags, fragment{raw, -1})
			}
			frags = append(frags, fragment{"", s.id})
			i += len(s.text)
			if s.rstrip {
				for i < len(text) && strings.IndexByte(" \t\n\r\f\v", text[i]) >= 0 {
					i++
				}
			}
			start = i
			matched = true
			break
		}
		if !matched {
			_, size := utf8.DecodeRuneInString(text[i:])
			i += size
		}
	}
	if start < len(text) {
		frags = append(frags, fragment{text[start:], -1})
	}
	return frags
}

// Decode turns ids into text. Control tokens (BOS, EOS, chat markers) are left out; user-defined
// added tokens are kept as written. As Hugging Face and llama.cpp do, a SentencePiece tokenizer
// drops the one space its encoder prefixed to the text. Bytes that do not form valid UTF-8
// become U+FFFD.
func (t *Tokenizer) Decode(ids []int) string {
	var b []byte
	first := true
	for _, id := range ids {
		if id < 0 || id >= len(t.tokens) || t.types[id] == TypeControl {
			continue
		}
		p := t.pieceBytes(id)
		if first && t.kind == Unigram {
			p = t.unigramFirstPiece(id, p)
		}
		if first && t.kind == SentencePiece && t.prepend != prependNever && len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
		first = false
		b = append(b, p...)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// TokenBytes returns the bytes a token stands for (nil for control tokens): "▁the" is " the",
// <0x0A> is "\n", a byte-level "Ġthe" is " the". A byte token may be part of a UTF-8 character.
func (t *Tokenizer) TokenBytes(id int) []byte {
	if id < 0 || id >= len(t.tokens) || t.types[id] == TypeControl {
		return nil
	}
	return t.pieceBytes(id)
}

func (t *Tokenizer) pieceBytes(id int) []byte {
	s := t.tokens[id]
	switch {
	case t.types[id] == TypeUserDefined || t.types[id] == TypeControl || t.types[id] == TypeUnknown:
		return []byte(s)
	case t.kind == SentencePiece || t.kind == Unigram:
		if t.types[id] == TypeByte {
			var v byte
			if _, err := fmt.Sscanf(s, "<0x%02X>", &v); err == nil {
				return []byte{v}
			}
		}
		return []byte(strings.ReplaceAll(s, "▁", " "))
	default:
		out := make([]byte, 0, len(s))
		for _, r := range s {
			if b, ok := unicodeToByte[r]; ok {
				out = append(out, b)
			} else {
				out = utf8.AppendRune(out, r)
			}
		}
		return out
	}
}

// StreamDecoder turns ids into text one at a time, holding back the bytes of an unfinished
// UTF-8 character (byte-fallback and byte-level tokens can split one) until it is complete. It
// does not drop the SentencePiece leading space: generated text continues a prompt.
type StreamDecoder struct {
	t       *Tokenizer
	pending []byte
}

// NewStreamDecoder returns a StreamDecoder for this tokenizer.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder { return &StreamDecoder{t: t} }

// Next adds a token and returns the text that is now complete (possibly "").
func (d *StreamDecoder) Next(id int) string {
	d.pending = append(d.pending, d.t.TokenBytes(id)...)
	n := completePrefix(d.pending)
	out := strings.ToValidUTF8(string(d.pending[:n]), "\uFFFD")
	d.pending = append(d.pending[:0], d.pending[n:]...)
	return out
}

// Flush returns whatever is held back, with U+FFFD for an unfinished character.
func (d *StreamDecoder) Flush() string {
	out := strings.ToValidUTF8(string(d.pending), "\uFFFD")
	d.pending = d.pending[:0]
	return out
}

// completePrefix is the length of b without a trailing, possibly still incomplete, UTF-8
// sequence (at most 3 bytes that could begin a valid character).
func completePrefix(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < 0x80 {
			return len(b) // ASCII: nothing unfinished after it
		}
		if c >= 0xC0 { // a lead byte: is its sequence longer than what we have?
			need := 2
			if c >= 0xF0 {
				need = 4
			} else if c >= 0xE0 {
				need = 3
			}
			if need > k && c < 0xF8 {
				return len(b) - k
			}
			return len(b)
		}
	}
	return len(b)
}
