package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// ParallelRanges covers every index once, in ranges of the size asked (the last shorter), whatever
// the number of workers, and with a range size of 0 taken as 1.
func TestParallelRangesCoversEachIndexOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 3} {
		runtime.GOMAXPROCS(procs)
		for _, n := range []int{0, 1, 7, 64, 1001} {
			for _, per := range []int{0, 1, 3, 64, 5000} {
				hits := make([]atomic.Int32, n)
				var bad atomic.Int32
				ParallelRanges(n, per, func(lo, hi int) {
					if lo%max(1, per) != 0 || (hi-lo != max(1, per) && hi != n) {
						bad.Add(1)
					}
					for i := lo; i < hi; i++ {
						hits[i].Add(1)
					}
				})
				if bad.Load() != 0 {
					t.Fatalf("procs %d, n=%d, per %d: %d ranges not of the size asked", procs, n, per, bad.Load())
				}
				for i := range hits {
					if h := hits[i].Load(); h != 1 {
						t.Fatalf("procs %d, n=%d, per %d: index %d ran %d times", procs, n, per, i, h)
					}
				}
			}
		}
	}
}

// A call after the resident workers have gone to sleep (idle past spinFor) wakes them and gets every
// range run, many times over, with sleeps of either side of the spin window between calls.
func TestParallelWakesSleepingWorkers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	for i := range 40 {
		var sum atomic.Int64
		Parallel(4, func(lo, hi int) {
			for j := lo; j < hi; j++ {
				sum.Add(int64(j + 1))
			}
		})
		if got := sum.Load(); got != 10 {
			t.Fatalf("call %d: the ranges summed to %d, want 10", i, got)
		}
		if i%2 == 0 {
			time.Sleep(2 * spinFor)
		} else {
			time.Sleep(spinFor / 4)
		}
	}
}
