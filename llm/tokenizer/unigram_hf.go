package tokenizer

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// hfUnigramJSON is tokenizer.json for a Unigram model (T5: the model's vocab is a list of
// [piece, score] pairs, which hfTokenizerJSON's map cannot hold).
type hfUnigramJSON struct {
	AddedTokens   []hfAddedToken  `json:"added_tokens"`
	Normalizer    *hfUnigramNode  `json:"normalizer"`
	PreTokenizer  *hfUnigramNode  `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       *hfUnigramNode  `json:"decoder"`
	Model         struct {
		Type         string          `json:"type"`
		UnkID        *int            `json:"unk_id"`
		Vocab        []hfScoredPiece `json:"vocab"`
		ByteFallback bool            `json:"byte_fallback"`
	} `json:"model"`
}

type hfScoredPiece struct {
	Piece string
	Score float64
}

func (p *hfScoredPiece) UnmarshalJSON(b []byte) error {
	var pair []json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil || len(pair) != 2 {
		return fmt.Errorf("unigram vocab entry %s is not [piece, score]", b)
	}
	if err := json.Unmarshal(pair[0], &p.Piece); err != nil {
		return fmt.Errorf("unigram vocab entry %s: %w", b, err)
	}
	if err := json.Unmarshal(pair[1], &p.Score); err != nil {
		return fmt.Errorf("unigram vocab entry %s: %w", b, err)
	}
	return nil
}

// hfUnigramNode is a normalizer, pre-tokenizer or decoder node, with the fields the Unigram
// pipelines use.
type hfUnigramNode struct {
	Type                string           `json:"type"`
	Normalizers         []*hfUnigramNode `json:"normalizers"`
	Pretokenizers       []*hfUnigramNode `json:"pretokenizers"`
	Decoders            []*hfUnigramNode `json:"decoders"`
	PrecompiledCharsmap *string          `json:"precompiled_charsmap"`
	Pattern             hfPattern        `json:"pattern"`
	Content             string           `json:"content"`
	Prepend             string           `json:"prepend"`
	StripLeft           bool             `json:"strip_left"`
	StripRight          bool             `json:"strip_right"`
	Start               int              `json:"start"`
	Replacement         string           `json:"replacement"`
	PrependScheme       string           `json:"prepend_scheme"`
	AddPrefixSpace      *bool            `json:"add_prefix_space"`
	Split               *bool            `json:"split"`
}

func (n *hfUnigramNode) flatten() []*hfUnigramNode {
	if n == nil {
		return nil
	}
	if n.Type == "Sequence" {
		var out []*hfUnigramNode
		for _, c := range append(append(n.Normalizers, n.Pretokenizers...), n.Decoders...) {
			out = append(out, c.flatten()...)
		}
		return out
	}
	return []*hfUnigramNode{n}
}

// isUnigramJSON tells FromHF which reader a tokenizer.json needs.
func isUnigramJSON(tokenizerJSON []byte) bool {
	var peek struct {
		Model struct {
			Type string `json:"type"`
		} `json:"model"`
	}
	return json.Unmarshal(tokenizerJSON, &peek) == nil && peek.Model.Type == "Unigram"
}

// fromHFUnigram builds a Unigram tokenizer (Flan-T5's tokenizer.json) from tokenizer.json and
// tokenizer_config.json (nil if none).
func fromHFUnigram(tokenizerJSON, tokenizerConfigJSON []byte) (*Tokenizer, error) {
	var tj hfUnigramJSON
	if err := json.Unmarshal(tokenizerJSON, &tj); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	var tc hfTokenizerConfig
	if len(tokenizerConfigJSON) > 0 {
		if err := json.Unmarshal(tokenizerConfigJSON, &tc); err != nil {
			return nil, fmt.Errorf("parse tokenizer_config.json: %w", err)
		}
	}
	if len(tj.Model.Vocab) == 0 {
		return nil, fmt.Errorf("tokenizer.json: Unigram model has an empty vocabulary")
	}
	unk := -1
	if tj.Model.UnkID != nil {
		unk = *tj.Model.UnkID
		if unk < 0 || unk >= len(tj.Model.Vocab) {
			return nil, fmt.Errorf("tokenizer.json: Unigram unk_id %d is outside the vocabulary of %d", unk, len(tj.Model.Vocab))
		}
	}
	pieces := make([]string, len(tj.Model.Vocab))
	scores := make([]float64, len(tj.Model.Vocab))
	for i, p := range tj.Model.Vocab {
		pieces[i], scores[i] = p.Piece, p.Score
	}
	t := newUnigramTokenizer(pieces, scores, unk, tj.Model.ByteFallback)
	for _, a := range tj.AddedTokens {
		if err := t.addToken(a); err != nil {
			return nil, err
		}
	}
	if err := t.uni.configure(tj.Normalizer, tj.PreTokenizer, tj.Decoder); err != nil {
		return nil, err
	}
	bos, eos := templateSpecials(tj.PostProcessor)
	t.setSpecials(&tc, bos, eos)
	var err error
	if t.ChatTemplate, err = parseChatTemplate(tc.ChatTemplate); err != nil {
		return nil, err
	}
	if err := t.init(); err != nil {
		return nil, err
	}
	return t, nil
}

// newUnigramTokenizer makes a tokenizer whose ids 0..len(pieces)-1 are the model's pieces, all
// normal tokens until added tokens and the unknown token say otherwise.
func newUnigramTokenizer(pieces []string, scores []float64, unk int, byteFallback bool) *Tokenizer {
	t := &Tokenizer{kind: Unigram, BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	t.tokens = append([]string(nil), pieces...)
	t.types = make([]TokenType, len(pieces))
	for i, p := range pieces {
		t.types[i] = TypeNormal
		if byteFallback && byteTokenRe.MatchString(p) {
			t.types[i] = TypeByte
		}
	}
	t.uni = newUnigramModel(pieces, scores, unk)
	t.uni.byteFallback = byteFallback
	t.uni.prepend, t.uni.metaSplit, t.uni.decode = prependFirst, true, decodeMetaspace
	return t
}

// addToken records an added token; ids past the model's vocabulary extend the token list.
func (t *Tokenizer) addToken(a hfAddedToken) error {
	if a.ID < 0 {
		return fmt.Errorf("tokenizer.json: negative id for added token %q", a.Content)
	}
	for len(t.tokens) <= a.ID {
		t.tokens = append(t.tokens, "")
		t.types = append(t.types, TypeUnused)
	}
	t.tokens[a.ID] = a.Content
	t.types[a.ID] = TypeUserDefined
	if a.Special {
		t.types[a.ID] = TypeControl
	}
	t.specials = append(t.specials, special{text: a.Content, id: a.ID, lstrip: a.LStrip, rstrip: a.RStrip})
	return nil
}

// setSpecials fills BOS/EOS/UNK/PAD and the add-BOS/EOS defaults: tokenizer_config.json's names
// and flags first, else what the post-processor template puts around the sequence (T5: "$A
// </s>", so EOS is appended and there is no BOS).
func (t *Tokenizer) setSpecials(tc *hfTokenizerConfig, templateBOS, templateEOS int) {
	lookup := func(ref hfTokenRef) int {
		if ref.Content == "" {
			return -1
		}
		for _, s := range t.specials {
			if s.text == ref.Content {
				return s.id
			}
		}
		if id, ok := t.uni.trie.find(ref.Content); ok {
			return id
		}
		return -1
	}
	t.BOS, t.EOS, t.PAD = lookup(tc.BOS), lookup(tc.EOS), lookup(tc.PAD)
	if t.BOS < 0 {
		t.BOS = templateBOS
	}
	if t.EOS < 0 {
		t.EOS = templateEOS
	}
	t.UNK = t.uni.unk
	if t.UNK < 0 {
		t.UNK = lookup(tc.UNK)
	}
	if t.UNK >= 0 {
		t.types[t.UNK] = TypeUnknown
	}
	t.AddBOS = templateBOS >= 0
	if tc.AddBOS != nil {
		t.AddBOS = *tc.AddBOS
	}
	t.AddEOS = templateEOS >= 0
	if tc.AddEOS != nil {
		t.AddEOS = *tc.AddEOS
	}
	t.AddBOS = t.AddBOS && t.BOS >= 0
	t.AddEOS = t.AddEOS && t.EOS >= 0
}

// templateSpecials returns the ids of the special tokens a TemplateProcessing post-processor
// puts before and after a single sequence (-1 for none).
func templateSpecials(raw json.RawMessage) (bos, eos int) {
	bos, eos = -1, -1
	var pp struct {
		Type       string            `json:"type"`
		Processors []json.RawMessage `json:"processors"`
		Single     []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
		} `json:"single"`
		SpecialTokens map[string]struct {
			IDs []int `json:"ids"`
		} `json:"special_tokens"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &pp) != nil {
		return bos, eos
	}
	if pp.Type == "Sequence" {
		for _, p := range pp.Processors {
			if b, e := templateSpecials(p); b >= 0 || e >= 0 {
				return b, e
			}
		}
		return bos, eos
	}
	if pp.Type != "TemplateProcessing" || len(pp.Single) == 0 {
		return bos, eos
	}
	id := func(i int) int {
		st := pp.Single[i].SpecialToken
		if st == nil || len(pp.SpecialTokens[st.ID].IDs) != 1 {
			return -1
		}
		return pp.SpecialTokens[st.ID].IDs[0]
	}
	return id(0), id(len(pp.Single) - 1)
}

