//go:build amd64 && !purego

package tensor

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkKernel measures one micro-kernel on one core with its panels in cache: the ceiling that
// packing and threading then lose from.
var benchPanels = 10

func BenchmarkKernel(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, kn := range []*gemmKernel{kernelAVX512, kernelAVX2} {
		b.Run(kn.name, func(b *testing.B) {
			if (kn == kernelAVX512 && !hasAVX512) || !hasAVX2 {
				b.Skip("not supported")
			}
			const k = gemmKC
			pa, pb := randomSlice(rng, kn.mr*k), randomSlice(rng, 10*kn.nr*k)
			c := make([]float32, kn.mr*kn.nr*10)
			for b.Loop() {
				for j := 0; j < 10; j++ {
					kn.run(k, &pa[0], &pb[(j%benchPanels)*kn.nr*k], &c[j*kn.nr], 10*kn.nr, 1)
				}
			}
			b.ReportMetric(2*float64(kn.mr*kn.nr*k*10)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func BenchmarkKernelL1(b *testing.B) {
	benchPanels = 1
	defer func() { benchPanels = 10 }()
	BenchmarkKernel(b)
}
