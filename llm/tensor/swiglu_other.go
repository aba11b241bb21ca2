//go:build !amd64 || purego

package tensor

func swigluSIMD(out, gate, up []float32) int { return 0 }

func swigluBackwardSIMD(dgate, dup, dout, gate, up []float32) int { return 0 }
