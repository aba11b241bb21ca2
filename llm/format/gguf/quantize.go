package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// Quantize encodes x as type t into a new byte slice, with ggml's reference quantizers
// (quantize_row_*_ref in ggml-quants.c, which llama-quantize runs when it has no importance matrix):
// the bytes match what ggml writes for the same floats (see TestQuantizeMatchesGGML). len(x) must be a
// whole number of t's blocks. F32, F16 and BF16 are accepted too.
func Quantize(t TensorType, x []float32) ([]byte, error) {
	n, err := t.RowBytes(uint64(len(x)))
	if err != nil {
		return nil, err
	}
	out := make([]byte, n)
	switch t {
	case F32:
		for i, v := range x {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range x {
			binary.LittleEndian.PutUint16(out[2*i:], half.F32ToF16(v))
		}
	case BF16:
		for i, v := range x {
			binary.LittleEndian.PutUint16(out[2*i:], half.F32ToBF16(v))
		}
	case Q8_0:
		quantBlocks(x, out, 32, 34, quantQ8_0)
	case Q4_0:
		quantBlocks(x, out, 32, 18, quantQ4_0)
	case Q4_K:
		quantBlocks(x, out, 256, 144, quantQ4_K)
	case Q6_K:
		quantBlocks(x, out, 256, 210, quantQ6_K)
	default:
		return nil, fmt.Errorf("cannot encode tensor type %s (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)", t)
	}
	return out, nil
}

// Quantizable reports whether Quantize can encode type t.
func (t TensorType) Quantizable() bool { return t.Decodable() }

func quantBlocks(x []float32, out []byte, blockLen, blockBytes int, fn func(x []float32, b []byte)) {
	for i := 0; i*blockLen < len(x); i++ {
		fn(x[i*blockLen:(i+1)*blockLen], out[i*blockBytes:(i+1)*blockBytes])
	}
}

func putF16(b []byte, v float32) { binary.LittleEndian.PutUint16(b, half.F32ToF16(v)) }

// nearestInt rounds to nearest, ties to even: ggml's nearest_int (the 1.5·2²³ trick) for the
// magnitudes it is used on.
func nearestInt(v float32) int { return int(math.RoundToEven(float64(v))) }

// quantize_row_q8_0_ref: d = amax/127, q = round(x/d) (roundf: ties away from zero).
func quantQ8_0(x []float32, b []byte) {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putF16(b, d)
	for j, v := range x {
		b[2+j] = byte(int8(math.Round(float64(v * id))))
	}
}

// quantize_row_q4_0_ref: d = max/−8 where max is the value of largest magnitude (with its sign),
// q = min(15, trunc(x/d + 8.5)).
func quantQ4_0(x []float32, b []byte) {
	var amax, mx float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); amax < a {
			amax, mx = a, v
		}
	}
	d := mx / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putF16(b, d)
	for j := range 16 {
		x0, x1 := x[j]*id, x[16+j]*id
		q0, q1 := min(15, int8(x0+8.5)), min(15, int8(x1+8.5))
		b[2+j] = byte(q0) | byte(q1)<<4
	}
}

