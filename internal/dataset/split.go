package dataset

import (
	"fmt"
	"hash/fnv"
	"math"
	"sort"
)

// SplitSeed is the seed the pipeline splits with, so that a job split twice (after a restart)
// gets the same validation set.
const SplitSeed = 20240501

// Split divides examples into a training and a validation set, putting round(n*validationFraction)
// examples (at least 1, and leaving at least 1 for training) into validation.
//
// Which examples go where depends only on each example's content (input and output) and the
// seed, not on the order the files were listed in: every example gets the key
// splitmix64(seed XOR FNV-1a-64(input "\x00" output)), the examples with the smallest keys are
// the validation set (ties, i.e. duplicate rows, broken by position). Both sets keep the original
// order of the examples.
func Split(examples []Example, validationFraction float64, seed uint64) (train, val []Example, err error) {
	n := len(examples)
	if !(validationFraction > 0 && validationFraction < 1) {
		return nil, nil, fmt.Errorf("validation fraction %v: it must be between 0 and 1", validationFraction)
	}
	if n < 2 {
		return nil, nil, fmt.Errorf("the dataset has %d valid %s; splitting it into training and validation sets needs at least 2 (SageMaker recommends 1,000 or more)",
			n, plural(n, "row", "rows"))
	}
	nVal := min(max(int(math.Round(float64(n)*validationFraction)), 1), n-1)

	keys := make([]uint64, n)
	order := make([]int, n)
	for i, ex := range examples {
		h := fnv.New64a()
		h.Write([]byte(ex.Input))
		h.Write([]byte{0})
		h.Write([]byte(ex.Output))
		keys[i] = splitmix64(seed ^ h.Sum64())
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return keys[order[a]] < keys[order[b]] })
	inVal := make([]bool, n)
	for _, i := range order[:nVal] {
		inVal[i] = true
	}
	for i, ex := range examples {
		if inVal[i] {
			val = append(val, ex)
		} else {
			train = append(train, ex)
		}
	}
	return train, val, nil
}

// splitmix64 is the finalizer of Steele, Lea and Flood's SplitMix64: a fixed, well-mixed bijection.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// CheckRowLimit fails when a dataset of rows rows (across all files of both channels) is over a
// base model's limit, as SageMaker fails such a job with a validation error.
func CheckRowLimit(rows, limit int, model string) error {
	if limit > 0 && rows > limit {
		return fmt.Errorf("the dataset has %s rows across the training and validation channels, but base model %s accepts at most %s: remove %s rows or choose a base model with a higher limit",
			thousands(rows), model, thousands(limit), thousands(rows-limit))
	}
	return nil
}

// thousands formats n with comma separators (12345 → "12,345").
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
