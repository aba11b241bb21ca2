package tokenizer

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// unigramModel is a SentencePiece Unigram language model (T5, Flan-T5, mT5, ALBERT, XLNet...)
// with the normalizer and pre-tokenizer around it, following Hugging Face tokenizers: the text is
// normalized (for T5 with SentencePiece's precompiled charsmap), split on whitespace, each word
// gets a "▁" prefix (Metaspace), and each piece is segmented by Viterbi into the vocabulary
// pieces whose log-probabilities sum highest.
type unigramModel struct {
	pieces       []string  // the model's pieces, by id (ids 0..len-1); tokens may differ where an added token reuses an id
	scores       []float64 // their log-probabilities
	trie         pieceTrie
	unk          int // -1: none
	minScore     float64
	byteFallback bool

	normalizers []normStep
	wsSplit     bool          // WhitespaceSplit pre-tokenizer before Metaspace
	prepend     prependScheme // Metaspace: prependFirst here means HF's "always"
	metaSplit   bool          // Metaspace split: cut pieces before each "▁"
	decode      decodeFirst
}

// decodeFirst says what the decoder drops from the start of the text.
type decodeFirst int

const (
	decodeMetaspace decodeFirst = iota // HF Metaspace decoder: every "▁" of the first token is dropped
	decodeStripOne                     // a Strip decoder: the text's first space is dropped
	decodeKeep
)

// unkPenalty is how much worse than the worst piece an unknown character scores, as
// SentencePiece and Hugging Face do (kUnkPenalty).
const unkPenalty = 10.0

// newUnigramModel indexes the pieces: scores[i] is piece i's score. As in Hugging Face, a piece
// listed twice is found under its last id, and the minimum runs over every piece.
func newUnigramModel(pieces []string, scores []float64, unk int) *unigramModel {
	m := &unigramModel{pieces: pieces, scores: scores, unk: unk}
	m.trie = buildPieceTrie(pieces)
	m.minScore = 0
	for i, s := range scores {
		if i == 0 || s < m.minScore {
			m.minScore = s
		}
	}
	return m
}

// Unigram is the tokenizer kind of SentencePiece Unigram models (T5): Viterbi segmentation by
// piece scores instead of BPE merges.
func (t *Tokenizer) encodeUnigram(out []int, text string, prevSpecial, first bool) []int {
	m := t.uni
	raw := text
	for _, n := range m.normalizers {
		text = n.apply(text)
	}
	if text == "" {
		return out
	}
	// Whether the fragment's first word starts where the fragment does (HF: its original offset
	// is 0), judged before and after normalization: HF's "first" scheme prefixes only that word
	// of the text, and a continuation (neither first nor after a special token) leaves it glued
	// to the text before, the way EncodeContinuation documents.
	leadingSpace := startsWithSpace(raw) || startsWithSpace(text)
	var words []string
	if m.wsSplit {
		words = strings.FieldsFunc(text, unicode.IsSpace)
	} else {
		words = []string{text}
	}
	for i, w := range words {
		w = strings.ReplaceAll(w, " ", "▁")
		prefix := false
		switch m.prepend {
		case prependFirst: // HF "always"
			prefix = i > 0 || prevSpecial || first || leadingSpace
		case prependStart: // HF "first"
			prefix = i == 0 && first && !leadingSpace
		}
		if prefix && !strings.HasPrefix(w, "▁") {
			w = "▁" + w
		}
		if !m.metaSplit {
			out = t.unigramPiece(out, w)
			continue
		}
		for w != "" {
			cut := strings.Index(w[1:], "▁") + 1 // the next "▁" after the first character
			if cut == 0 {
				cut = len(w)
			}
			out = t.unigramPiece(out, w[:cut])
			w = w[cut:]
		}
	}
	return out
}

func startsWithSpace(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r)
}

// unigramPiece segments one pre-tokenized piece and appends its ids.
func (t *Tokenizer) unigramPiece(out []int, piece string) []int {
	m := t.uni
	for _, s := range m.segment(piece) {
		if id, ok := m.trie.find(s); ok {
			out = append(out, id)
			continue
		}
		if m.byteFallback {
			n := len(out)
			for i := 0; i < len(s); i++ {
				id, ok := m.trie.find(fmt.Sprintf("<0x%02X>", s[i]))
				if !ok {
					out = out[:n]
					break
				}
				out = append(out, id)
			}
			if len(out) > n {
				continue
			}
		}
		if m.unk >= 0 {
			out = append(out, m.unk)
		}
		// Without an unknown token Hugging Face refuses the text; Encode has no error to
		// return, so the unknown characters are left out.
	}
	return out
}

