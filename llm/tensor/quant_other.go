//go:build !amd64

package tensor

// dotQ8_0Asm has no assembly on this architecture: the portable loop runs.
func dotQ8_0Asm(dots []float32, row []byte, a *qActs, r0, C int) bool { return false }
