// Command peak measures the machine's arithmetic peak, the figure MFU is quoted against: loops of
// independent FMAs (fp32, 512-bit where the CPU has AVX-512, else 256-bit) and of VDPBF16PS (bf16
// products with fp32 accumulation, where the CPU has AVX512_BF16), registers only, on 1 and on
// THREADS threads at once, each the best of 5 runs of ~0.2 s. It prints one JSON line per
// measurement:
//
//	go run ./bench/peak [-threads 2]
//
// A register-only loop is the most a core can do; a GEMM reaches 85-95% of it. The figure moves
// with the clock (turbo, other load on the host), so the bench scripts measure it in the same run
// as the numbers they divide by it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/cpu"
)

func fmaZMM(iters int)
func fmaYMM(iters int)
func dpbf16ZMM(iters int)

type loop struct {
	name          string
	fn            func(int)
	flopsPerIter  float64
	supported     bool
	instructionOf string
}

func main() {
	threads := flag.Int("threads", runtime.NumCPU(), "threads for the all-cores figure")
	flag.Parse()
	if runtime.GOARCH != "amd64" {
		fmt.Fprintln(os.Stderr, "peak: only amd64 has loops here")
		os.Exit(2)
	}
	loops := []loop{
		{"fp32", fmaZMM, 16 * 16 * 2, cpu.X86.HasAVX512F, "VFMADD231PS zmm"},
		{"fp32", fmaYMM, 12 * 8 * 2, !cpu.X86.HasAVX512F && cpu.X86.HasAVX2 && cpu.X86.HasFMA, "VFMADD231PS ymm"},
		{"bf16", dpbf16ZMM, 16 * 32 * 2, cpu.X86.HasAVX512BF16, "VDPBF16PS zmm"},
	}
	enc := json.NewEncoder(os.Stdout)
	for _, l := range loops {
		if !l.supported {
			continue
		}
		for _, t := range []int{1, *threads} {
			gflops := measure(l, t)
			if err := enc.Encode(map[string]any{"bench": "peak", "precision": l.name, "instruction": l.instructionOf,
				"threads": t, "gflops": round1(gflops)}); err != nil {
				fmt.Fprintln(os.Stderr, "peak:", err)
				os.Exit(1)
			}
			if *threads == 1 {
				break
			}
		}
	}
}

// measure runs the loop on t threads at once (each locked to its own OS thread) and returns the best
// of 5 runs' total GFLOP/s.
func measure(l loop, t int) float64 {
	runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), t))
	iters := 1 << 16
	for { // calibrate: ~0.2 s per run on one thread
		t0 := time.Now()
		l.fn(iters)
		if time.Since(t0) > 20*time.Millisecond {
			iters *= 10
			break
		}
		iters *= 2
	}
	best := 0.0
	for range 5 {
		var wg sync.WaitGroup
		t0 := time.Now()
		for range t {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				l.fn(iters)
			}()
		}
		wg.Wait()
		best = max(best, float64(t)*float64(iters)*l.flopsPerIter/time.Since(t0).Seconds()/1e9)
	}
	return best
}

func round1(v float64) float64 { return float64(int(v*10+0.5)) / 10 }
