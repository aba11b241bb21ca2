package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/lathe-ml/lathe/llm/format/gguf"
)

// Load reads the tokenizer of a model: from a Hugging Face directory (tokenizer.json and
// tokenizer_config.json) or from a GGUF file's metadata.
func Load(path string) (*Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	if st.IsDir() {
		return LoadHF(path)
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	defer f.Close()
	t, err := FromGGUF(&f.Metadata)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer from %s: %w", path, err)
	}
	return t, nil
}

// LoadHF reads tokenizer.json and (if present) tokenizer_config.json from dir.
func LoadHF(dir string) (*Tokenizer, error) {
	tj, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return loadSpiece(dir, err) // T5 checkpoints may ship only SentencePiece's spiece.model
	}
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	tc, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := FromHF(tj, tc)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer from %s: %w", dir, err)
	}
	return t, nil
}

type hfAddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type hfTokenizerJSON struct {
	AddedTokens   []hfAddedToken  `json:"added_tokens"`
	Normalizer    *hfComponent    `json:"normalizer"`
	PreTokenizer  *hfComponent    `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         struct {
		Type                    string          `json:"type"`
		UnkToken                *string         `json:"unk_token"`
		ByteFallback            bool            `json:"byte_fallback"`
		IgnoreMerges            bool            `json:"ignore_merges"`
		ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
		Vocab                   map[string]int  `json:"vocab"`
		Merges                  json.RawMessage `json:"merges"`
	} `json:"model"`
}

// hfComponent is a normalizer or pre-tokenizer node; only the fields Lathe understands.
type hfComponent struct {
	Type           string         `json:"type"`
	Normalizers    []*hfComponent `json:"normalizers"`
	Pretokenizers  []*hfComponent `json:"pretokenizers"`
	Prepend        string         `json:"prepend"`
	Pattern        hfPattern      `json:"pattern"`
	Content        string         `json:"content"`
	Replacement    string         `json:"replacement"`
	PrependScheme  string         `json:"prepend_scheme"`
	AddPrefixSpace *bool          `json:"add_prefix_space"`
	Split          *bool          `json:"split"`
	UseRegex       *bool          `json:"use_regex"`
	Behavior       string         `json:"behavior"`
	Invert         bool           `json:"invert"`
	IndividualDigs bool           `json:"individual_digits"`
}

type hfPattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

// flatten lists a Sequence's members (or the node itself).
func (c *hfComponent) flatten() []*hfComponent {
	if c == nil {
		return nil
	}
	if c.Type == "Sequence" {
		var out []*hfComponent
		for _, n := range append(c.Normalizers, c.Pretokenizers...) {
			out = append(out, n.flatten()...)
		}
		return out
	}
	return []*hfComponent{c}
}

// hfTokenizerConfig is the part of tokenizer_config.json that matters here. Token fields are
// either a string or an AddedToken object.
type hfTokenizerConfig struct {
	AddBOS       *bool           `json:"add_bos_token"`
	AddEOS       *bool           `json:"add_eos_token"`
	BOS          hfTokenRef      `json:"bos_token"`
	EOS          hfTokenRef      `json:"eos_token"`
	UNK          hfTokenRef      `json:"unk_token"`
	PAD          hfTokenRef      `json:"pad_token"`
	ChatTemplate json.RawMessage `json:"chat_template"`
	Legacy       *bool           `json:"legacy"`
}

type hfTokenRef struct{ Content string }

func (r *hfTokenRef) UnmarshalJSON(b []byte) error {
	var s *string
	if err := json.Unmarshal(b, &s); err == nil {
		if s != nil {
			r.Content = *s
		}
		return nil
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	r.Content = obj.Content
	return nil
}

var byteTokenRe = regexp.MustCompile(`^<0x[0-9A-F]{2}>$`)

// FromHF builds a tokenizer from the bytes of tokenizer.json and tokenizer_config.json (nil if
// the model has none). Supported: model type BPE, either SentencePiece-style (byte_fallback, "▁"
// via a Prepend/Replace normalizer or a Metaspace pre-tokenizer) or byte-level (a ByteLevel
// pre-tokenizer, alone or after a Split with the GPT-2, llama-3 or qwen2 regex, or after Digits,
// or Falcon's Punctuation, ByteLevel, Digits, Split sequence), with an optional NFC normalizer
// (gpt-neox-20b, MPT, Qwen2).
func FromHF(tokenizerJSON, tokenizerConfigJSON []byte) (*Tokenizer, error) {
	if isUnigramJSON(tokenizerJSON) {
		return fromHFUnigram(tokenizerJSON, tokenizerConfigJSON) // T5: unigram*.go
	}
	var tj hfTokenizerJSON
	if err := json.Unmarshal(tokenizerJSON, &tj); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	var tc hfTokenizerConfig
	if len(tokenizerConfigJSON) > 0 {
		if err := json.Unmarshal(tokenizerConfigJSON, &tc); err != nil {
			return nil, fmt.Errorf("parse tokenizer_config.json: %w", err)
		}
	}
	if tj.Model.Type != "BPE" {
		return nil, fmt.Errorf("tokenizer model type %q is not supported (BPE is)", tj.Model.Type)
	}
	if p := tj.Model.ContinuingSubwordPrefix; p != nil && *p != "" {
		return nil, fmt.Errorf("BPE continuing_subword_prefix %q is not supported", *p)
	}
	if s := tj.Model.EndOfWordSuffix; s != nil && *s != "" {
		return nil, fmt.Errorf("BPE end_of_word_suffix %q is not supported", *s)
	}
	t := &Tokenizer{mode: byRank, BOS: -1, EOS: -1, UNK: -1, PAD: -1, ignoreMerges: tj.Model.IgnoreMerges}

	// Vocabulary: the model's vocab plus added tokens, indexed by id.
	size := 0
	for _, id := range tj.Model.Vocab {
		size = max(size, id+1)
	}
	for _, a := range tj.AddedTokens {
		size = max(size, a.ID+1)
	}
	t.tokens = make([]string, size)
	t.types = make([]TokenType, size)
	for i := range t.types {
		t.types[i] = TypeUnused
	}
	for s, id := range tj.Model.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("tokenizer.json: negative id for %q", s)
		}
		t.tokens[id] = s
		t.types[id] = TypeNormal
		if tj.Model.ByteFallback && byteTokenRe.MatchString(s) {
			t.types[id] = TypeByte
		}
	}
	for _, a := range tj.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("tokenizer.json: negative id for added token %q", a.Content)
		}
		t.tokens[a.ID] = a.Content
		t.types[a.ID] = TypeUserDefined
		if a.Special {
			t.types[a.ID] = TypeControl
		}
		t.specials = append(t.specials, special{text: a.Content, id: a.ID, lstrip: a.LStrip, rstrip: a.RStrip})
	}

	merges, err := parseMerges(tj.Model.Merges)
	if err != nil {
		return nil, err
	}
	t.ranks = make(map[[2]string]int, len(merges))
	for r, m := range merges {
		if _, dup := t.ranks[m]; !dup {
			t.ranks[m] = r
		}
	}

	if err := t.configurePipeline(tj.Normalizer, tj.PreTokenizer, tj.Model.ByteFallback); err != nil {
		return nil, err
	}

	lookup := func(ref hfTokenRef) int {
		if ref.Content == "" {
			return -1
		}
		for id, s := range t.tokens {
			if s == ref.Content {
				return id
			}
		}
		return -1
	}
	t.BOS, t.EOS, t.PAD = lookup(tc.BOS), lookup(tc.EOS), lookup(tc.PAD)
	t.UNK = lookup(tc.UNK)
	if t.UNK < 0 && tj.Model.UnkToken != nil {
		t.UNK = lookup(hfTokenRef{*tj.Model.UnkToken})
	}
	// gpt-neox-20b's "<|endoftext|>" is UNK, BOS and EOS at once: it stays a control token (as
	// llama.cpp's conversion has it), so that Decode drops it like any end of sequence.
	if t.UNK >= 0 && t.UNK != t.EOS && t.UNK != t.BOS {
		t.types[t.UNK] = TypeUnknown
	}
	// BOS: tokenizer_config.json's add_bos_token, else whether the post-processor template
	// starts with a special token.
	if tc.AddBOS != nil {
		t.AddBOS = *tc.AddBOS
	} else {
		t.AddBOS = postProcessorAddsBOS(tj.PostProcessor, t)
	}
	if tc.AddEOS != nil {
		t.AddEOS = *tc.AddEOS
	}
	if t.AddBOS && t.BOS < 0 {
		t.AddBOS = false
	}
	t.ChatTemplate, err = parseChatTemplate(tc.ChatTemplate)
	if err != nil {
		return nil, err
	}
	if err := t.init(); err != nil {
		return nil, err
	}
	return t, nil
}

// configurePipeline reads the normalizer and pre-tokenizer into the tokenizer's settings.
func (t *Tokenizer) configurePipeline(normalizer, pre *hfComponent, byteFallback bool) error {
	spaceToMeta, prependMeta := false, false
	for _, n := range normalizer.flatten() {
		switch {
		case n.Type == "Prepend" && n.Prepend == "▁":
			prependMeta = true
		case n.Type == "Replace" && n.Pattern.String != nil && *n.Pattern.String == " " && n.Content == "▁":
			spaceToMeta = true
		case n.Type == "NFC":
			t.nfc = true
		default:
			return fmt.Errorf("normalizer %s is not supported", describe(n))
		}
	}
	pres := pre.flatten()
	byteLevel := false
	var split *preTokenizer
	metaspace := false
	for _, p := range pres {
		switch p.Type {
		case "ByteLevel":
			byteLevel = true
			if p.AddPrefixSpace != nil && *p.AddPrefixSpace {
				t.addPrefixSpc = true
			}
			if p.UseRegex == nil || *p.UseRegex {
				switch {
				case split == nil:
					split = &preTokenizer{style: styleGPT2}
				case split.style == styleNone:
					// Digits (SmolLM, StarCoder) or Punctuation (Falcon), then the GPT-2 regex.
					split.style = styleGPT2
				default:
					return fmt.Errorf("pre-tokenizer ByteLevel with use_regex after a Split regex is not supported")
				}
			}
		case "Split":
			if p.Pattern.Regex == nil || p.Behavior != "Isolated" || p.Invert {
				return fmt.Errorf("pre-tokenizer %s is not supported", describe(p))
			}
			if *p.Pattern.Regex == regexDigitTriples && byteLevel && split != nil {
				// After ByteLevel (Falcon): groups of three digits.
				split.digitTriples = true
				continue
			}
			style, err := styleForRegex(*p.Pattern.Regex)
			if err != nil {
				return err
			}
			split = &preTokenizer{style: style}
		case "Digits":
			switch {
			case p.IndividualDigs && !byteLevel:
				split = &preTokenizer{style: styleNone, individualDigs: true}
			case !p.IndividualDigs && byteLevel:
				// After ByteLevel (Falcon): runs of digits.
				if split == nil {
					split = &preTokenizer{style: styleNone}
				}
				split.numericRuns = true
			default:
				return fmt.Errorf("pre-tokenizer %s is not supported (individual digits before ByteLevel, runs of digits after it are)", describe(p))
			}
		case "Punctuation":
			// Before ByteLevel (Falcon): runs of punctuation cut from the text first.
			if p.Behavior != "Contiguous" || byteLevel || split != nil {
				return fmt.Errorf("pre-tokenizer %s is not supported (Contiguous, first in the sequence, is)", describe(p))
			}
			split = &preTokenizer{style: styleNone, punct: true}
		case "Metaspace":
			if p.Replacement != "▁" {
				return fmt.Errorf("pre-tokenizer Metaspace replacement %q is not supported", p.Replacement)
			}
			metaspace = true
			switch p.PrependScheme {
			case "first":
				t.prepend = prependStart
			case "never":
				t.prepend = prependNever
			case "always", "":
				t.prepend = prependFirst
				if p.PrependScheme == "" && p.AddPrefixSpace != nil && !*p.AddPrefixSpace {
					t.prepend = prependNever
				}
			default:
				return fmt.Errorf("pre-tokenizer Metaspace prepend_scheme %q is not supported", p.PrependScheme)
			}
			if p.Split != nil && *p.Split {
				return fmt.Errorf("pre-tokenizer Metaspace with split=true is not supported")
			}
		default:
			return fmt.Errorf("pre-tokenizer %s is not supported", describe(p))
		}
	}
	switch {
	case byteLevel:
		if spaceToMeta || prependMeta || metaspace {
			return fmt.Errorf("tokenizer mixes byte-level and SentencePiece settings")
		}
		t.kind = ByteLevel
		if split == nil {
			split = &preTokenizer{style: styleNone}
		}
		t.pre = *split
	case metaspace || spaceToMeta:
		if split != nil {
			return fmt.Errorf("SentencePiece-style tokenizer with a split pre-tokenizer is not supported")
		}
		t.kind = SentencePiece
		t.byteFallback = byteFallback
		if !metaspace {
			t.prepend = prependNever
			if prependMeta {
				t.prepend = prependFirst // the legacy normalizer prepends to every fragment
			}
		}
	default:
		return fmt.Errorf("tokenizer is neither byte-level (ByteLevel pre-tokenizer) nor SentencePiece-style (▁ normalizer or Metaspace)")
	}
	return nil
}

func describe(c *hfComponent) string {
	b, _ := json.Marshal(c)
	return c.Type + " " + string(b)
}

// parseMerges accepts both merge encodings: "a b" strings and ["a", "b"] pairs.
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		out := make([][2]string, len(strs))
		for i, m := range strs {
			a, b, ok := strings.Cut(m, " ")
			if !ok {
				return nil, fmt.Errorf("tokenizer.json: merge %d %q is not two tokens", i, m)
			}
			out[i] = [2]string{a, b}
		}
		return out, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("tokenizer.json: merges: %w", err)
	}
	out := make([][2]string, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("tokenizer.json: merge %d has %d parts", i, len(p))
		}
		out[i] = [2]string{p[0], p[1]}
	}
	return out, nil
}

// postProcessorAddsBOS reports whether a TemplateProcessing post-processor puts a special token
// before the sequence (the way tokenizer.json says "add BOS").
func postProcessorAddsBOS(raw json.RawMessage, t *Tokenizer) bool {
	var pp struct {
		Type          string `json:"type"`
		Processors    []json.RawMessage
		Single        []map[string]json.RawMessage   `json:"single"`
		SpecialTokens map[string]struct{ IDs []int } `json:"special_tokens"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &pp) != nil {
		return false
	}
	if pp.Type == "Sequence" {
		for _, p := range pp.Processors {
			if postProcessorAddsBOS(p, t) {
				return true
			}
		}
		return false
	}
	if pp.Type != "TemplateProcessing" || len(pp.Single) == 0 {
		return false
	}
	_, ok := pp.Single[0]["SpecialToken"]
	return ok
}

// parseChatTemplate accepts a template string or a list of named templates (taking "default").
func parseChatTemplate(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &named); err != nil {
		return "", fmt.Errorf("tokenizer_config.json: chat_template: %w", err)
	}
	for _, n := range named {
		if n.Name == "default" {
			return n.Template, nil
		}
	}
	if len(named) > 0 {
		return named[0].Template, nil
	}
	return "", nil
}
