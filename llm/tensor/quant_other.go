//go:build !amd64

package tensor

// No assembly on this architecture: the portable loops run.
func dotQ8_0Asm(dots []float32, row []byte, a *qActs, r0, C int) bool { return false }

func hasQuantAsm() bool { return false }

func dotQ4_0Asm(dots []float32, row []byte, a *qActs, r0, C int) bool { return false }

func q6kIsumAsm(b []byte, x []int8) (int32, bool) { return 0, false }

func dotQ4_KAsm(dots []float32, row []byte, a *qActs, r0, C int) bool { return false }

func quantRowsAsm(out []float32, a *qActs, w *QMatrix, R, lo, hi int) bool { return false }

func quantizeActsAsm(a *qActs, x []float32, blk int) bool { return false }

// quantAVX2 is false: no AVX2 kernels here.
const quantAVX2 = false

func widenQuantSIMD(dst []float32, src []byte, t QuantType, nb int) bool { return false }
