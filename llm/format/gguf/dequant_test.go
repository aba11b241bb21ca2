package gguf

import (
	"testing"
)

// Each block below is built by hand, and the expected values are worked out by hand from ggml's
// block layout (ggml-common.h) and reference dequantizer, written as literals.

func TestDequantizeQ8_0(t *testing.T) {
	b := []byte{0x00, 0x38} // d = 0.5 as f16
	for j := 0; j < 32; j++ {
		b = append(b, byte(int8(j*8-128)))
	}
	out := make([]float32, 32)
	if err := Dequantize(Q8_0, b, out); err != nil {
		t.Fatal(err)
	}
	want := map[int]float32{0: -64, 1: -60, 16: 0, 31: 60}
	checkValues(t, out, want)
}

func TestDequantizeQ4_0(t *testing.T) {
	b := []byte{0x00, 0xb8} // d = -0.5
	for j := 0; j < 16; j++ {
		b = append(b, byte(j|(15-j)<<4))
	}
	out := make([]float32, 32)
	if err := Dequantize(Q4_0, b, out); err != nil {
		t.Fatal(err)
	}
	// element j: low nibble j; element j+16: high nibble 15-j; x = d*(q-8)
	want := map[int]float32{0: 4, 8: 0, 15: -3.5, 16: -3.5, 23: 0, 31: 4}
	checkValues(t, out, want)
}

func TestDequantizeQ4_K(t *testing.T) {
	// d = 1, dmin = 0.5; sub-block scales [1 2 3 4 20 5 6 63], mins [0 1 2 3 0 4 5 33], packed
	// into 12 bytes by hand (6-bit values; sub-blocks 4-7 split into low nibbles in bytes 8-11
	// and top two bits in bytes 0-7).
	b := []byte{0x00, 0x3c, 0x00, 0x38,
		0x41, 0x02, 0x03, 0xc4, 0x00, 0x01, 0x02, 0x83, 0x04, 0x45, 0x56, 0x1f}
	for i := 0; i < 128; i++ {
		b = append(b, byte(i%16|(15-i%16)<<4))
	}
	out := make([]float32, 256)
	if err := Dequantize(Q4_K, b, out); err != nil {
		t.Fatal(err)
	}
	want := map[int]float32{
		0:   0,     // sub-block 0, q 0: 1*1*0 - 0.5*0
		5:   5,     // sub-block 0, q 5
		40:  13.5,  // sub-block 1 (high nibbles), q 15-8=7: 2*7 - 0.5*1
		130: 40,    // sub-block 4, q 2: 20*2 - 0
		170: 23,    // sub-block 5, q 15-10=5: 5*5 - 0.5*4
		200: 45.5,  // sub-block 6, q 8: 6*8 - 0.5*5
		224: 928.5, // sub-block 7, q 15: 63*15 - 0.5*33
		255: -16.5, // sub-block 7, q 0: 0 - 0.5*33
	}
	checkValues(t, out, want)
}

func TestDequantizeQ6_K(t *testing.T) {
	var b []byte
	for i := 0; i < 128; i++ { // ql: byte i holds i
		b = append(b, byte(i))
	}
	for i := 0; i < 64; i++ { // qh: 2-bit fields 0,1,2,3 from the low bits up
		b = append(b, 0xe4)
	}
	for i := 0; i < 16; i++ { // scales -8..7
		b = append(b, byte(int8(i-8)))
	}
	b = append(b, 0x00, 0x34) // d = 0.25
	out := make([]float32, 256)
	if err := Dequantize(Q6_K, b, out); err != nil {
		t.Fatal(err)
	}
	want := map[int]float32{
		0:   64,    // ql[0] low 0, qh 0: q-32 = -32, scale -8: 0.25*-8*-32
		5:   54,    // q 5 -> -27, scale -8
		17:  54.25, // ql[17]=0x11 low 1 -> -31, scale[1] = -7
		40:  12,    // ql[40]=0x28 low 8, qh field 1 -> 24-32 = -8, scale[2] = -6
		84:  -0.75, // ql[20]=0x14 high 1, qh field 2 -> 33-32 = 1, scale[5] = -3
		127: -4.75, // ql[63]=0x3f high 3, qh field 3 -> 51-32 = 19, scale[7] = -1
		161: -7.5,  // second half: ql[97]=0x61 low 1, field 1 -> 17-32 = -15, scale[10] = 2
		227: 33,    // ql[99]=0x63 high 6, field 3 -> 54-32 = 22, scale[14] = 6
	}
	checkValues(t, out, want)
}

func TestDequantizeRejectsWrongSizes(t *testing.T) {
	tests := []struct {
		name string
		typ  TensorType
		raw  int
		n    int
	}{
		{"Q8_0 short block", Q8_0, 33, 32},
		{"Q4_K not a whole block", Q4_K, 144, 100},
		{"Q6_K two values one block", Q6_K, 210, 512},
		{"unsupported type", Q5_K, 176, 256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Dequantize(tc.typ, make([]byte, tc.raw), make([]float32, tc.n)); err == nil {
				t.Errorf("Dequantize accepted %d bytes for %d %s values", tc.raw, tc.n, tc.typ)
			}
		})
	}
}

func checkValues(t *testing.T, got []float32, want map[int]float32) {
	t.Helper()
	for i, w := range want {
		if got[i] != w {
			t.Errorf("element %d = %g, want %g", i, got[i], w)
		}
	}
}
