package tensor

//go:noescape
func widenQ8_0AVX2(dst *float32, src *byte, nb int)

//go:noescape
func widenQ4_KAVX2(dst *float32, src *byte, nb int)

//go:noescape
func widenQ6_KAVX2(dst *float32, src *byte, nb int)

func widenQuantSIMD(dst []float32, src []byte, t QuantType, nb int) bool {
	if !quantAVX2 {
		return false
	}
	switch t {
	case QuantQ8_0:
		widenQ8_0AVX2(&dst[0], &src[0], nb)
	case QuantQ4_K:
		widenQ4_KAVX2(&dst[0], &src[0], nb)
	case QuantQ6_K:
		widenQ6_KAVX2(&dst[0], &src[0], nb)
	default:
		return false
	}
	return true
}