// quantize_row_q4_K_ref: each 32-element sub-block gets a scale and a min fitted by make_qkx2_quants
// (weighted by rms + |x|); the eight scales and mins are then quantized to 6 bits against the
// super-block's d and dmin, and the 4-bit values recomputed with the rounded scales.
func quantQ4_K(x []float32, b []byte) {
	var L [256]uint8
	var laux [32]uint8
	var weights [32]float32
	var mins, scales [8]float32
	var maxScale, maxMin float32
	for j := range 8 {
		xs := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += v * v
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for l, v := range xs {
			weights[l] = avX + float32(math.Abs(float64(v)))
		}
		scales[j] = makeQKX2Quants(15, xs, weights[:], L[32*j:32*j+32], &mins[j], laux[:], -1, 0.1, 20)
		maxScale = max(maxScale, scales[j])
		maxMin = max(maxMin, mins[j])
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	sc := b[4:16]
	clear(sc)
	for j := range 8 {
		ls := uint8(min(63, nearestInt(invScale*scales[j])))
		lm := uint8(min(63, nearestInt(invMin*mins[j])))
		if j < 4 {
			sc[j], sc[j+4] = ls, lm
		} else {
			sc[j+4] = ls&0xf | (lm&0xf)<<4
			sc[j-4] |= (ls >> 4) << 6
			sc[j] |= (lm >> 4) << 6
		}
	}
	putF16(b[0:], maxScale/63)
	putF16(b[2:], maxMin/63)
	d, dmin := f16(b[0:]), f16(b[2:])
	for j := range 8 {
		s, m := scaleMinK4(j, sc)
		dj := d * float32(s)
		if dj == 0 {
			continue
		}
		dm := dmin * float32(m)
		for ii := range 32 {
			L[32*j+ii] = uint8(max(0, min(15, nearestInt((x[32*j+ii]+dm)/dj))))
		}
	}
	q := b[16:144]
	for j := 0; j < 256; j += 64 {
		for l := range 32 {
			q[l] = L[j+l] | L[j+l+32]<<4
		}
		q = q[32:]
	}
}

// makeQKX2Quants is ggml's make_qkx2_quants (use_mad false): fit x ≈ scale·L + min with L in
// [0, nmax], min ≤ 0, minimising the weighted squared error over nstep+1 trial scales. It returns the
// scale and stores −min in theMin.
func makeQKX2Quants(nmax int, x, weights []float32, L []uint8, theMin *float32, laux []uint8, rmin, rdelta float32, nstep int) float32 {
	n := len(x)
	mn, mx := x[0], x[0]
	sumW := weights[0]
	sumX := sumW * x[0]
	for i := 1; i < n; i++ {
		mn = min(mn, x[i])
		mx = max(mx, x[i])
		w := weights[i]
		sumW += w
		sumX += w * x[i]
	}
	if mn > 0 {
		mn = 0
	}
	if mx == mn {
		clear(L[:n])
		*theMin = -mn
		return 0
	}
	iscale := float32(nmax) / (mx - mn)
	scale := 1 / iscale
	var bestError float32
	for i := range n {
		l := nearestInt(iscale * (x[i] - mn))
		L[i] = uint8(max(0, min(nmax, l)))
		diff := scale*float32(L[i]) + mn - x[i]
		bestError += weights[i] * diff * diff
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + rdelta*float32(is) + float32(nmax)) / (mx - mn)
		var sumL, sumL2, sumXL float32
		for i := range n {
			l := max(0, min(nmax, nearestInt(iscale*(x[i]-mn))))
			laux[i] = uint8(l)
			w := weights[i]
			fl := float32(l)
			sumL += w * fl
			sumL2 += w * fl * fl
			sumXL += w * fl * x[i]
		}
		D := sumW*sumL2 - sumL*sumL
		if D > 0 {
			thisScale := (sumW*sumXL - sumX*sumL) / D
			thisMin := (sumL2*sumX - sumL*sumXL) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var curError float32
			for i := range n {
				diff := thisScale*float32(laux[i]) + thisMin - x[i]
				curError += weights[i] * diff * diff
			}
			if curError < bestError {
				copy(L[:n], laux[:n])
				bestError, scale, mn = curError, thisScale, thisMin
			}
		}
	}
	*theMin = -mn
	return scale
}

// groupMaxEps is ggml's GROUP_MAX_EPS: a group whose largest magnitude is below it is all zero.
const groupMaxEps = 1e-15

