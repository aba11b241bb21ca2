package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// WriteHF writes tokenizer.json and tokenizer_config.json into dir, so that a model saved in the
// Hugging Face layout carries its tokenizer (transformers loads them with
// PreTrainedTokenizerFast; this package's LoadHF reads them back to the same tokenizer).
func (t *Tokenizer) WriteHF(dir string) error {
	tj, err := t.hfTokenizerJSON()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "tokenizer.json"), tj); err != nil {
		return err
	}
	tc, err := t.hfTokenizerConfig()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "tokenizer_config.json"), tc)
}

func (t *Tokenizer) hfTokenizerJSON() ([]byte, error) {
	if t.kind == Unigram {
		return t.unigramTokenizerJSON()
	}
	vocab := make(map[string]int, len(t.tokens))
	var added []map[string]any
	for id, s := range t.tokens {
		switch t.types[id] {
		case TypeControl, TypeUserDefined, TypeUnknown:
			added = append(added, map[string]any{"id": id, "content": s, "single_word": false, "lstrip": false,
				"rstrip": false, "normalized": false, "special": t.types[id] != TypeUserDefined})
		case TypeUnused:
			if s == "" {
				continue
			}
		}
		if _, dup := vocab[s]; !dup {
			vocab[s] = id
		}
	}
	merges := t.mergeList()
	model := map[string]any{"type": "BPE", "dropout": nil, "continuing_subword_prefix": nil, "end_of_word_suffix": nil,
		"fuse_unk": t.kind == SentencePiece, "byte_fallback": t.kind == SentencePiece && t.byteFallback,
		"ignore_merges": t.ignoreMerges, "vocab": vocab, "merges": merges, "unk_token": nil}
	if t.UNK >= 0 {
		model["unk_token"] = t.tokens[t.UNK]
	}
	doc := map[string]any{"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added, "model": model}
	var normalizers []any
	if t.nfc {
		normalizers = append(normalizers, map[string]any{"type": "NFC"})
	}
	switch t.kind {
	case SentencePiece:
		if t.prepend == prependStart {
			doc["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}
		} else {
			if t.prepend == prependFirst {
				normalizers = append(normalizers, map[string]any{"type": "Prepend", "prepend": "▁"})
			}
			normalizers = append(normalizers, map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"})
			doc["pre_tokenizer"] = nil
		}
		decoders := []any{
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"},
		}
		if t.prepend != prependNever {
			decoders = append(decoders, map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0})
		}
		doc["decoder"] = map[string]any{"type": "Sequence", "decoders": decoders}
	case ByteLevel:
		doc["pre_tokenizer"] = t.hfByteLevelPre()
		doc["decoder"] = map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}
	}
	switch len(normalizers) {
	case 0:
		doc["normalizer"] = nil
	case 1:
		doc["normalizer"] = normalizers[0]
	default:
		doc["normalizer"] = map[string]any{"type": "Sequence", "normalizers": normalizers}
	}
	if t.AddBOS && t.BOS >= 0 {
		bos := t.tokens[t.BOS]
		doc["post_processor"] = map[string]any{
			"type":   "TemplateProcessing",
			"single": []any{map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"pair": []any{map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
				map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 1}}, map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}}},
			"special_tokens": map[string]any{bos: map[string]any{"id": bos, "ids": []int{t.BOS}, "tokens": []string{bos}}},
		}
	} else if t.kind == ByteLevel {
		doc["post_processor"] = map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}
	} else {
		doc["post_processor"] = nil
	}
	b, err := marshalJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	return b, nil
}

// hfByteLevelPre writes the byte-level pre-tokenizer the way Hugging Face does: the steps before
// ByteLevel, ByteLevel itself (with the GPT-2 regex or none), the steps after it.
func (t *Tokenizer) hfByteLevelPre() any {
	p := t.pre
	var steps []any
	if p.individualDigs {
		steps = append(steps, map[string]any{"type": "Digits", "individual_digits": true})
	}
	if p.punct {
		steps = append(steps, map[string]any{"type": "Punctuation", "behavior": "Contiguous"})
	}
	if re := map[preStyle]string{styleLlama3: regexLlama3, styleQwen2: regexQwen2}[p.style]; re != "" {
		steps = append(steps, map[string]any{"type": "Split", "pattern": map[string]any{"Regex": re}, "behavior": "Isolated", "invert": false})
	}
	steps = append(steps, map[string]any{"type": "ByteLevel", "add_prefix_space": t.addPrefixSpc, "trim_offsets": true, "use_regex": p.style == styleGPT2})
	if p.numericRuns {
		steps = append(steps, map[string]any{"type": "Digits", "individual_digits": false})
	}
	if p.digitTriples {
		steps = append(steps, map[string]any{"type": "Split", "pattern": map[string]any{"Regex": regexDigitTriples}, "behavior": "Isolated", "invert": false})
	}
	if len(steps) == 1 {
		return steps[0]
	}
	return map[string]any{"type": "Sequence", "pretokenizers": steps}
}

// mergeList returns the merges in rank order. A score-merged (SentencePiece from GGUF)
// vocabulary has no merge list; it is derived as transformers' SentencePieceExtractor does: every
// split of a normal token into two normal tokens is a merge, ordered by the token's score (best
// first), then by the ids of the two parts.
func (t *Tokenizer) mergeList() [][2]string {
	if t.mode == byRank {
		out := make([][2]string, len(t.ranks))
		for pair, r := range t.ranks {
			out[r] = pair
		}
		return out
	}
	type merge struct {
		pair  [2]string
		score float32
		l, r  int
	}
	var ms []merge
	for id, s := range t.tokens {
		if t.types[id] != TypeNormal {
			continue
		}
		for i := 1; i < len(s); i++ {
			a, b := s[:i], s[i:]
			la, okA := t.ids[a]
			lb, okB := t.ids[b]
			if okA && okB && t.types[la] == TypeNormal && t.types[lb] == TypeNormal {
				ms = append(ms, merge{[2]string{a, b}, t.scores[id], la, lb})
			}
		}
	}
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].score != ms[j].score {
			return ms[i].score > ms[j].score
		}
		if ms[i].l != ms[j].l {
			return ms[i].l < ms[j].l
		}
		return ms[i].r < ms[j].r
	})
	out := make([][2]string, len(ms))
	for i, m := range ms {
		out[i] = m.pair
	}
	return out
}

func (t *Tokenizer) hfTokenizerConfig() ([]byte, error) {
	tok := func(id int) any {
		if id < 0 {
			return nil
		}
		return t.tokens[id]
	}
	cfg := map[string]any{
		"tokenizer_class":              "PreTrainedTokenizerFast",
		"add_bos_token":                t.AddBOS,
		"add_eos_token":                t.AddEOS,
		"bos_token":                    tok(t.BOS),
		"eos_token":                    tok(t.EOS),
		"unk_token":                    tok(t.UNK),
		"pad_token":                    tok(t.PAD),
		"clean_up_tokenization_spaces": false,
	}
	if t.ChatTemplate != "" {
		cfg["chat_template"] = t.ChatTemplate
	}
	b, err := marshalJSON(cfg)
	if err != nil {
		return nil, fmt.Errorf("tokenizer_config.json: %w", err)
	}
	return b, nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// marshalJSON indents and, unlike json.Marshal, leaves "<" and ">" readable: token strings such
// as "<s>" and "<|im_end|>" are full of them.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
