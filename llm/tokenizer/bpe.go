package tokenizer

import (
	"container/heap"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// encodeFragment appends the ids of a piece of raw text (no special tokens in it).
// prevSpecial: the fragment starts the text or follows a special token; first: it starts the text.
func (t *Tokenizer) encodeFragment(out []int, text string, prevSpecial, first bool) []int {
	if t.kind == Unigram {
		return t.encodeUnigram(out, text, prevSpecial, first)
	}
	if t.nfc {
		text = norm.NFC.String(text)
	}
	if t.kind == SentencePiece {
		if (t.prepend == prependFirst && prevSpecial) || (t.prepend == prependStart && first) {
			text = " " + text
		}
		text = strings.ReplaceAll(text, " ", "▁")
		if text == "" {
			return out
		}
		return t.bpeSentencePiece(out, text)
	}
	if t.addPrefixSpc && first && !strings.HasPrefix(text, " ") {
		text = " " + text
	}
	for _, piece := range t.pre.split(text) {
		mapped := byteLevelString(piece)
		if t.ignoreMerges {
			if id, ok := t.ids[mapped]; ok {
				out = append(out, id)
				continue
			}
		}
		out = t.bpe(out, mapped)
	}
	return out
}

// bpeSentencePiece runs BPE over the characters of text and emits ids, falling back to byte
// tokens for pieces outside the vocabulary (or UNK when there are none).
func (t *Tokenizer) bpeSentencePiece(out []int, text string) []int {
	syms := t.merge(splitChars(text))
	for _, s := range syms {
		if id, ok := t.ids[s]; ok {
			out = append(out, id)
			continue
		}
		out = t.fallback(out, s)
	}
	return out
}

func (t *Tokenizer) fallback(out []int, s string) []int {
	if t.kind == SentencePiece && t.byteFallback {
		ok := true
		for i := 0; i < len(s); i++ {
			if t.byteTokens[s[i]] < 0 {
				ok = false
			}
		}
		if ok {
			for i := 0; i < len(s); i++ {
				out = append(out, t.byteTokens[s[i]])
			}
			return out
		}
	}
	if t.UNK >= 0 {
		// Hugging Face fuses runs of unknowns into one UNK (fuse_unk); llama.cpp's SPM never gets here
		// with byte tokens present.
		if len(out) == 0 || out[len(out)-1] != t.UNK {
			out = append(out, t.UNK)
		}
	}
	return out
}

// bpe merges a byte-level piece and emits ids.
func (t *Tokenizer) bpe(out []int, piece string) []int {
	for _, s := range t.merge(splitChars(piece)) {
		if id, ok := t.ids[s]; ok {
			out = append(out, id)
		} else if t.UNK >= 0 {
			out = append(out, t.UNK)
		}
	}
	return out
}

func splitChars(s string) []string {
	out := make([]string, 0, len(s))
	for len(s) > 0 {
		_, n := utf8.DecodeRuneInString(s)
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

// symbol is one node of the doubly linked list BPE merges over.
type symbol struct {
	text       string
	prev, next int
}

// candidate is a possible merge of symbols left and left's next. Symbols only grow, so the
// lengths they had when the pair was queued tell a stale candidate, which is skipped.
type candidate struct {
	prio        float64 // higher merges first
	left, right int32
	llen, rlen  int32
}

type candidateHeap []candidate

func (h candidateHeap) Len() int { return len(h) }
func (h candidateHeap) Less(i, j int) bool {
	if h[i].prio != h[j].prio {
		return h[i].prio > h[j].prio
	}
	return h[i].left < h[j].left // ties: leftmost first, as llama.cpp and Hugging Face do
}
func (h candidateHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candidateHeap) Push(x any)   { *h = append(*h, x.(candidate)) }
func (h *candidateHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// pairPriority says whether two adjacent symbols may merge, and how urgently. buf is scratch
// space for the concatenation (a map lookup keyed by string(buf) does not allocate).
func (t *Tokenizer) pairPriority(a, b string, buf *[]byte) (float64, bool) {
	if t.mode == byRank {
		r, ok := t.ranks[[2]string{a, b}]
		return -float64(r), ok
	}
	*buf = append(append((*buf)[:0], a...), b...)
	id, ok := t.ids[string(*buf)]
	if !ok {
		return 0, false
	}
	return float64(t.scores[id]), true
}

// merge applies BPE to the initial symbols and returns the final ones in order.
func (t *Tokenizer) merge(init []string) []string {
	if len(init) < 2 {
		return init
	}
	syms := make([]symbol, len(init))
	for i, s := range init {
		syms[i] = symbol{text: s, prev: i - 1, next: i + 1}
	}
	syms[len(syms)-1].next = -1
	h := &candidateHeap{}
	var buf []byte
	push := func(l, r int) {
		if l < 0 || r < 0 {
			return
		}
		if p, ok := t.pairPriority(syms[l].text, syms[r].text, &buf); ok {
			heap.Push(h, candidate{p, int32(l), int32(r), int32(len(syms[l].text)), int32(len(syms[r].text))})
		}
	}
	for i := 0; i+1 < len(syms); i++ {
		push(i, i+1)
	}
	for h.Len() > 0 {
		c := heap.Pop(h).(candidate)
		l, r := &syms[c.left], &syms[c.right]
		if len(l.text) != int(c.llen) || len(r.text) != int(c.rlen) || l.next != int(c.right) {
			continue // one side has merged since this pair was queued
		}
		l.text += r.text
		r.text = ""
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = int(c.left)
		}
		r.prev, r.next = -2, -2
		push(l.prev, int(c.left))
		push(int(c.left), l.next)
	}
	out := make([]string, 0, len(syms))
	for i := 0; i >= 0; i = syms[i].next {
		out = append(out, syms[i].text)
	}
	return out
}
