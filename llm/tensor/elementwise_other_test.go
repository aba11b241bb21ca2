//go:build !amd64 || purego

package tensor

import "testing"

// elementwisePaths runs fn on the portable loops, the only element-wise kernels here.
func elementwisePaths(t *testing.T, fn func(t *testing.T)) { fn(t) }