// quantize_row_q6_K_ref: each 16-element group gets a signed scale from make_qx_quants (nmax 32,
// weights x²); the sixteen scales are quantized to int8 against d = −max_scale/128, and the 6-bit
// values recomputed with the rounded scales.
func quantQ6_K(x []float32, b []byte) {
	var scales [16]float32
	var maxScale, maxAbsScale float32
	for ib := range 16 {
		s := makeQXQuants(32, x[16*ib:16*ib+16])
		scales[ib] = s
		if a := float32(math.Abs(float64(s))); a > maxAbsScale {
			maxAbsScale, maxScale = a, s
		}
	}
	clear(b)
	if maxAbsScale < groupMaxEps {
		return
	}
	iscale := -128 / maxScale
	putF16(b[208:], 1/iscale)
	d := f16(b[208:])
	sc := b[192:208]
	for ib := range 16 {
		sc[ib] = byte(int8(min(127, nearestInt(iscale*scales[ib]))))
	}
	var U [256]uint8
	for j := range 16 {
		dj := d * float32(int8(sc[j]))
		if dj == 0 {
			continue
		}
		for ii := range 16 {
			l := max(-32, min(31, nearestInt(x[16*j+ii]/dj)))
			U[16*j+ii] = uint8(l + 32)
		}
	}
	ql, qh := b[0:128], b[128:192]
	for j := 0; j < 256; j += 128 {
		for l := range 32 {
			q1, q2, q3, q4 := U[j+l]&0xf, U[j+l+32]&0xf, U[j+l+64]&0xf, U[j+l+96]&0xf
			ql[l] = q1 | q3<<4
			ql[l+32] = q2 | q4<<4
			qh[l] = U[j+l]>>4 | (U[j+l+32]>>4)<<2 | (U[j+l+64]>>4)<<4 | (U[j+l+96]>>4)<<6
		}
		ql, qh = ql[64:], qh[32:]
	}
}

// makeQXQuants is ggml's make_qx_quants with rmse_type 1 (weights x²) and no importance weights: the
// signed scale of a group quantized to [−nmax, nmax−1], the best of 19 trial scales.
func makeQXQuants(nmax int, x []float32) float32 {
	var mx, amax float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, mx = a, v
		}
	}
	if amax < groupMaxEps {
		return 0
	}
	fit := func(iscale float32) (sumLX, sumL2 float32) {
		for _, v := range x {
			l := float32(max(-nmax, min(nmax-1, nearestInt(iscale*v))))
			w := v * v
			sumLX += w * v * l
			sumL2 += w * l * l
		}
		return
	}
	iscale := -float32(nmax) / mx
	sumLX, sumL2 := fit(iscale)
	var scale float32
	if sumL2 != 0 {
		scale = sumLX / sumL2
	}
	best := scale * sumLX
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(float32(nmax) + 0.1*float32(is)) / mx
		sumLX, sumL2 = fit(iscale)
		if sumL2 > 0 && sumLX*sumLX > best*sumL2 {
			scale = sumLX / sumL2
			best = scale * sumLX
		}
	}
	return scale
}

// Q4KM returns the type llama-quantize's Q4_K_M gives a matrix of a model with the given number of
// blocks (llama_tensor_get_type): Q6_K for the output head and for attn_v and ffn_down in the first
// and last eighth of the blocks and every third block between, Q4_K for the rest. A row that is not
// whole 256-value blocks falls back to Q8_0 (llama.cpp picks Q5_0 there, which Lathe does not decode).
func Q4KM(name string, cols, layers int) TensorType {
	typ := Q4_K
	var l int
	var rest string
	switch {
	case name == "output.weight":
		typ = Q6_K
	case strings.HasPrefix(name, "blk."):
		if _, err := fmt.Sscanf(name, "blk.%d.", &l); err == nil {
			rest = name[strings.Index(name[4:], ".")+5:]
		}
		moreBits := l < layers/8 || l >= 7*layers/8 || (l-layers/8)%3 == 2
		if (rest == "attn_v.weight" || rest == "ffn_down.weight") && moreBits {
			typ = Q6_K
		}
	}
	if cols%256 != 0 {
		return Q8_0
	}
	return typ
}
