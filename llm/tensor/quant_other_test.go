//go:build !amd64

package tensor

import "testing"

func quantKernelPaths(t *testing.T, fn func(t *testing.T)) { t.Run("portable", fn) }
