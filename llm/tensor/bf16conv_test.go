package tensor

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// WidenBF16 and RoundBF16 agree with half's scalar conversions bit for bit, at every tail length and
// on the values where rounding is delicate: ties (even and odd), the carry into the exponent,
// infinities, NaNs, subnormals, signed zeros and the largest finite floats.
func TestBF16Conversions(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	special := []uint32{0x3f808000, 0x3f818000, 0x3f80ffff, 0x3f7fffff, 0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000,
		0x7fc00000, 0x7f800001, 0xffa00000, 0x00000001, 0x80000001, 0x007fffff, 0, 0x80000000, 0x3f7f8000}
	for _, n := range append(vecLengths, 4097) {
		src := make([]float32, n)
		for i := range src {
			if i < len(special) && n > 16 {
				src[i] = math.Float32frombits(special[i])
				continue
			}
			src[i] = math.Float32frombits(rng.Uint32())
		}
		got := make([]uint16, n)
		RoundBF16(got, src)
		for i, v := range src {
			if want := half.F32ToBF16(v); got[i] != want {
				t.Fatalf("length %d: RoundBF16(%#08x) = %#04x, want %#04x", n, math.Float32bits(v), got[i], want)
			}
		}
		wide := make([]float32, n)
		WidenBF16(wide, got)
		for i, h := range got {
			if want := half.BF16ToF32(h); math.Float32bits(wide[i]) != math.Float32bits(want) {
				t.Fatalf("length %d: WidenBF16(%#04x) = %#08x, want %#08x", n, h, math.Float32bits(wide[i]), math.Float32bits(want))
			}
		}
	}
}
