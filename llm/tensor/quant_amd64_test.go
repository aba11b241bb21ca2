package tensor

import "testing"

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
