package tokenizer

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// spmTokenizerJSON builds a llama-2-style tokenizer.json (BPE with byte_fallback) with either the
// legacy normalizer (Prepend "▁" + Replace " "), which prefixes "▁" to every text fragment,
// or the newer Metaspace pre-tokenizer with prepend_scheme "first".
func spmTokenizerJSON(t *testing.T, metaspace bool) *Tokenizer {
	t.Helper()
	vocab := map[string]int{"<unk>": 0, "<s>": 1, "</s>": 2}
	for b := 0; b < 256; b++ {
		vocab[fmt.Sprintf("<0x%02X>", b)] = len(vocab)
	}
	for _, s := range []string{"▁", "a", "b", "▁a", "ab", "▁ab"} {
		vocab[s] = len(vocab)
	}
	doc := map[string]any{
		"added_tokens": []map[string]any{
			{"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true}, {"id": 2, "content": "</s>", "special": true}},
		"model": map[string]any{"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true, "vocab": vocab,
			"merges": [][]string{{"▁", "a"}, {"a", "b"}, {"▁a", "b"}}},
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single": []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}}},
	}
	if metaspace {
		doc["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}
	} else {
		doc["normalizer"] = map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"}, map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"}}}
	}
	b, _ := json.Marshal(doc)
	tok, err := FromHF(b, []byte(`{"bos_token": "<s>", "eos_token": {"content": "</s>", "special": true}, "unk_token": "<unk>"}`))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestSentencePieceTokenizerJSON(t *testing.T) {
	tests := []struct {
		name      string
		metaspace bool
		text      string
		want      []string
	}{
		// ▁+a (rank 0), a+b (1), then ▁a+b (2).
		{"legacy", false, "ab", []string{"<s>", "▁ab"}},
		{"legacy prefixes after a special token", false, "ab</s>ab", []string{"<s>", "▁ab", "</s>", "▁ab"}},
		{"metaspace prefixes the first fragment only", true, "ab</s>ab", []string{"<s>", "▁ab", "</s>", "ab"}},
		// "c" is not in the vocabulary: its byte.
		{"byte fallback", true, "a c", []string{"<s>", "▁a", "▁", "<0x63>"}},
		{"multi-byte fallback", false, "é", []string{"<s>", "▁", "<0xC3>", "<0xA9>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := spmTokenizerJSON(t, tc.metaspace)
			if !tok.AddBOS || tok.BOS != 1 || tok.EOS != 2 {
				t.Fatalf("addBOS %v bos %d eos %d", tok.AddBOS, tok.BOS, tok.EOS)
			}
			ids := tok.Encode(tc.text, true)
			var got []string
			for _, id := range ids {
				got = append(got, tok.Token(id))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Encode(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
	if s := spmTokenizerJSON(t, true).Decode(spmTokenizerJSON(t, true).Encode("a c é", true)); s != "a c é" {
		t.Errorf("decode %q", s)
	}
}
