package tensor

// dotQ8_0Asm runs the Q8_0 row products in assembly where the CPU has it; false leaves them to the
// portable loop.
func dotQ8_0Asm(dots []float32, row []byte, a *qActs, r0, C int) bool { return false }
