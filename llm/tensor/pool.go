// Package tensor holds the engine's numeric kernels (matrix multiplication, and the SIMD helpers the
// layers use) and the one worker pool that all parallel work runs on.
package tensor

import (
	"runtime"
	"sync"
)

// Parallel splits [0, n) into at most Workers() contiguous ranges and runs fn on each, waiting for all.
// It is the only way the engine runs work in parallel: callers never nest it (fn must not call
// Parallel), so the number of busy threads never exceeds GOMAXPROCS.
func Parallel(n int, fn func(lo, hi int)) {
	w := Workers()
	if w > n {
		w = n
	}
	if w <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + w - 1) / w
	for lo := chunk; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, hi)
	}
	fn(0, min(chunk, n))
	wg.Wait()
}

// Workers is the number of threads parallel kernels use (GOMAXPROCS).
func Workers() int { return runtime.GOMAXPROCS(0) }
