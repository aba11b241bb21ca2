package tokenizer

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
)

// unigramFromPieces makes a bare Unigram tokenizer (no normalizer or pre-tokenizer) over pieces
// with the given scores, for testing the segmentation alone.
func unigramFromPieces(t *testing.T, vocab []hfScoredPiece, unk int, byteFallback bool) *Tokenizer {
	t.Helper()
	pieces := make([]string, len(vocab))
	scores := make([]float64, len(vocab))
	for i, p := range vocab {
		pieces[i], scores[i] = p.Piece, p.Score
	}
	tok := newUnigramTokenizer(pieces, scores, unk, byteFallback)
	if err := tok.init(); err != nil {
		t.Fatal(err)
	}
	return tok
}

// The cases of Hugging Face's own Unigram tests (tokenizers/src/models/unigram/model.rs:
// test_encode, test_encode2, the encode doc example, test_unigram_bytefallback), with fuse_unk on
// as every Unigram model loaded from tokenizer.json has it.
func TestUnigramSegmentHuggingFaceCases(t *testing.T) {
	abcd := []hfScoredPiece{{"<unk>", 0}, {"a", 0}, {"b", 0}, {"c", 0}, {"d", 0}, {"cd", 1}, {"ab", 2}, {"abc", 5}, {"abcd", 10}}
	encode2 := []hfScoredPiece{{"<unk>", 0}, {"ab", 0}, {"cd", -0.1}, {"abc", -0.2}, {"a", -0.3}, {"b", -0.4}, {"c", -0.5},
		{"ABC", -0.5}, {"abcdabcd", 20}, {"q", 20.5}, {"r", 20.5}, {"qr", -0.5}}
	tests := []struct {
		name  string
		vocab []hfScoredPiece
		text  string
		want  []string
	}{
		{"whole word", abcd, "abcd", []string{"abcd"}},
		{"doc example with fused unknowns", abcd, "abcdacdxx", []string{"abcd", "a", "cd", "xx"}},
		{"abc", encode2, "abc", []string{"abc"}},
		{"unknown run fused", encode2, "AB", []string{"AB"}},
		{"two pieces beat the longer one", encode2, "abcd", []string{"ab", "cd"}},
		{"abcc", encode2, "abcc", []string{"abc", "c"}},
		{"mixed", encode2, "xabcabaabcdd", []string{"x", "abc", "ab", "a", "ab", "cd", "d"}},
		{"unknown scripts fused", encode2, "xyz東京", []string{"xyz東京"}},
		{"ABC", encode2, "ABC", []string{"ABC"}},
		{"abABCcd", encode2, "abABCcd", []string{"ab", "ABC", "cd"}},
		{"high-scoring long piece", encode2, "ababcdabcdcd", []string{"ab", "abcdabcd", "cd"}},
		{"high-scoring single characters", encode2, "abqrcd", []string{"ab", "q", "r", "cd"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := unigramFromPieces(t, tc.vocab, 0, false)
			if got := tok.uni.segment(tc.text); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("segment(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}

	// Byte fallback: unknown runs become their bytes' tokens when all exist (the repeated
	// <0xE2> is found under its last id, 3), else one <unk>.
	bf := []hfScoredPiece{{"<unk>", 0}, {"<0xE2>", -0.01}, {"<0x85>", -0.02}, {"<0xE2>", -0.03}, {"<0x90>", -0.04},
		{"<0x91>", -0.05}, {"<0x9B>", -0.06}, {"Hello", -0.1}, {"how", -0.2}, {"are", -0.3}, {" ", -0.4}}
	tok := unigramFromPieces(t, bf, 0, true)
	for _, tc := range []struct {
		text string
		want []int
	}{
		{"Hello⅐how are⅑⅑", []int{7, 3, 2, 4, 8, 10, 9, 3, 2, 5, 3, 2, 5}},
		{" unknown‰", []int{10, 0}},
	} {
		if got := tok.unigramPiece(nil, tc.text); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("byte fallback %q = %v, want %v", tc.text, got, tc.want)
		}
	}
}

// Segmentations worked out by hand on a small vocabulary, where the best path is not what
// greedy longest-match would give.
func TestUnigramSegmentByHand(t *testing.T) {
	vocab := []hfScoredPiece{{"<unk>", 0}, {"▁", -3}, {"▁a", -1}, {"▁ab", -2}, {"b", -4}, {"c", -5}, {"bc", -1.5},
		{"x", -1}, {"y", -1}, {"xy", -2}, {"p", -1}, {"q", -1}, {"r", -1}, {"pq", -2}, {"qr", -2}, {"▁▁", -1}}
	tests := []struct {
		name string
		text string
		want []string
	}{
		// ▁ab + c = -7; ▁a + bc = -2.5: Viterbi takes the shorter first piece.
		{"best path is not longest match", "▁abc", []string{"▁a", "bc"}},
		// ▁ab + b = -6; ▁a + b + b = -9.
		{"longest match when it is best", "▁abb", []string{"▁ab", "b"}},
		// xy = -2 = x + y: for the end position the first candidate (start 0, "xy") keeps it.
		{"tie: the earlier-starting piece wins", "xy", []string{"xy"}},
		// p+qr and pq+r both -3: at the end, "qr" (start 1) is seen before "r" (start 2).
		{"tie between two splits", "pqr", []string{"p", "qr"}},
		// z scores min(-5) - 10 = -15 on its own; the run z,w is one unknown.
		{"unknown characters between pieces", "xzwy", []string{"x", "zw", "y"}},
		{"a non-ASCII unknown", "▁aé", []string{"▁a", "é"}},
		// ▁ + ▁a = -4; ▁▁ + a (unknown: no "a" piece) = -1 - 15.
		{"an unknown costs more than a worse split", "▁▁a", []string{"▁", "▁a"}},
	}
	tok := unigramFromPieces(t, vocab, 0, false)
	if tok.uni.minScore != -5 {
		t.Fatalf("minScore %v, want -5", tok.uni.minScore)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tok.uni.segment(tc.text); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("segment(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
}

// t5Like loads testdata/unigram_t5like.tokenizer.json, a T5-shaped tokenizer.json (see
// testdata/README.md) with the nmt_nfkc charsmap filled in.
func t5Like(t testing.TB) (*Tokenizer, []byte) {
	t.Helper()
	b, err := os.ReadFile("testdata/unigram_t5like.tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	doc["normalizer"].(map[string]any)["precompiled_charsmap"] = base64.StdEncoding.EncodeToString(nmtNFKC(t))
	if b, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	tok, err := FromHF(b, []byte(`{"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>", "extra_ids": 100,
		"tokenizer_class": "T5Tokenizer", "model_max_length": 512}`))
	if err != nil {
		t.Fatal(err)
	}
	return tok, b
}

func pieceStrings(tok *Tokenizer, ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tok.Token(id)
	}
	return out
}

func TestUnigramT5Pipeline(t *testing.T) {
	tok, _ := t5Like(t)
	if tok.Kind() != Unigram || tok.BOS != -1 || tok.EOS != 1 || tok.PAD != 0 || tok.UNK != 2 || tok.AddBOS || !tok.AppendsEOS() {
		t.Fatalf("kind %v bos %d eos %d pad %d unk %d addBOS %v addEOS %v", tok.Kind(), tok.BOS, tok.EOS, tok.PAD, tok.UNK, tok.AddBOS, tok.AddEOS)
	}
	if id, _ := tok.ID("<extra_id_0>"); id != 3441 || tok.VocabSize() != 3442 {
		t.Fatalf("<extra_id_0> = %d, vocabulary %d", id, tok.VocabSize())
	}
	// What each text becomes, compared by the words it segments to: the normalizer and
	// pre-tokenizer are what is under test, the segmentation of each word is checked by
	// TestUnigramT5Optimal.
	same := []struct {
		name, text, like string
	}{
		{"runs of whitespace collapse, newlines and tabs included", "  the model \n\n\t  reads\r\n", "the model reads"},
		{"full-width letters", "ｔｈｅ ｍｏｄｅｌ", "the model"},
		{"non-breaking and ideographic spaces split words", "the\u00a0model\u3000reads", "the model reads"},
		{"control characters are deleted", "mo\u0001del", "model"},
		{"ligature", "\ufb01le", "file"},
		{"\\r\\n is one cluster and one space", "a\r\nb", "a b"},
	}
	for _, tc := range same {
		t.Run(tc.name, func(t *testing.T) {
			got, want := tok.Encode(tc.text, false), tok.Encode(tc.like, false)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Encode(%q) = %q, want %q as for %q", tc.text, pieceStrings(tok, got), pieceStrings(tok, want), tc.like)
			}
		})
	}
	exact := []struct {
		name, text string
		want       []string
	}{
		{"every word gets ▁ and the sequence </s>", "the model", []string{"▁the", "▁model", "</s>"}},
		{"empty text is just </s>", "", []string{"</s>"}},
		{"whitespace only", " \n ", []string{"</s>"}},
		{"sentinels split the text; words after them get ▁ too", "the<extra_id_0>model <extra_id_1>",
			[]string{"▁the", "<extra_id_0>", "▁model", "<extra_id_1>", "</s>"}},
		{"a typed </s> is the special token", "the</s>", []string{"▁the", "</s>", "</s>"}},
		{"unknown characters fuse into one <unk>", "the 東京 model", []string{"▁the", "▁", "<unk>", "▁model", "</s>"}},
	}
	for _, tc := range exact {
		t.Run(tc.name, func(t *testing.T) {
			if got := pieceStrings(tok, tok.Encode(tc.text, true)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Encode(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
	// A continuation's first word stays glued to the text before it; later words do not.
	if got := pieceStrings(tok, tok.EncodeContinuation("model reads")); got[0] == "▁model" || got[len(got)-1] == "</s>" {
		t.Errorf("EncodeContinuation = %q: want no ▁ on the first word and no </s>", got)
	}
	if got, want := tok.EncodeContinuation(" model"), tok.Encode("model", false); !reflect.DeepEqual(got, want[:len(want)-1]) {
		t.Errorf("EncodeContinuation(\" model\") = %q, want %q", pieceStrings(tok, got), pieceStrings(tok, want))
	}
}

func TestUnigramT5Decode(t *testing.T) {
	tok, _ := t5Like(t)
	tests := []struct {
		name string
		text string // encoded, then decoded
		want string
	}{
		{"plain", "The tokenizer reads the model.", "The tokenizer reads the model."},
		{"whitespace is normalized", "  two  spaces\nand a newline ", "two spaces and a newline"},
		{"full-width becomes ASCII", "Ｈｅｌｌｏ", "Hello"},
		{"sentinels and </s> are dropped", "a <extra_id_0> b", "a b"},
		{"unknowns decode as <unk>", "東京", "<unk>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids := tok.Encode(tc.text, true)
			if got := tok.Decode(ids); got != tc.want {
				t.Errorf("Decode(Encode(%q)) = %q, want %q", tc.text, got, tc.want)
			}
			// Generated T5 output starts with <pad> (the decoder start): still no leading space.
			if got := tok.Decode(append([]int{tok.PAD}, ids...)); got != tc.want {
				t.Errorf("Decode(<pad> + Encode(%q)) = %q, want %q", tc.text, got, tc.want)
			}
			var sb strings.Builder
			d := tok.NewStreamDecoder()
			for _, id := range ids {
				sb.WriteString(d.Next(id))
			}
			sb.WriteString(d.Flush())
			// The stream keeps the first word's space: generated text continues a prompt.
			if got := strings.TrimPrefix(sb.String(), " "); got != tc.want {
				t.Errorf("stream of Encode(%q) = %q, want %q", tc.text, sb.String(), " "+tc.want)
			}
		})
	}
	// The Metaspace decoder drops every ▁ of the first token, not only a leading one.
	first, _ := tok.ID("▁")
	word, _ := tok.ID("▁the")
	if got := tok.Decode([]int{first, word}); got != " the" {
		t.Errorf("Decode(▁, ▁the) = %q, want \" the\"", got)
	}
}

// Every word of a text segments to a highest-scoring split, and among equal-scoring splits to the
// one Hugging Face's tie rule picks: checked against all splits enumerated by brute force.
func TestUnigramT5Optimal(t *testing.T) {
	tok, _ := t5Like(t)
	m := tok.uni
	text := "Lathe fine-tunes llama models; the tokenizer encodes and decodes sentences, " +
		"checkpoints, gradients and optimizers. Unigram segmentation picks the best-scoring pieces: " +
		"undeniably, reproducibility matters (x86_64, 3.14159, zyxwvut, naïve café, ÅngströmΩ)."
	for _, w := range strings.Fields(text) {
		w = "▁" + w
		got := m.segment(w)
		want := bruteForceSegment(m, w)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("segment(%q) = %q, brute force %q", w, got, want)
		}
	}
}

// bruteForceSegment enumerates every split of s into lattice nodes (vocabulary pieces, and an
// unknown node for a character no single-character piece covers), keeps those with the highest
// score summed left to right, and among them takes the one whose last piece starts earliest,
// then the one before it, and so on (Hugging Face's tie rule read globally), fusing unknowns.
func bruteForceSegment(m *unigramModel, s string) []string {
	type path struct {
		starts []int // start of each node, in order
		unk    []bool
		score  float64
	}
	var best []path
	var walk func(pos int, p path)
	walk = func(pos int, p path) {
		if pos == len(s) {
			switch {
			case len(best) == 0 || p.score > best[0].score:
				best = []path{p}
			case p.score == best[0].score:
				best = append(best, p)
			}
			return
		}
		charLen := len(string([]rune(s[pos:])[0]))
		single := false
		for e := pos + 1; e <= len(s); e++ {
			if id, ok := m.trie.find(s[pos:e]); ok {
				if e-pos == charLen {
					single = true
				}
				walk(e, path{append(append([]int(nil), p.starts...), pos), append(append([]bool(nil), p.unk...), id == m.unk), p.score + m.scores[id]})
			}
		}
		if !single {
			walk(pos+charLen, path{append(append([]int(nil), p.starts...), pos), append(append([]bool(nil), p.unk...), true), p.score + m.minScore - unkPenalty})
		}
	}
	walk(0, path{})
	pick := best[0]
	for _, p := range best[1:] {
		// compare from the last node backwards: the earlier start wins
		i, j := len(p.starts)-1, len(pick.starts)-1
		for i >= 0 && j >= 0 && p.starts[i] == pick.starts[j] {
			i, j = i-1, j-1
		}
		if i >= 0 && j >= 0 && p.starts[i] < pick.starts[j] {
			pick = p
		}
	}
	var out []string
	for k, st := range pick.starts {
		end := len(s)
		if k+1 < len(pick.starts) {
			end = pick.starts[k+1]
		}
		if pick.unk[k] && k > 0 && pick.unk[k-1] {
			out[len(out)-1] += s[st:end]
			continue
		}
		out = append(out, s[st:end])
	}
	if math.IsInf(pick.score, 0) {
		return nil
	}
	return out
}

func TestUnigramWriteHFRoundTrip(t *testing.T) {
	tok, _ := t5Like(t)
	dir := t.TempDir()
	if err := tok.WriteHF(dir); err != nil {
		t.Fatal(err)
	}
	back, err := LoadHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	assertSameUnigram(t, tok, back)
}

// assertSameUnigram checks that two tokenizers give the same ids, defaults and text.
func assertSameUnigram(t *testing.T, want, got *Tokenizer) {
	t.Helper()
	if got.Kind() != Unigram || got.VocabSize() != want.VocabSize() || got.BOS != want.BOS || got.EOS != want.EOS ||
		got.UNK != want.UNK || got.PAD != want.PAD || got.AddBOS != want.AddBOS || got.AddEOS != want.AddEOS {
		t.Fatalf("got kind %v size %d bos %d eos %d unk %d pad %d add %v/%v; want size %d bos %d eos %d unk %d pad %d add %v/%v",
			got.Kind(), got.VocabSize(), got.BOS, got.EOS, got.UNK, got.PAD, got.AddBOS, got.AddEOS,
			want.VocabSize(), want.BOS, want.EOS, want.UNK, want.PAD, want.AddBOS, want.AddEOS)
	}
	for id := 0; id < want.VocabSize(); id++ {
		if got.Token(id) != want.Token(id) || got.TokenType(id) != want.TokenType(id) {
			t.Fatalf("token %d: %q type %d, want %q type %d", id, got.Token(id), got.TokenType(id), want.Token(id), want.TokenType(id))
		}
	}
	for _, text := range []string{"The tokenizer reads the model.", "  ｆｕｌｌ\twidth\n\nand 東京 <extra_id_3>x</s>", "", "naïve ﬁle ½"} {
		a, b := want.Encode(text, true), got.Encode(text, true)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("Encode(%q) = %v, want %v", text, b, a)
		}
		if want.Decode(a) != got.Decode(a) {
			t.Errorf("Decode differs: %q vs %q", got.Decode(a), want.Decode(a))
		}
	}
}

func TestUnigramLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		json string
	}{
		{"empty vocabulary", `{"model": {"type": "Unigram", "vocab": []}}`},
		{"unk_id outside", `{"model": {"type": "Unigram", "unk_id": 5, "vocab": [["a", -1]]}, "pre_tokenizer": {"type": "Metaspace", "replacement": "▁"}}`},
		{"bad vocab entry", `{"model": {"type": "Unigram", "vocab": [["a"]]}}`},
		{"no Metaspace", `{"model": {"type": "Unigram", "vocab": [["a", -1]]}}`},
		{"unsupported normalizer", `{"model": {"type": "Unigram", "vocab": [["a", -1]]}, "normalizer": {"type": "Lowercase"},
			"pre_tokenizer": {"type": "Metaspace", "replacement": "▁"}}`},
		{"bad charsmap", `{"model": {"type": "Unigram", "vocab": [["a", -1]]}, "normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAAA"},
			"pre_tokenizer": {"type": "Metaspace", "replacement": "▁"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := FromHF([]byte(tc.json), nil); err == nil {
				t.Errorf("FromHF accepted %s", tc.json)
			}
		})
	}
}

// The pipelines other transformers versions write for SentencePiece Unigram models, and the
// Metaspace prepend schemes, on a vocabulary of single characters (so each piece is visible).
func TestUnigramPipelineVariants(t *testing.T) {
	vocab := [][2]any{{"<unk>", 0}, {"</s>", 0}, {"▁", -2}, {"▁a", -1}, {"▁b", -1}, {"a", -3}, {"b", -3}, {"c", -3}, {"▁c", -1}}
	ws := map[string]any{"type": "WhitespaceSplit"}
	meta := func(scheme string, split bool) map[string]any {
		return map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": split}
	}
	seq := func(kind string, items ...any) map[string]any {
		return map[string]any{"type": "Sequence", kind: items}
	}
	spaces := map[string]any{"type": "Replace", "pattern": map[string]any{"Regex": " {2,}"}, "content": " "}
	spacesMeta := map[string]any{"type": "Replace", "pattern": map[string]any{"Regex": " {2,}"}, "content": "▁"}
	strip := map[string]any{"type": "Strip", "strip_left": false, "strip_right": true}
	tests := []struct {
		name       string
		normalizer any
		pre        any
		text       string
		want       []string
	}{
		{"whitespace split, always", nil, seq("pretokenizers", ws, meta("always", true)), "a  b<x>c ", []string{"▁a", "▁b", "<x>", "▁c"}},
		{"whitespace split, first: only the text's first word", nil, seq("pretokenizers", ws, meta("first", true)), "a b<x>c", []string{"▁a", "b", "<x>", "c"}},
		{"whitespace split, first, leading space: none", nil, seq("pretokenizers", ws, meta("first", true)), " a b", []string{"a", "b"}},
		{"whitespace split, never", nil, seq("pretokenizers", ws, meta("never", true)), "a b", []string{"a", "b"}},
		{"legacy add_prefix_space false is never", nil, map[string]any{"type": "Metaspace", "replacement": "▁", "add_prefix_space": false}, "a b", []string{"a", "▁b"}},
		// Precompiled-less version of transformers' 2022 converter: runs of spaces become one.
		{"Replace {2,} then Metaspace splitting on ▁", spaces, meta("always", true), "a   b c", []string{"▁a", "▁b", "▁c"}},
		{"Metaspace without split keeps one piece", spaces, meta("always", false), "ab", []string{"▁a", "b"}},
		{"leading space is the prefix", spaces, meta("always", true), " a", []string{"▁a"}},
		// The 2024 converter: strip the right, runs of spaces become one ▁.
		{"Strip + Replace {2,} with ▁", seq("normalizers", strip, spacesMeta), meta("first", true), "a  b  ", []string{"▁a", "▁b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := map[string]any{
				"added_tokens": []any{map[string]any{"id": 1, "content": "</s>", "special": true}, map[string]any{"id": 9, "content": "<x>", "special": true}},
				"normalizer":   tc.normalizer, "pre_tokenizer": tc.pre,
				"model": map[string]any{"type": "Unigram", "unk_id": 0, "vocab": vocab},
			}
			b, _ := json.Marshal(doc)
			tok, err := FromHF(b, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := pieceStrings(tok, tok.Encode(tc.text, true)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Encode(%q) = %q, want %q", tc.text, got, tc.want)
			}
			// The same pipeline written back out and read again.
			dir := t.TempDir()
			if err := tok.WriteHF(dir); err != nil {
				t.Fatal(err)
			}
			back, err := LoadHF(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := pieceStrings(back, back.Encode(tc.text, true)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("after WriteHF: Encode(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
}
