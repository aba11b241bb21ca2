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
// order at each position as the regex engine does.
type preTokenizer struct {
	style          preStyle
	individualDigs bool // split every \p{N} character off first (HF Digits(individual_digits=true): SmolLM, StarCoder)
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
	case "", "default", "gpt-2", "gpt2", "olmo", "jais":
		return preTokenizer{style: styleGPT2}, nil
	case "llama3", "llama-bpe", "llama-v3", "falcon3", "pixtral":
		return preTokenizer{style: styleLlama3}, nil
	case "qwen2", "deepseek-r1-qwen", "megrez":
		return preTokenizer{style: styleQwen2}, nil
	case "smollm", "starcoder", "refact":
		return preTokenizer{style: styleGPT2, individualDigs: true}, nil
	}
	return preTokenizer{}, fmt.Errorf("tokenizer.ggml.pre %q is not supported (gpt2, llama-bpe, qwen2, smollm, starcoder are)", name)
}

func (p preTokenizer) split(text string) []string {
	if !p.individualDigs {
		return p.splitRegex(text, nil)
	}
	var out []string
	start := 0
	for i, r := range text {
		if unicode.IsNumber(r) {
			out = p.splitRegex(text[start:i], out)
			out = append(out, string(r))
			start = i + utf8.RuneLen(r)
		}
	}
	return p.splitRegex(text[start:], out)
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
