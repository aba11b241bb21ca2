package tokenizer

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// byteToUnicode is GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other
// 68 bytes to U+0100 onwards, so every byte sequence becomes a printable string ("Ġ" is a space).
var byteToUnicode, unicodeToByte = func() ([256]rune, map[rune]byte) {
	var enc [256]rune
	dec := make(map[rune]byte, 256)
	n := 0
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			enc[b] = rune(b)
		} else {
			enc[b] = rune(256 + n)
			n++
		}
		dec[enc[b]] = byte(b)
	}
	return enc, dec
}()

func byteLevelString(s string) string {
	var sb strings.Builder
	sb.Grow(len(s) * 2)
	for i := 0; i < len(s); i++ {
		sb.WriteRune(byteToUnicode[s[i]])
	}
	return sb.String()
}

// preTokenizer splits text into the pieces that byte-level BPE merges within. Each style is a
// hand-written matcher for one regex (Go's regexp has no lookahead), trying the alternatives in
// order at each position as the regex engine does. Hugging Face runs a Sequence of pre-tokenizers
// one after the other, each cutting the pieces of the one before; the flags are those steps, in
// the order split applies them.
type preTokenizer struct {
	style          preStyle
	individualDigs bool // split every \p{N} character off first (HF Digits(individual_digits=true): SmolLM, StarCoder)
	punct          bool // cut runs of punctuation from the rest before the regex (HF Punctuation(Contiguous): Falcon)
	// The two steps below come after ByteLevel in Hugging Face's Sequence, so they see the
	// byte-level characters ("½" is "Â½"), not the text: they cut raw bytes, one per character.
	numericRuns  bool // cut runs of bytes whose byte-level character is \p{N} (HF Digits(individual_digits=false): Falcon)
	digitTriples bool // cut out each group of three ASCII digits, left to right (HF Split [0-9][0-9][0-9] Isolated: Falcon)
}

type preStyle int

const (
	// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
	styleGPT2 preStyle = iota
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
	styleLlama3
	// as llama 3 but \p{N} (one digit at a time)
	styleQwen2
	// no split at all (ByteLevel with use_regex false and nothing before it)
	styleNone
)

// The regexes as they appear in tokenizer.json files, to recognise them.
const (
	regexGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	regexLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	regexQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// Falcon's Split after ByteLevel: digits in groups of three.
	regexDigitTriples = "[0-9][0-9][0-9]"
)

func styleForRegex(re string) (preStyle, error) {
	switch re {
	case regexGPT2:
		return styleGPT2, nil
	case regexLlama3:
		return styleLlama3, nil
	case regexQwen2:
		return styleQwen2, nil
	}
	return 0, fmt.Errorf("pre-tokenizer regex %q is not supported (GPT-2, llama-3 and qwen2 patterns are)", re)
}

// ggufPre maps tokenizer.ggml.pre to a pre-tokenizer, following llama.cpp's table.
func ggufPre(name string) (preTokenizer, error) {
	switch name {
	case "", "default", "gpt-2", "gpt2", "olmo", "jais", "mpt":
		return preTokenizer{style: styleGPT2}, nil
	case "llama3", "llama-bpe", "llama-v3", "falcon3", "pixtral":
		return preTokenizer{style: styleLlama3}, nil
	case "qwen2", "deepseek-r1-qwen", "megrez":
		return preTokenizer{style: styleQwen2}, nil
	case "smollm", "starcoder", "refact":
		return preTokenizer{style: styleGPT2, individualDigs: true}, nil
	case "falcon":
		return falconPre, nil
	}
	return preTokenizer{}, fmt.Errorf("tokenizer.ggml.pre %q is not supported (gpt2, mpt, falcon, llama-bpe, qwen2, smollm, starcoder are)", name)
}

