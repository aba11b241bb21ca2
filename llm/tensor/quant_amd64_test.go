package tensor

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// quantKernelPaths runs fn with each kernel path this CPU can run forced in turn: VNNI on 512-bit registers, VNNI, AVX2 and the
// portable loops.
func quantKernelPaths(t *testing.T, fn func(t *testing.T)) {
	vnni512, vnni, avx2 := quantVNNI512, quantVNNI, quantAVX2
	defer func() { quantVNNI512, quantVNNI, quantAVX2 = vnni512, vnni, avx2 }()
	if vnni512 {
		t.Run("VNNI512", fn)
	} else {
		t.Log("no AVX512BW with VNNI here: its kernels are not tested")
	}
	quantVNNI512 = false
	if vnni {
		t.Run("VNNI", fn)
	} else {
		t.Log("no AVX512_VNNI here: its kernels are not tested")
	}
	quantVNNI = false
	if avx2 {
		t.Run("AVX2", fn)
	}
	quantAVX2 = false
	t.Run("portable", fn)
}

// TestQuantizeActsAsm checks the assembly quantizers (AVX-512, AVX2) against the portable loop byte
// for byte (zero blocks, tiny and large values, both block sizes), and that a NaN or infinity sends
// them to the loop.
func TestQuantizeActsAsm(t *testing.T) {
	vnni512, avx2 := quantVNNI512, quantAVX2
	defer func() { quantVNNI512, quantAVX2 = vnni512, avx2 }()
	if vnni512 {
		t.Run("AVX512", testQuantizeActsAsm)
	} else {
		t.Log("no AVX-512 with VNNI here: its quantizer is not tested")
	}
	quantVNNI512 = false
	if !avx2 {
		t.Skip("no AVX2 here: no assembly quantizer runs")
	}
	t.Run("AVX2", testQuantizeActsAsm)
}

func testQuantizeActsAsm(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	x := make([]float32, 4*512)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(12)-8)))
	}
	clear(x[256:512]) // a zero block of either size
	for _, blk := range []int{32, 256} {
		nb := len(x) / blk
		want, got := &qActs{qs: make([]int8, len(x)), d: make([]float32, nb), sums: make([]int16, len(x)/16)},
			&qActs{qs: make([]int8, len(x)), d: make([]float32, nb), sums: make([]int16, len(x)/16)}
		quantizeActsGo(want, x, nb, blk)
		if !quantizeActsAsm(got, x, blk) {
			t.Fatalf("blk %d: the assembly declined finite input", blk)
		}
		for i := range want.qs {
			if want.qs[i] != got.qs[i] {
				t.Fatalf("blk %d: q[%d] = %d, want %d", blk, i, got.qs[i], want.qs[i])
			}
		}
		for i := range want.d {
			if blk == 32 { // quantizeActs rounds these scales to float16 after the assembly
				got.d[i] = half.F16ToF32(half.F32ToF16(got.d[i]))
			}
			if math.Float32bits(want.d[i]) != math.Float32bits(got.d[i]) {
				t.Fatalf("blk %d: d[%d] = %g, want %g", blk, i, got.d[i], want.d[i])
			}
		}
		for i := range want.sums {
			if want.sums[i] != got.sums[i] {
				t.Fatalf("blk %d: sums[%d] = %d, want %d", blk, i, got.sums[i], want.sums[i])
			}
		}
		for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
			y := append([]float32(nil), x...)
			y[700] = bad
			if quantizeActsAsm(got, y, blk) {
				t.Errorf("blk %d: the assembly took %g", blk, bad)
			}
		}
	}
}
