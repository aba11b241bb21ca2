//go:build !amd64 || purego

package tensor

func dot(a, b []float32) float32         { return dotGeneric(a, b) }
func axpy(alpha float32, x, y []float32) { axpyGeneric(alpha, x, y) }
func scale(alpha float32, x []float32)   { scaleGeneric(alpha, x) }
func add(dst, x []float32)               { addGeneric(dst, x) }

func dotRows(out, x, m []float32, stride int) { dotRowsGeneric(out, x, m, stride) }
func axpyRows(y, a, m []float32, stride int)  { axpyRowsGeneric(y, a, m, stride) }

func maxOf(x []float32) float32              { return maxGeneric(x) }
func expSub(x []float32, mx float32) float64 { return expSubGeneric(x, mx) }
