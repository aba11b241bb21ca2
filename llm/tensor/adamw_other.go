//go:build !amd64 || purego

package tensor

func adamwSIMD(theta, grad, m, v []float32, c *AdamWCoeffs) int { return 0 }

func sumSquaresSIMD(x []float32) partialSum { return partialSum{} }