// configure reads the normalizer, pre-tokenizer and decoder. Supported: the pipelines
// transformers writes for SentencePiece Unigram models (Precompiled, Replace, Strip, Prepend,
// NFC/NFD/NFKC/NFKD normalizers; an optional WhitespaceSplit before Metaspace).
func (m *unigramModel) configure(normalizer, pre, decoder *hfUnigramNode) error {
	for _, n := range normalizer.flatten() {
		step, err := newNormStep(n)
		if err != nil {
			return err
		}
		if step != nil {
			m.normalizers = append(m.normalizers, step)
		}
	}
	metaspace := false
	for _, p := range pre.flatten() {
		switch {
		case p.Type == "WhitespaceSplit" && !metaspace:
			m.wsSplit = true
		case p.Type == "Metaspace" && !metaspace:
			metaspace = true
			scheme, err := metaspaceScheme(p)
			if err != nil {
				return err
			}
			m.prepend = scheme
			m.metaSplit = p.Split == nil || *p.Split
		default:
			return fmt.Errorf("unigram tokenizer: pre-tokenizer %s is not supported (WhitespaceSplit, then Metaspace, is)", describeUnigram(p))
		}
	}
	if !metaspace {
		return fmt.Errorf("unigram tokenizer: one without a Metaspace pre-tokenizer is not supported")
	}
	// The decoder only decides what leaves the start of decoded text; the rest ("▁" back to
	// spaces) is the same for every SentencePiece decoder.
	m.decode = decodeMetaspace
	if m.prepend == prependNever {
		m.decode = decodeKeep
	}
	for _, d := range decoder.flatten() {
		switch d.Type {
		case "Metaspace":
			scheme, err := metaspaceScheme(d)
			if err != nil {
				return err
			}
			m.decode = decodeMetaspace
			if scheme == prependNever {
				m.decode = decodeKeep
			}
		case "Strip":
			if d.Start > 0 {
				m.decode = decodeStripOne
			}
		}
	}
	return nil
}

