//go:build amd64 && !purego

package tensor

import (
	"fmt"
	"math/rand/v2"
	"testing"
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
				const k = gemmKC
				pa, pb := randomSlice(rng, kn.mr*k), randomSlice(rng, panels*kn.nr*k)
				c := make([]float32, kn.mr*kn.nr*10)
				for b.Loop() {
					for j := range 10 {
						kn.run(k, &pa[0], &pb[(j%panels)*kn.nr*k], &c[j*kn.nr], 10*kn.nr, 1)
					}
				}
				b.ReportMetric(2*float64(kn.mr*kn.nr*k*10)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
