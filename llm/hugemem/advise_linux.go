package hugemem

import "golang.org/x/sys/unix"

// advise marks b (2 MiB-aligned, a multiple of 2 MiB) for transparent huge pages and collapses what is
// already resident (MADV_COLLAPSE, Linux 6.1; older kernels refuse it and the pages stay small).
func advise(b []byte) {
	if unix.Madvise(b, unix.MADV_HUGEPAGE) == nil {
		_ = unix.Madvise(b, unix.MADV_COLLAPSE)
	}
}