// metaspaceScheme reads a Metaspace node's prepend scheme ("always" in this package is
// prependFirst: a "▁" before every word).
func metaspaceScheme(n *hfUnigramNode) (prependScheme, error) {
	if n.Replacement != "▁" {
		return 0, fmt.Errorf("unigram tokenizer: Metaspace replacement %q is not supported", n.Replacement)
	}
	switch n.PrependScheme {
	case "", "always":
		if n.AddPrefixSpace != nil && !*n.AddPrefixSpace {
			return prependNever, nil
		}
		return prependFirst, nil
	case "first":
		return prependStart, nil
	case "never":
		return prependNever, nil
	}
	return 0, fmt.Errorf("unigram tokenizer: Metaspace prepend_scheme %q is not supported", n.PrependScheme)
}

func describeUnigram(n *hfUnigramNode) string {
	b, _ := json.Marshal(n)
	return n.Type + " " + string(b)
}

// normStep is one normalizer of the sequence, able to write itself back to tokenizer.json.
type normStep interface {
	apply(string) string
	hfJSON() map[string]any
}

func newNormStep(n *hfUnigramNode) (normStep, error) {
	switch n.Type {
	case "Precompiled":
		if n.PrecompiledCharsmap == nil || *n.PrecompiledCharsmap == "" {
			return nil, nil // an identity table
		}
		b, err := base64.StdEncoding.DecodeString(*n.PrecompiledCharsmap)
		if err != nil {
			return nil, fmt.Errorf("normalizer Precompiled: %w", err)
		}
		cm, err := parseCharsmap(b)
		if err != nil {
			return nil, err
		}
		return precompiledStep{cm}, nil
	case "Replace":
		switch {
		case n.Pattern.String != nil:
			return replaceStep{literal: *n.Pattern.String, content: n.Content}, nil
		case n.Pattern.Regex != nil:
			re, err := regexp.Compile(*n.Pattern.Regex)
			if err != nil {
				return nil, fmt.Errorf("normalizer Replace: %w", err)
			}
			return replaceStep{re: re, content: n.Content}, nil
		}
		return nil, fmt.Errorf("normalizer Replace without a pattern")
	case "Strip":
		return stripStep{n.StripLeft, n.StripRight}, nil
	case "Prepend":
		return prependStep{n.Prepend}, nil
	case "NFC", "NFD", "NFKC", "NFKD":
		return unicodeNormStep(n.Type), nil
	}
	return nil, fmt.Errorf("unigram tokenizer: normalizer %s is not supported", describeUnigram(n))
}

