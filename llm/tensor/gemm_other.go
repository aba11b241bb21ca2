//go:build !amd64 || purego

package tensor

// matmulSIMD reports that this build has no SIMD kernel; MatMul then runs the portable loops.
func matmulSIMD(g gemmArgs, threaded bool) bool {
	return false
}

// KernelName says which matrix-multiplication kernel MatMul uses: always "generic" in this build.
func KernelName() string { return "generic" }
