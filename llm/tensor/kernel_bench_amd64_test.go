//go:build amd64 && !purego

package tensor

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/lathe-ml/lathe/llm/cpuinfo"
)

// BenchmarkKernel measures one micro-kernel on one core with its panels in cache, the ceiling that
// packing and threading then lose from: an 8×kc A panel (kc = gemmKC) against one B panel used over
// and over, or against ten in turn (960 KiB for the 8×48 kernel, as a B block streams from L2).
func BenchmarkKernel(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, kc := range []struct {
		kernel    *gemmKernel
		supported bool
	}{{kernelAVX512, hasAVX512}, {kernelAVX2, hasAVX2}} {
		kn := kc.kernel
		for _, panels := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/%dB", kn.name, panels), func(b *testing.B) {
				if !kc.supported {
					b.Skipf("this CPU has no %s", kn.name)
				}
				k := gemmKC
				pa, pb := randomSlice(rng, kn.mr*k), randomSlice(rng, panels*kn.nr*k)
				c := make([]float32, kn.mr*kn.nr*10)
				for b.Loop() {
					for j := range 10 {
						kn.run(k, &pa[0], &pb[(j%panels)*kn.nr*k], &c[j*kn.nr], 10*kn.nr, 1, &pa[0])
					}
				}
				b.ReportMetric(2*float64(kn.mr*kn.nr*k*10)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkThreading compares the two ways a threaded product shares the workers (gemmSplitThreads:
// one block of C per worker, or shared packed blocks with a barrier per phase) on the README's shapes
// and on a step's deepest product (the output head's input gradient, k = the vocabulary), reporting
// GFLOP/s and how busy the workers' cores were (process CPU time over wall time × workers).
func BenchmarkThreading(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	defer func(v bool) { gemmSplitThreads = v }(gemmSplitThreads)
	for _, s := range [][3]int{{768, 3072, 768}, {2048, 2048, 2048}, {512, 32000, 512}, {512, 512, 32000}} {
		m, n, k := s[0], s[1], s[2]
		a, bb, c := randomSlice(rng, m*k), randomSlice(rng, k*n), make([]float32, m*n)
		for _, l := range []struct {
			name           string
			transA, transB bool
		}{{"AB", false, false}, {"ABt", false, true}, {"AtB", true, false}} {
			for _, split := range []bool{false, true} {
				mode := map[bool]string{false: "shared", true: "split"}[split]
				b.Run(fmt.Sprintf("%dx%dx%d/%s/%s", m, n, k, l.name, mode), func(b *testing.B) {
					gemmSplitThreads = split
					cpu0 := cpuinfo.ProcessTime()
					for b.Loop() {
						MatMul(c, a, bb, m, n, k, l.transA, l.transB, false)
					}
					busy := (cpuinfo.ProcessTime() - cpu0).Seconds() / b.Elapsed().Seconds() / float64(Workers())
					b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					b.ReportMetric(100*busy, "%busy")
				})
			}
		}
	}
}

// BenchmarkBlocking sweeps the GEMM blocking (kc, nc) on the shapes where it matters most, with the
// detected caches' choice first: it is how blockL2 was chosen, and how to check it on a new CPU.
func BenchmarkBlocking(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	defer func(kc, nc int) { gemmKC, gemmNC = kc, nc }(gemmKC, gemmNC)
	kc0, nc0 := gemmBlocking(cpuinfo.Detect())
	b.Logf("caches: %s; blocking kc %d nc %d", cpuinfo.Detect(), kc0, nc0)
	blockings := [][2]int{{kc0, nc0}, {256, 480}, {256, 960}, {384, 480}, {384, 960}, {512, 240}, {512, 480}, {512, 960}, {512, 1920}, {768, 480}}
	for _, s := range [][3]int{{2048, 2048, 2048}, {768, 3072, 768}} {
		m, n, k := s[0], s[1], s[2]
		a, bb, c := randomSlice(rng, m*k), randomSlice(rng, k*n), make([]float32, m*n)
		for _, l := range []struct {
			name           string
			transA, transB bool
		}{{"AB", false, false}, {"ABt", false, true}, {"AtB", true, false}} {
			for _, bl := range blockings {
				b.Run(fmt.Sprintf("%dx%dx%d/%s/kc%d-nc%d", m, n, k, l.name, bl[0], bl[1]), func(b *testing.B) {
					gemmKC, gemmNC = bl[0], bl[1]
					for b.Loop() {
						MatMul(c, a, bb, m, n, k, l.transA, l.transB, false)
					}
					b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkNarrowAVX2 measures the AVX2 narrow products' block kernels on one core with their operands
// in L1 (four weight rows and three activation rows of k = 512) and the narrow product of 8 activation
// rows by a weight in L2 (n = 64, k = 1024), in GFLOP/s: the ceiling of batched decoding.
func BenchmarkNarrowAVX2(b *testing.B) {
	if !hasAVX2 {
		b.Skip("this CPU has no AVX2")
	}
	rng := rand.New(rand.NewPCG(9, 10))
	const k = 512
	a, w := randomSlice(rng, 3*k), randomSlice(rng, 4*k)
	wh := make([]uint16, len(w))
	out := make([]float32, 12)
	for r := 1; r <= 3; r++ {
		b.Run(fmt.Sprintf("f32/4x%d", r), func(b *testing.B) {
			for b.Loop() {
				f32AVX2.dot4x[r-1](&a[0], k, &w[0], k, k, &out[0], 4)
			}
			b.ReportMetric(2*float64(4*r*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("bf16/4x%d", r), func(b *testing.B) {
			for b.Loop() {
				bf16AVX2.dot4x[r-1](&a[0], k, &wh[0], k, k, &out[0], 4)
			}
			b.ReportMetric(2*float64(4*r*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
	const m, n, kk = 8, 64, 1024
	a, w = randomSlice(rng, m*kk), randomSlice(rng, n*kk)
	wh = make([]uint16, len(w))
	c := make([]float32, m*n)
	b.Run("f32/8x64x1024", func(b *testing.B) {
		for b.Loop() {
			narrowAVX2(f32AVX2, c, a, w, m, n, kk, 0, n)
		}
		b.ReportMetric(2*float64(m*n*kk)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("bf16/8x64x1024", func(b *testing.B) {
		for b.Loop() {
			narrowAVX2(bf16AVX2, c, a, wh, m, n, kk, 0, n)
		}
		b.ReportMetric(2*float64(m*n*kk)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