type precompiledStep struct{ cm *charsmap }

func (s precompiledStep) apply(text string) string { return s.cm.normalize(text) }
func (s precompiledStep) hfJSON() map[string]any {
	return map[string]any{"type": "Precompiled", "precompiled_charsmap": base64.StdEncoding.EncodeToString(s.cm.raw)}
}

type replaceStep struct {
	literal string
	re      *regexp.Regexp // when the pattern is a regex
	content string
}

func (s replaceStep) apply(text string) string {
	if s.re != nil {
		return s.re.ReplaceAllLiteralString(text, s.content)
	}
	if s.literal == "" {
		return text
	}
	return strings.ReplaceAll(text, s.literal, s.content)
}

func (s replaceStep) hfJSON() map[string]any {
	pattern := map[string]any{"String": s.literal}
	if s.re != nil {
		pattern = map[string]any{"Regex": s.re.String()}
	}
	return map[string]any{"type": "Replace", "pattern": pattern, "content": s.content}
}

type stripStep struct{ left, right bool }

func (s stripStep) apply(text string) string {
	if s.left {
		text = strings.TrimLeftFunc(text, unicode.IsSpace)
	}
	if s.right {
		text = strings.TrimRightFunc(text, unicode.IsSpace)
	}
	return text
}

func (s stripStep) hfJSON() map[string]any {
	return map[string]any{"type": "Strip", "strip_left": s.left, "strip_right": s.right}
}

type prependStep struct{ s string }

func (s prependStep) apply(text string) string {
	if text == "" {
		return text // HF prepends nothing to empty text
	}
	return s.s + text
}

func (s prependStep) hfJSON() map[string]any {
	return map[string]any{"type": "Prepend", "prepend": s.s}
}

type unicodeNormStep string

