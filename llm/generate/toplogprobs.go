package generate

import (
	"math"
	"slices"
)

// Alternative is one of the most likely tokens at a decoding step, with its log-probability under
// the distribution the step sampled from (see Options.Logprobs).
type Alternative struct {
	ID      int32
	Logprob float32
}

// topAlternatives returns the n tokens with the largest score, most likely first, each with the
// log-probability logOf(score) − logZ. It scans cand (all of scores when cand is nil), keeping a
// sorted list of n: a token enters only when it beats the list's last, so a scan over the
// vocabulary costs about one comparison per token.
func topAlternatives(cand []int32, scores []float64, n int, logZ float64, logOf func(float64) float64) []Alternative {
	type entry struct {
		id    int32
		score float64
	}
	top := make([]entry, 0, n+1)
	consider := func(j int32) {
		w := scores[j]
		if len(top) == n && w <= top[n-1].score {
			return
		}
		k, _ := slices.BinarySearchFunc(top, w, func(e entry, w float64) int {
			if e.score >= w { // equal scores keep the lower id first
				return -1
			}
			return 1
		})
		top = slices.Insert(top, k, entry{j, w})
		if len(top) > n {
			top = top[:n]
		}
	}
	if cand == nil {
		for j := range scores {
			consider(int32(j))
		}
	} else {
		for _, j := range cand {
			consider(j)
		}
	}
	out := make([]Alternative, len(top))
	for i, e := range top {
		lp := logOf(e.score) - logZ
		if math.IsNaN(lp) {
			lp = math.Inf(-1)
		}
		out[i] = Alternative{ID: e.id, Logprob: float32(lp)}
	}
	return out
}