// falconPre is tiiuae/falcon-7b's pre-tokenizer: Punctuation(Contiguous), ByteLevel with the GPT-2
// regex, Digits(individual_digits=false), Split [0-9][0-9][0-9] (Isolated).
var falconPre = preTokenizer{style: styleGPT2, punct: true, numericRuns: true, digitTriples: true}

// ggufName is the tokenizer.ggml.pre that ggufPre maps back to p ("" if there is none). nfc
// tells GPT-2's pattern with Hugging Face's NFC normalizer (gpt-neox-20b, MPT) from GPT-2's own.
func (p preTokenizer) ggufName(nfc bool) string {
	switch {
	case p == falconPre:
		return "falcon"
	case p.punct || p.numericRuns || p.digitTriples:
		return ""
	case p.individualDigs:
		if p.style == styleGPT2 {
			return "smollm"
		}
		return ""
	case p.style == styleGPT2 && nfc:
		return "mpt"
	}
	return map[preStyle]string{styleGPT2: "gpt-2", styleLlama3: "llama-bpe", styleQwen2: "qwen2"}[p.style]
}

func (p preTokenizer) split(text string) []string {
	if !p.individualDigs && !p.punct && !p.numericRuns && !p.digitTriples {
		return p.splitRegex(text, nil)
	}
	pieces := []string{text}
	if p.individualDigs {
		pieces = cutRuns(pieces, isN, true)
	}
	if p.punct {
		pieces = cutRuns(pieces, isPunct, false)
	}
	var out []string
	for _, s := range pieces {
		out = p.splitRegex(s, out)
	}
	if p.numericRuns {
		out = cutNumericBytes(out)
	}
	if p.digitTriples {
		out = cutDigitTriples(out)
	}
	return out
}

// cutRuns cuts each piece into runs of characters that satisfy f and runs that do not; with
// single, every character that satisfies f is a piece of its own (HF's Split with a character
// predicate, Contiguous or Isolated).
func cutRuns(pieces []string, f func(rune) bool, single bool) []string {
	var out []string
	for _, s := range pieces {
		start, prev := 0, false
		for i, r := range s {
			cur := f(r)
			if i > start && (cur != prev || (cur && single)) {
				out = append(out, s[start:i])
				start = i
			}
			prev = cur
		}
		if start < len(s) {
			out = append(out, s[start:])
		}
	}
	return out
}

// numericByte says which bytes map to a \p{N} character under bytes_to_unicode: the ASCII digits
// and ² ³ ¹ ¼ ½ ¾ (so the second byte of "½", 0xBD, is a digit to a step after ByteLevel).
var numericByte = func() (nb [256]bool) {
	for b := range nb {
		nb[b] = unicode.IsNumber(byteToUnicode[b])
	}
	return nb
}()

// cutNumericBytes cuts each piece into runs of numericByte bytes and runs of other bytes.
func cutNumericBytes(pieces []string) []string {
	var out []string
	for _, s := range pieces {
		start := 0
		for i := 1; i < len(s); i++ {
			if numericByte[s[i]] != numericByte[s[i-1]] {
				out = append(out, s[start:i])
				start = i
			}
		}
		if start < len(s) {
			out = append(out, s[start:])
		}
	}
	return out
}

// cutDigitTriples isolates the matches of [0-9][0-9][0-9] in each piece, leftmost first and not
// overlapping, as a regex search does: "12345" is "123" "45".
func cutDigitTriples(pieces []string) []string {
	var out []string
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	for _, s := range pieces {
		start := 0
		for i := 0; i+3 <= len(s); {
			if !isDigit(s[i]) || !isDigit(s[i+1]) || !isDigit(s[i+2]) {
				i++
				continue
			}
			if i > start {
				out = append(out, s[start:i])
			}
			out = append(out, s[i:i+3])
			i += 3
			start = i
		}
		if start < len(s) {
			out = append(out, s[start:])
		}
	}
	return out
}

