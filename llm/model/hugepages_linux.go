package model

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// adviseHugePages asks the kernel to back the 2 MiB-aligned part of a large weight array with
// transparent huge pages (THP in "madvise" mode, as on Debian, gives the Go heap none) and to collapse
// the pages already there. Decoding streams every weight once per token; with 4 KiB pages the
// hardware prefetcher stops at every page boundary. Best effort: without THP, or on a kernel before
// 6.1 (no MADV_COLLAPSE), the memory stays as it was.
func adviseHugePages[T any](s []T) {
	if len(s) == 0 {
		return
	}
	const huge = 2 << 20
	base := unsafe.Pointer(&s[0])
	size := uintptr(len(s)) * unsafe.Sizeof(s[0])
	skip := (huge - uintptr(base)%huge) % huge
	if size <= skip+huge {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Add(base, skip)), (size-skip)&^(huge-1))
	if unix.Madvise(b, unix.MADV_HUGEPAGE) == nil {
		_ = unix.Madvise(b, unix.MADV_COLLAPSE)
	}
}
