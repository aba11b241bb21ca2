// Package tensor holds the engine's numeric kernels (matrix multiplication, and the SIMD helpers the
// layers use) and the one worker pool that all parallel work runs on.
package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Parallel splits [0, n) into at most Workers() contiguous ranges and runs fn on each, waiting for all.
// It is the only way the engine runs work in parallel: callers never nest it (fn must not call
// Parallel), so the number of busy threads never exceeds GOMAXPROCS.
//
// The ranges after the first run on the pool's resident workers, which spin for a short while after
// each call before they sleep: a training step makes hundreds of calls a few hundred microseconds
// apart, and waking a sleeping thread (on a virtual machine, a halted virtual CPU) took long enough
// to leave a core idle for several percent of the step. A call that finds the pool taken (Parallel
// from two goroutines at once, or nested) starts goroutines instead.
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
	chunk := (n + w - 1) / w
	if p := residentPool(w - 1); p != nil {
		p.run(n, chunk, fn)
		p.mu.Unlock() // not deferred: after a panic in fn a worker may still run its range
		return
	}
	var wg sync.WaitGroup
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

// ParallelRanges runs fn on [0, n) cut into ranges of per (the last shorter) that the workers take in
// turn, so that one slowed down (its core shared with another process, or a slower core) is helped by
// the others instead of waited for, as Parallel's one range each would be. fn must not call Parallel.
func ParallelRanges(n, per int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	per = max(1, per)
	ranges := (n + per - 1) / per
	var next atomic.Int64
	Parallel(min(Workers(), ranges), func(_, _ int) {
		for r := int(next.Add(1) - 1); r < ranges; r = int(next.Add(1) - 1) {
			fn(r*per, min((r+1)*per, n))
		}
	})
}

// Workers is the number of threads parallel kernels use (GOMAXPROCS).
func Workers() int { return runtime.GOMAXPROCS(0) }

// spinFor is how long an idle resident worker keeps looking for its next range before it sleeps.
const spinFor = 200 * time.Microsecond

// pool is the set of resident workers; mu is held by the one Parallel call using it.
type pool struct {
	mu      sync.Mutex
	workers []*residentWorker
}

// residentWorker runs the ranges posted to it: posted counts the ranges given, done those finished.
type residentWorker struct {
	posted, done atomic.Uint64
	asleep       atomic.Bool
	wake         chan struct{}
	fn           func(lo, hi int)
	lo, hi       int
}

var thePool pool

// residentPool returns the pool, locked, with at least k workers, or nil when another call holds it.
func residentPool(k int) *pool {
	p := &thePool
	if !p.mu.TryLock() {
		return nil
	}
	for len(p.workers) < k {
		rw := &residentWorker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, rw)
		go rw.loop()
	}
	return p
}

// run posts ranges 1.. to the workers, runs range 0 itself and waits for the others.
func (p *pool) run(n, chunk int, fn func(lo, hi int)) {
	used := p.workers[:0]
	for i, lo := 0, chunk; lo < n; i, lo = i+1, lo+chunk {
		rw := p.workers[i]
		rw.fn, rw.lo, rw.hi = fn, lo, min(lo+chunk, n)
		rw.posted.Add(1)
		if rw.asleep.Load() {
			select {
			case rw.wake <- struct{}{}:
			default:
			}
		}
		used = p.workers[:i+1]
	}
	fn(0, min(chunk, n))
	for _, rw := range used {
		for spins := 0; rw.done.Load() != rw.posted.Load(); spins++ {
			if spins > 64 {
				runtime.Gosched()
			}
		}
		rw.fn = nil // do not keep the caller's closure alive
	}
}

// loop waits for ranges and runs them, spinning for spinFor after each before it sleeps.
func (rw *residentWorker) loop() {
	var seen uint64
	for {
		idleSince := time.Now()
		for spins := 0; rw.posted.Load() == seen; spins++ {
			if spins&63 != 63 {
				continue
			}
			if time.Since(idleSince) < spinFor {
				runtime.Gosched()
				continue
			}
			rw.asleep.Store(true)
			if rw.posted.Load() == seen {
				<-rw.wake
			}
			rw.asleep.Store(false)
			idleSince = time.Now()
		}
		seen = rw.posted.Load()
		rw.fn(rw.lo, rw.hi)
		rw.done.Store(seen)
	}
}
