package model

import (
	"fmt"
	"math"
	"testing"
)

// A prompt's attention runs as matrix products per block of rows (promptAttention): it gives the
// training forward's logits when the prompt spans several blocks, follows cached positions, meets a
// sliding window shorter than the prompt, grouped-query heads and ALiBi, and mixes with decoding rows
// of other sequences in the same step.
func TestPromptAttentionMatchesForward(t *testing.T) {
	fam := familyConfigs()
	llama := Config{Dim: 8, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 2, FFN: 12, Vocab: 11, NormEps: 1e-5,
		RopeTheta: 10000, RopeLayout: RopeHalfSplit, Norm: NormRMS, Act: ActSwiGLU, SlidingWindow: 24}
	cases := map[string]Config{"llama-sliding-window-gqa": llama, "falcon-rw-alibi": fam["falcon-rw"], "mpt-alibi-clip": fam["mpt"]}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			const T = 150
			cfg.ContextLen = T
			m := perturbedNet(cfg, 9)
			tokens := make([]int32, T)
			for i := range tokens {
				tokens[i] = int32((5*i + 3) % cfg.Vocab)
			}
			full := m.logits(tokens, 1, T)
			newCache := func() *kvCache[float64] {
				n := cfg.Layers * T * cfg.KVHeads * cfg.HeadDim
				return &kvCache[float64]{k: make([]float64, n), v: make([]float64, n), max: T}
			}
			kc, other := newCache(), newCache()
			got := make([]float64, 2*cfg.Vocab)
			// 70 rows at once (two blocks), one, then 79 at once beside another sequence's one row
			pos := 0
			for _, n := range []int{70, 1, 79} {
				caches, toks := []*kvCache[float64]{kc}, [][]int32{tokens[pos : pos+n]}
				if n == 79 {
					caches, toks = append(caches, other), append(toks, tokens[:1])
				}
				if err := m.extend(caches, toks, got); err != nil {
					t.Fatal(err)
				}
				pos += n
				for seq, p := range map[int]int{0: pos, 1: 1} {
					if seq >= len(caches) {
						continue
					}
					want := full[(p-1)*cfg.Vocab : p*cfg.Vocab]
					for i := range want {
						if d := math.Abs(got[seq*cfg.Vocab+i] - want[i]); d > 1e-9 {
							t.Fatalf("%s: position %d of sequence %d, logit %d: extend %g, forward %g",
								fmt.Sprint(n, " rows"), p-1, seq, i, got[seq*cfg.Vocab+i], want[i])
						}
					}
				}
			}
		})
	}
}
