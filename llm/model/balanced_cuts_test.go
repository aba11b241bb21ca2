package model

import "testing"

// A causal prompt's (row, head) pairs cost as many positions as the row attends to: the cuts give
// each worker about the same number of positions, not of rows, and cover every unit once.
func TestBalancedCutsSplitCausalWorkEvenly(t *testing.T) {
	for _, tc := range []struct{ n, parts int }{{512, 2}, {512 * 8, 2}, {7, 3}, {1, 4}, {100, 16}} {
		cost := func(u int) int { return u + 1 }
		cuts := balancedCuts(tc.n, tc.parts, cost)
		if cuts[0] != 0 || cuts[len(cuts)-1] != tc.n || len(cuts)-1 > tc.parts {
			t.Fatalf("n=%d parts=%d: cuts %v do not cover 0..n in at most parts ranges", tc.n, tc.parts, cuts)
		}
		total, worst := tc.n*(tc.n+1)/2, 0
		for i := 1; i < len(cuts); i++ {
			if cuts[i] < cuts[i-1] {
				t.Fatalf("n=%d parts=%d: cuts %v go backwards", tc.n, tc.parts, cuts)
			}
			w := 0
			for u := cuts[i-1]; u < cuts[i]; u++ {
				w += cost(u)
			}
			worst = max(worst, w)
		}
		// No range holds more than its share plus one unit (the largest, n).
		if share := (total + tc.parts - 1) / tc.parts; worst > share+tc.n {
			t.Errorf("n=%d parts=%d: cuts %v give a range %d positions, share %d", tc.n, tc.parts, cuts, worst, share)
		}
		if tc.n == 512 && tc.parts == 2 && (cuts[1] < 350 || cuts[1] > 370) {
			t.Errorf("a 512-row causal prompt on 2 workers is cut at row %d, want ~362 (where half the positions are)", cuts[1])
		}
	}
}
