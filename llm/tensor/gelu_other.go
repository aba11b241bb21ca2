//go:build !amd64 || purego

package tensor

func geluSIMD(out, inp []float32, tanhApprox bool) int { return 0 }

func geluBackwardSIMD(dinp, dout, inp []float32, tanhApprox bool) int { return 0 }
