package tensor

import "math"

// Softmax replaces x with softmax(x): exp(x[i] − max) / Σⱼ exp(x[j] − max), and returns log Σⱼ exp(x[j]),
// the log-partition a cross-entropy loss needs (loss = logSumExp − x[target], read before the call).
// Entries of −Inf get probability 0. It panics on an empty slice, which has no softmax.
func Softmax(x []float32) (logSumExp float32) {
	mx, sum := softmax(x)
	return mx + float32(math.Log(sum))
}

// SoftmaxProbs is Softmax without the log-partition (attention wants only the probabilities; the
// logarithm was ~5% of its softmax time). The probabilities are Softmax's, bit for bit.
func SoftmaxProbs(x []float32) {
	softmax(x)
}

// softmax turns x into probabilities and returns its maximum and Σ exp(x − max).
func softmax(x []float32) (mx float32, sum float64) {
	if len(x) == 0 {
		panic("tensor.Softmax: empty slice")
	}
	mx = maxOf(x)
	sum = expSub(x, mx)
	Scale(float32(1/sum), x)
	return mx, sum
}

// The portable versions; the SIMD ones are tested against these.

func maxGeneric(x []float32) float32 {
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	return m
}

// expSubGeneric sets x[i] = exp(x[i] − mx) and returns the sum, in float64.
func expSubGeneric(x []float32, mx float32) float64 {
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - mx)))
		x[i] = e
		sum += float64(e)
	}
	return sum
}
