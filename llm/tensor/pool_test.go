package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// Every index of every call is covered exactly once, with calls coming from several goroutines at
// once, a call nested inside another (which the engine never does, but which must not hang), and
// GOMAXPROCS changing between calls.
func TestParallelCoversEachIndexOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	check := func(t *testing.T, n int, nested bool) {
		t.Helper()
		hits := make([]atomic.Int32, n)
		Parallel(n, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				hits[i].Add(1)
			}
			if nested {
				Parallel(7, func(int, int) {})
			}
		})
		for i := range hits {
			if h := hits[i].Load(); h != 1 {
				t.Fatalf("n=%d: index %d ran %d times", n, i, h)
			}
		}
	}
	for _, procs := range []int{1, 2, 3, 8} {
		runtime.GOMAXPROCS(procs)
		for _, n := range []int{0, 1, 2, 3, 5, 64, 1000} {
			check(t, n, false)
			check(t, n, true)
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range 50 {
					check(t, n, n%5 == 0)
				}
			}()
		}
		wg.Wait()
	}
}
