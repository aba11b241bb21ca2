// Package randquant hands out a model of random weights the way a quantized GGUF's reader does: its
// block matrices as random blocks of llama-quantize's Q4_K_M mix (gguf.Q4KM: Q4_K and Q6_K, with
// small finite scales), everything else in float32. Memory and speed measurements of a quantized base
// (bench/qlorarss, llm/model's export tests) load it without building a float32 model first.
package randquant

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/lathe-ml/lathe/llm/format/gguf"
	"github.com/lathe-ml/lathe/llm/format/half"
)

// Source is a checkpoint source (Tensor, RawTensor) of random weights. Shape gives each tensor's
// shape by name (a model config's TensorShape), Layers the block count (Q4_K_M's mix depends on it).
type Source struct {
	Shape  func(name string) ([]int, bool)
	Layers int
	Rng    *rand.Rand
}

// Tensor returns a float32 tensor: ones for norms, small normal values (σ 0.02) otherwise.
func (s *Source) Tensor(name string) ([]float32, []int, error) {
	shape, ok := s.Shape(name)
	if !ok {
		return nil, nil, fmt.Errorf("no tensor %s", name)
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	x := make([]float32, n)
	for i := range x {
		x[i] = 1
		if !strings.Contains(name, "norm") {
			x[i] = float32(s.Rng.NormFloat64() * 0.02)
		}
	}
	return x, shape, nil
}

// RawTensor returns a matrix as random blocks of the type Q4_K_M gives it, with every block's scales
// set to 0.0005 (finite, so the weights stay small), and the type's GGUF name.
func (s *Source) RawTensor(name string) ([]byte, string, []int, error) {
	shape, ok := s.Shape(name)
	if !ok || len(shape) != 2 {
		return nil, "", nil, fmt.Errorf("no matrix %s", name)
	}
	typ := gguf.Q4KM(name, shape[1], s.Layers)
	bb := typ.BlockBytes()
	raw := make([]byte, shape[0]*shape[1]/typ.BlockSize()*bb)
	for i := 0; i < len(raw); i += 8 {
		binary.LittleEndian.PutUint64(raw[i:], s.Rng.Uint64())
	}
	d := half.F32ToF16(0.0005)
	for b := 0; b < len(raw); b += bb {
		switch typ {
		case gguf.Q4_K: // d and dmin
			binary.LittleEndian.PutUint16(raw[b:], d)
			binary.LittleEndian.PutUint16(raw[b+2:], d)
		case gguf.Q6_K:
			binary.LittleEndian.PutUint16(raw[b+208:], d)
		case gguf.Q8_0:
			binary.LittleEndian.PutUint16(raw[b:], d)
		}
	}
	return raw, typ.String(), shape, nil
}
