package half

import (
	"math"
	"testing"
)

// Golden bit patterns from the IEEE 754 binary16 tables (and numpy.float16 / torch.bfloat16).
func TestF32ToF16Golden(t *testing.T) {
	tests := []struct {
		name string
		in   float32
		want uint16
	}{
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"one tenth rounds to nearest", 0.1, 0x2e66},
		{"largest finite", 65504, 0x7bff},
		{"halfway to 65536 rounds to even (infinity)", 65520, 0x7c00},
		{"just below halfway stays finite", 65519, 0x7bff},
		{"overflow", 1e6, 0x7c00},
		{"smallest subnormal", float32(math.Ldexp(1, -24)), 0x0001},
		{"half the smallest subnormal ties to zero", float32(math.Ldexp(1, -25)), 0x0000},
		{"three quarters of smallest subnormal rounds up", float32(math.Ldexp(3, -26)), 0x0001},
		{"largest subnormal", float32(math.Ldexp(1023, -24)), 0x03ff},
		{"smallest normal", float32(math.Ldexp(1, -14)), 0x0400},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"infinity", float32(math.Inf(-1)), 0xfc00},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := F32ToF16(tc.in); got != tc.want {
				t.Errorf("F32ToF16(%g) = %#04x, want %#04x", tc.in, got, tc.want)
			}
		})
	}
	if h := F32ToF16(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("NaN became %#04x, not a NaN", h)
	}
}

// Every finite F16 value survives the round trip through float32 unchanged.
func TestF16RoundTripAllValues(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			continue // NaN payloads are not required to survive
		}
		if got := F32ToF16(F16ToF32(h)); got != h {
			t.Fatalf("%#04x -> %g -> %#04x", h, F16ToF32(h), got)
		}
	}
	if got := F16ToF32(0x0001); got != float32(math.Ldexp(1, -24)) {
		t.Errorf("smallest subnormal widened to %g", got)
	}
	if got := F16ToF32(0x7bff); got != 65504 {
		t.Errorf("largest finite widened to %g", got)
	}
}

func TestBF16(t *testing.T) {
	tests := []struct {
		name string
		in   float32
		want uint16
	}{
		{"one", 1, 0x3f80},
		{"pi truncates", float32(math.Pi), 0x4049},
		{"minus 1.5", -1.5, 0xbfc0},
		{"tie rounds to even (down)", math.Float32frombits(0x3f808000), 0x3f80},
		{"tie rounds to even (up)", math.Float32frombits(0x3f818000), 0x3f82},
		{"above tie rounds up", math.Float32frombits(0x3f808001), 0x3f81},
		{"max float32 overflows to infinity", math.MaxFloat32, 0x7f80},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := F32ToBF16(tc.in); got != tc.want {
				t.Errorf("F32ToBF16(%g) = %#04x, want %#04x", tc.in, got, tc.want)
			}
		})
	}
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		if h&0x7f80 == 0x7f80 && h&0x7f != 0 {
			continue
		}
		if got := F32ToBF16(BF16ToF32(h)); got != h {
			t.Fatalf("%#04x -> %g -> %#04x", h, BF16ToF32(h), got)
		}
	}
	if h := F32ToBF16(float32(math.NaN())); !math.IsNaN(float64(BF16ToF32(h))) {
		t.Errorf("NaN became %#04x", h)
	}
}