func (s unicodeNormStep) apply(text string) string {
	form := map[unicodeNormStep]norm.Form{"NFC": norm.NFC, "NFD": norm.NFD, "NFKC": norm.NFKC, "NFKD": norm.NFKD}[s]
	return form.String(text)
}

func (s unicodeNormStep) hfJSON() map[string]any { return map[string]any{"type": string(s)} }

// unigramTokenizerJSON is WriteHF's tokenizer.json for a Unigram tokenizer: the model's pieces
// with their scores, the same normalizers, WhitespaceSplit + Metaspace, and a TemplateProcessing
// that adds BOS/EOS as AddBOS/AddEOS say.
func (t *Tokenizer) unigramTokenizerJSON() ([]byte, error) {
	m := t.uni
	vocab := make([][2]any, len(m.scores))
	for i, s := range m.scores {
		vocab[i] = [2]any{m.pieces[i], s}
	}
	lstrip, rstrip := map[int]bool{}, map[int]bool{}
	for _, s := range t.specials {
		lstrip[s.id], rstrip[s.id] = s.lstrip, s.rstrip
	}
	added := []map[string]any{}
	for id, typ := range t.types {
		if typ == TypeControl || typ == TypeUserDefined || typ == TypeUnknown {
			added = append(added, map[string]any{"id": id, "content": t.tokens[id], "single_word": false,
				"lstrip": lstrip[id], "rstrip": rstrip[id], "normalized": false, "special": typ != TypeUserDefined})
		}
	}
	var unk any
	if m.unk >= 0 {
		unk = m.unk
	}
	doc := map[string]any{"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added,
		"model": map[string]any{"type": "Unigram", "unk_id": unk, "vocab": vocab, "byte_fallback": m.byteFallback}}

	var norms []any
	for _, n := range m.normalizers {
		norms = append(norms, n.hfJSON())
	}
	switch len(norms) {
	case 0:
		doc["normalizer"] = nil
	case 1:
		doc["normalizer"] = norms[0]
	default:
		doc["normalizer"] = map[string]any{"type": "Sequence", "normalizers": norms}
	}
	scheme := map[prependScheme]string{prependFirst: "always", prependStart: "first", prependNever: "never"}[m.prepend]
	meta := map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme,
		"add_prefix_space": m.prepend != prependNever, "split": m.metaSplit}
	if m.wsSplit {
		doc["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{map[string]any{"type": "WhitespaceSplit"}, meta}}
	} else {
		doc["pre_tokenizer"] = meta
	}
	switch m.decode {
	case decodeStripOne:
		doc["decoder"] = map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"},
			map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0}}}
	default:
		scheme := "always"
		if m.decode == decodeKeep {
			scheme = "never"
		}
		doc["decoder"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme,
			"add_prefix_space": scheme != "never", "split": true}
	}
	doc["post_processor"] = t.templateProcessing()
	b, err := marshalJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	return b, nil
}

// templateProcessing is the post-processor adding BOS before and EOS after each sequence as the
// tokenizer's defaults say (T5: "$A </s>" and "$A </s> $B </s>"); nil when it adds neither.
func (t *Tokenizer) templateProcessing() any {
	if !t.AddBOS && !t.AddEOS {
		return nil
	}
	specials := map[string]any{}
	tok := func(id, typeID int) map[string]any {
		specials[t.tokens[id]] = map[string]any{"id": t.tokens[id], "ids": []int{id}, "tokens": []string{t.tokens[id]}}
		return map[string]any{"SpecialToken": map[string]any{"id": t.tokens[id], "type_id": typeID}}
	}
	seq := func(name string, typeID int) []any {
		var out []any
		if t.AddBOS {
			out = append(out, tok(t.BOS, typeID))
		}
		out = append(out, map[string]any{"Sequence": map[string]any{"id": name, "type_id": typeID}})
		if t.AddEOS {
			out = append(out, tok(t.EOS, typeID))
		}
		return out
	}
	return map[string]any{"type": "TemplateProcessing", "single": seq("A", 0),
		"pair": append(seq("A", 0), seq("B", 1)...), "special_tokens": specials}
}
