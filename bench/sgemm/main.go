// Command sgemm times tensor.MatMul on one shape and layout, the Lathe side of bench/sgemm.sh.
//
//	go run ./bench/sgemm M N K AB|ABt|AtB REPS
//
// It prints the layout, the shape and the best GFLOP/s over REPS products after one warm-up, in the
// same format as bench/openblas_sgemm.c, so the two are measured the same way, then the kernel and
// the share of the threads' time the timed products kept busy (process CPU time over wall time ×
// GOMAXPROCS: 100% is every core working the whole time).
package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/lathe-ml/lathe/llm/cpuinfo"
	"github.com/lathe-ml/lathe/llm/tensor"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sgemm:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	if len(args) != 5 {
		return fmt.Errorf("usage: sgemm M N K AB|ABt|AtB REPS")
	}
	var dims [3]int
	for i := range dims {
		v, err := strconv.Atoi(args[i])
		if err != nil || v <= 0 {
			return fmt.Errorf("dimension %q: want a positive integer", args[i])
		}
		dims[i] = v
	}
	reps, err := strconv.Atoi(args[4])
	if err != nil || reps <= 0 {
		return fmt.Errorf("reps %q: want a positive integer", args[4])
	}
	m, n, k := dims[0], dims[1], dims[2]
	var transA, transB bool
	switch args[3] {
	case "AB":
	case "ABt":
		transB = true
	case "AtB":
		transA = true
	default:
		return fmt.Errorf("layout %q: want AB, ABt or AtB", args[3])
	}

	rng := rand.New(rand.NewPCG(1, 1))
	a, b, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
	for i := range a {
		a[i] = rng.Float32() - 0.5
	}
	for i := range b {
		b[i] = rng.Float32() - 0.5
	}
	best := time.Duration(1 << 62)
	var wall, cpu time.Duration
	for r := 0; r <= reps; r++ {
		c0, t0 := cpuinfo.ProcessTime(), time.Now()
		tensor.MatMul(c, a, b, m, n, k, transA, transB, false)
		d := time.Since(t0)
		if r > 0 {
			best = min(best, d)
			wall += d
			cpu += cpuinfo.ProcessTime() - c0
		}
	}
	busy := cpu.Seconds() / wall.Seconds() / float64(runtime.GOMAXPROCS(0))
	fmt.Printf("%s %dx%dx%d %.1f %s %.0f%%\n", args[3], m, n, k, 2*float64(m)*float64(n)*float64(k)/best.Seconds()/1e9, tensor.KernelName(), 100*busy)
	return nil
}
