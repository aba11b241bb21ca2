package train

import (
	"fmt"
	"math/rand/v2"
)

// Sampler deals the indices of a data set in a shuffled order, a new order each epoch. Its state is
// the three numbers it is built from plus (Epoch, Cursor), so a checkpoint restores it exactly.
type Sampler struct {
	N      int    // examples in the data set
	Seed   uint64 // the run's data seed
	Epoch  int    // epochs completed
	Cursor int    // examples dealt from the current epoch
	order  []int
	orderE int
}

// NewSampler returns a sampler at the start of epoch 0.
func NewSampler(n int, seed uint64) (*Sampler, error) {
	if n <= 0 {
		return nil, fmt.Errorf("sampler: data set of %d examples", n)
	}
	return &Sampler{N: n, Seed: seed, orderE: -1}, nil
}

// Order returns the permutation of epoch e: Fisher-Yates driven by PCG(seed, e), written out here so
// that it does not depend on the standard library's choice of shuffling algorithm.
func (s *Sampler) Order(e int) []int {
	if s.orderE == e && len(s.order) == s.N {
		return s.order
	}
	if len(s.order) != s.N {
		s.order = make([]int, s.N)
	}
	for i := range s.order {
		s.order[i] = i
	}
	rng := rand.NewPCG(s.Seed, uint64(e))
	for i := s.N - 1; i > 0; i-- {
		j := int(rng.Uint64() % uint64(i+1))
		s.order[i], s.order[j] = s.order[j], s.order[i]
	}
	s.orderE = e
	return s.order
}

// Next returns up to k indices: the rest of the current epoch if fewer remain (so every epoch sees
// every example exactly once), moving to the next epoch when this one is used up.
func (s *Sampler) Next(k int) []int {
	if s.Cursor >= s.N {
		s.Epoch++
		s.Cursor = 0
	}
	order := s.Order(s.Epoch)
	end := min(s.N, s.Cursor+k)
	out := append([]int(nil), order[s.Cursor:end]...)
	s.Cursor = end
	return out
}