// segment returns the highest-scoring split of s into vocabulary pieces (Viterbi over the
// lattice of pieces starting at each character), each run of unknown characters fused into one
// string. Ties go as Hugging Face's encode_optimized breaks them: for each end position the
// first candidate seen keeps it, and candidates come by start position, then by length.
//
//	best[0] = 0; best[e] = max over pieces p = s[b:e] of best[b] + score(p)
//
// A character that no single-character piece covers also gets an unknown node scoring
// minScore - 10, so every position is reachable.
func (m *unigramModel) segment(s string) []string {
	if s == "" {
		return nil
	}
	type node struct {
		score float64
		start int // -1: not reached yet
		id    int // -1: unknown character
	}
	best := make([]node, len(s)+1)
	for i := range best {
		best[i].start = -1
	}
	unkScore := m.minScore - unkPenalty
	for b := 0; b < len(s); {
		_, charLen := utf8.DecodeRuneInString(s[b:])
		here := best[b].score
		single := false
		m.trie.prefixes(s[b:], func(n, id int) {
			e := b + n
			if c := here + m.scores[id]; best[e].start < 0 || c > best[e].score {
				best[e] = node{c, b, id}
			}
			if n == charLen {
				single = true
			}
		})
		if !single {
			e := b + charLen
			if c := here + unkScore; best[e].start < 0 || c > best[e].score {
				best[e] = node{c, b, -1}
			}
		}
		b += charLen
	}
	// Walk back from the end; consecutive unknowns join into one string (fuse_unk).
	var rev []string
	unkEnd := -1
	for e := len(s); e > 0; e = best[e].start {
		n := best[e]
		isUnk := n.id < 0 || n.id == m.unk
		if isUnk {
			if unkEnd < 0 {
				unkEnd = e
			}
			continue
		}
		if unkEnd >= 0 {
			rev = append(rev, s[e:unkEnd])
			unkEnd = -1
		}
		rev = append(rev, s[n.start:e])
	}
	if unkEnd >= 0 {
		rev = append(rev, s[:unkEnd])
	}
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	return rev
}

// pieceTrie is a byte trie over the vocabulary with each node's children in one sorted run, so
// that common-prefix search walks the text once instead of hashing every substring.
type pieceTrie struct {
	first []int32 // node -> index of its first edge in label/child
	count []uint16
	label []byte
	child []int32
	value []int32 // node -> piece id, -1 when no piece ends there
}

func buildPieceTrie(pieces []string) pieceTrie {
	order := make([]int, 0, len(pieces))
	for id, p := range pieces {
		if p != "" {
			order = append(order, id)
		}
	}
	// By piece, duplicates by id so that the last id of a repeated piece is the one kept.
	sort.SliceStable(order, func(i, j int) bool { return pieces[order[i]] < pieces[order[j]] })
	var tr pieceTrie
	newNode := func() int32 {
		tr.first = append(tr.first, 0)
		tr.count = append(tr.count, 0)
		tr.value = append(tr.value, -1)
		return int32(len(tr.value) - 1)
	}
	// build makes the node for the keys order[lo:hi], which share their first depth bytes.
	var build func(lo, hi, depth int) int32
	build = func(lo, hi, depth int) int32 {
		n := newNode()
		for lo < hi && len(pieces[order[lo]]) == depth {
			tr.value[n] = int32(order[lo])
			lo++
		}
		type group struct {
			b      byte
			lo, hi int
		}
		var groups []group
		for i := lo; i < hi; {
			b := pieces[order[i]][depth]
			j := i
			for j < hi && pieces[order[j]][depth] == b {
				j++
			}
			groups = append(groups, group{b, i, j})
			i = j
		}
		tr.first[n] = int32(len(tr.label))
		tr.count[n] = uint16(len(groups))
		for _, g := range groups {
			tr.label = append(tr.label, g.b)
			tr.child = append(tr.child, -1)
		}
		for k, g := range groups {
			c := build(g.lo, g.hi, depth+1)
			tr.child[int(tr.first[n])+k] = c
		}
		return n
	}
	build(0, len(order), 0)
	return tr
}

// next follows the edge labelled b from node n.
func (tr *pieceTrie) next(n int32, b byte) (int32, bool) {
	lo, hi := int(tr.first[n]), int(tr.first[n])+int(tr.count[n])
	edges := tr.label[lo:hi]
	k := sort.Search(len(edges), func(i int) bool { return edges[i] >= b })
	if k < len(edges) && edges[k] == b {
		return tr.child[lo+k], true
	}
	return 0, false
}

// prefixes calls f(length, id) for each piece that is a prefix of s, shortest first.
func (tr *pieceTrie) prefixes(s string, f func(n, id int)) {
	var n int32
	for i := 0; i < len(s); i++ {
		var ok bool
		if n, ok = tr.next(n, s[i]); !ok {
			return
		}
		if v := tr.value[n]; v >= 0 {
			f(i+1, int(v))
		}
	}
}

// find returns the id of piece s.
func (tr *pieceTrie) find(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	var n int32
	for i := 0; i < len(s); i++ {
		var ok bool
		if n, ok = tr.next(n, s[i]); !ok {
			return 0, false
		}
	}
	v := tr.value[n]
	return int(v), v >= 0
}

// unigramFirstPiece is what Decode keeps of the first token it emits.
func (t *Tokenizer) unigramFirstPiece(id int, p []byte) []byte {
	switch t.uni.decode {
	case decodeMetaspace:
		if t.types[id] == TypeByte {
			return p
		}
		return []byte(strings.ReplaceAll(t.tokens[id], "▁", ""))
	case decodeStripOne:
		if len(p) > 0 && p[0] == ' ' {
			return p[1:]
		}
	}
	return p
}
