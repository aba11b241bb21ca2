package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// Dequantize decodes raw tensor bytes of type t into out (len(out) values). The block layouts are
// ggml's (ggml-common.h); every value is a block scale times a small integer, computed in float32
// exactly as ggml's reference dequantize_row_* functions do.
func Dequantize(t TensorType, raw []byte, out []float32) error {
	need, err := t.RowBytes(uint64(len(out)))
	if err != nil {
		return err
	}
	if uint64(len(raw)) != need {
		return fmt.Errorf("%d values of %s need %d bytes, got %d", len(out), t, need, len(raw))
	}
	switch t {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = half.F16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = half.BF16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case Q8_0:
		forBlocks(raw, out, 34, 32, dequantQ8_0)
	case Q4_0:
		forBlocks(raw, out, 18, 32, dequantQ4_0)
	case Q4_K:
		forBlocks(raw, out, 144, 256, dequantQ4_K)
	case Q6_K:
		forBlocks(raw, out, 210, 256, dequantQ6_K)
	default:
		return fmt.Errorf("cannot decode tensor type %s", t)
	}
	return nil
}

func forBlocks(raw []byte, out []float32, blockBytes, blockLen int, fn func(b []byte, y []float32)) {
	for i := 0; i*blockLen < len(out); i++ {
		fn(raw[i*blockBytes:(i+1)*blockBytes], out[i*blockLen:(i+1)*blockLen])
	}
}

func f16(b []byte) float32 { return half.F16ToF32(binary.LittleEndian.Uint16(b)) }

// Q8_0: f16 scale d, then 32 int8 quants; x = d*q.
func dequantQ8_0(b []byte, y []float32) {
	d := f16(b)
	for j := 0; j < 32; j++ {
		y[j] = float32(int8(b[2+j])) * d
	}
}

// Q4_0: f16 scale d, then 16 bytes; byte j holds element j in its low nibble and element j+16 in
// its high nibble; x = d*(nibble-8).
func dequantQ4_0(b []byte, y []float32) {
	d := f16(b)
	qs := b[2:18]
	for j := 0; j < 16; j++ {
		y[j] = float32(int(qs[j]&0xf)-8) * d
		y[j+16] = float32(int(qs[j]>>4)-8) * d
	}
}

// scaleMinK4 unpacks the j-th (of 8) 6-bit scale and min from Q4_K's 12 packed bytes: the first
// four of each are in the low 6 bits of bytes 0-3 / 4-7; the last four take their low 4 bits from
// bytes 8-11 and their top 2 bits from the spare top bits of bytes 0-7.
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// Q4_K: a 256-element super-block of 8 sub-blocks of 32: f16 d, f16 dmin, 12 bytes of packed 6-bit
// scales and mins, 128 bytes of nibbles. Each 32-byte chunk of nibbles holds two sub-blocks (low
// nibbles first, then high); x = d*sc*q - dmin*m.
func dequantQ4_K(b []byte, y []float32) {
	d := f16(b[0:])
	dmin := f16(b[2:])
	scales := b[4:16]
	q := b[16:144]
	for j := 0; j < 4; j++ {
		sc1, m1 := scaleMinK4(2*j, scales)
		sc2, m2 := scaleMinK4(2*j+1, scales)
		d1, min1 := d*float32(sc1), dmin*float32(m1)
		d2, min2 := d*float32(sc2), dmin*float32(m2)
		chunk := q[32*j : 32*j+32]
		out := y[64*j : 64*j+64]
		for l := 0; l < 32; l++ {
			out[l] = d1*float32(chunk[l]&0xf) - min1
			out[l+32] = d2*float32(chunk[l]>>4) - min2
		}
	}
}

// Q6_K: 128 bytes of low nibbles (ql), 64 bytes of high 2-bit pairs (qh), 16 int8 scales (one per
// 16 elements), f16 d. Each half (128 elements) uses 64 ql bytes, 32 qh bytes and 8 scales;
// x = d*scale*(q-32) with q the 6-bit value.
func dequantQ6_K(b []byte, y []float32) {
	d := f16(b[208:])
	for n := 0; n < 2; n++ {
		ql := b[64*n : 64*n+64]
		qh := b[128+32*n : 128+32*n+32]
		sc := b[192+8*n : 192+8*n+8]
		out := y[128*n : 128*n+128]
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int(ql[l]&0xf|(qh[l]>>0&3)<<4) - 32
			q2 := int(ql[l+32]&0xf|(qh[l]>>2&3)<<4) - 32
			q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
			q4 := int(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
			out[l] = d * float32(int8(sc[is])) * float32(q1)
			out[l+32] = d * float32(int8(sc[is+2])) * float32(q2)
			out[l+64] = d * float32(int8(sc[is+4])) * float32(q3)
			out[l+96] = d * float32(int8(sc[is+6])) * float32(q4)
		}
	}
}
