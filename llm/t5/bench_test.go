package t5

import "testing"

// BenchmarkForwardBackwardFlanT5Small is one training step of google/flan-t5-small's architecture
// (random weights) on 4 examples of 128 input and 32 target tokens.
func BenchmarkForwardBackwardFlanT5Small(b *testing.B) {
	cfg, err := ParseConfig([]byte(flanT5SmallConfig))
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewRandom(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	var exs []Example
	for i := range 4 {
		ex := Example{Input: make([]int32, 128), Target: make([]int32, 32)}
		for j := range ex.Input {
			ex.Input[j] = int32(100 + (i*131+j*17)%30000)
		}
		for j := range ex.Target {
			ex.Target[j] = int32(100 + (i*7+j*29)%30000)
		}
		exs = append(exs, ex)
	}
	batch := PackBatch(cfg, exs, 128, 32)
	m.Params()
	b.ResetTimer()
	for range b.N {
		m.ZeroGrads()
		if _, err := m.ForwardBackward(batch, 1/batch.Count()); err != nil {
			b.Fatal(err)
		}
	}
}