func (p preTokenizer) splitRegex(text string, out []string) []string {
	if text == "" {
		return out
	}
	if p.style == styleNone {
		return append(out, text)
	}
	rs := []rune(text)
	for i := 0; i < len(rs); {
		n := p.match(rs, i)
		if n <= 0 {
			n = 1
		}
		out = append(out, string(rs[i:i+n]))
		i += n
	}
	return out
}

func isL(r rune) bool     { return unicode.IsLetter(r) }
func isN(r rune) bool     { return unicode.IsNumber(r) }
func isS(r rune) bool     { return unicode.IsSpace(r) }
func isOther(r rune) bool { return !isS(r) && !isL(r) && !isN(r) }
func isNL(r rune) bool    { return r == '\r' || r == '\n' }

// isPunct is Hugging Face's is_punc: ASCII punctuation (which counts $+<=>^`|~, symbols to
// Unicode) or any \p{P} character.
func isPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return strings.IndexByte("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", byte(r)) >= 0
	}
	return unicode.IsPunct(r)
}

// run counts the runes from i on that satisfy f.
func run(rs []rune, i int, f func(rune) bool) int {
	n := 0
	for i+n < len(rs) && f(rs[i+n]) {
		n++
	}
	return n
}

// contraction matches 's 't 're 've 'm 'll 'd at i, case-insensitively when fold is set.
func contraction(rs []rune, i int, fold bool) int {
	if rs[i] != '\'' || i+1 >= len(rs) {
		return 0
	}
	low := func(r rune) rune {
		if fold {
			return unicode.ToLower(r)
		}
		return r
	}
	switch low(rs[i+1]) {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if i+2 < len(rs) && low(rs[i+2]) == 'e' {
			return 3
		}
	case 'l':
		if i+2 < len(rs) && low(rs[i+2]) == 'l' {
			return 3
		}
	}
	return 0
}

// match returns the length of the regex match at i.
func (p preTokenizer) match(rs []rune, i int) int {
	if p.style == styleGPT2 {
		if n := contraction(rs, i, false); n > 0 {
			return n
		}
		sp := 0
		if rs[i] == ' ' && i+1 < len(rs) {
			sp = 1
		}
		for _, class := range []func(rune) bool{isL, isN, isOther} {
			if i+sp < len(rs) && class(rs[i+sp]) {
				return sp + run(rs, i+sp, class)
			}
		}
		return whitespace(rs, i)
	}
	// llama 3 / qwen2
	if n := contraction(rs, i, true); n > 0 {
		return n
	}
	if !isNL(rs[i]) && !isL(rs[i]) && !isN(rs[i]) && i+1 < len(rs) && isL(rs[i+1]) {
		return 1 + run(rs, i+1, isL)
	}
	if isL(rs[i]) {
		return run(rs, i, isL)
	}
	if isN(rs[i]) {
		if p.style == styleQwen2 {
			return 1
		}
		return min(3, run(rs, i, isN))
	}
	sp := 0
	if rs[i] == ' ' && i+1 < len(rs) {
		sp = 1
	}
	if i+sp < len(rs) && isOther(rs[i+sp]) {
		n := sp + run(rs, i+sp, isOther)
		return n + run(rs, i+n, isNL)
	}
	if isS(rs[i]) {
		// \s*[\r\n]+ : the whitespace run up to and including its last newline
		k := run(rs, i, isS)
		for j := k - 1; j >= 0; j-- {
			if isNL(rs[i+j]) {
				return j + 1
			}
		}
	}
	return whitespace(rs, i)
}

// whitespace matches \s+(?!\S)|\s+ at i: a whitespace run, leaving its last space to the next
// word when a non-space follows (so " word" keeps its space); 0 if rs[i] is not whitespace.
func whitespace(rs []rune, i int) int {
	k := run(rs, i, isS)
	if k == 0 {
		return 0
	}
	if i+k < len(rs) && k > 1 {
		return k - 1
	}
	return k
}
