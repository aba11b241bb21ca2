// Package hugemem allocates the engine's large arrays (weights, gradients, optimizer moments,
// activations) on 2 MiB pages where the kernel allows it.
//
// Debian and most distributions run transparent huge pages in "madvise" mode, which gives the Go heap
// none: a training step then streams hundreds of megabytes through 4 KiB pages, where the hardware
// prefetcher stops at every page boundary and the TLB misses on strided reads. Make aligns a large
// slice to 2 MiB and advises the kernel before the memory is first touched.
package hugemem

import "unsafe"

// huge is the transparent huge page size on x86-64 and arm64 (4 KiB base pages).
const huge = 2 << 20

// minBytes is the size from which Make asks for huge pages: below it the alignment slack (up to
// 2 MiB) would cost more than the pages save.
const minBytes = 8 << 20

// Make returns a zeroed slice of n elements whose memory is 2 MiB-aligned and advised for huge pages
// when it is at least 8 MiB; smaller slices come from make as usual. Best effort: without THP the
// memory is ordinary.
func Make[T any](n int) []T {
	var zero T
	size := int(unsafe.Sizeof(zero))
	if size == 0 || n*size < minBytes {
		return make([]T, n)
	}
	pad := (huge + size - 1) / size
	s := make([]T, n+pad)
	skip := (huge - int(uintptr(unsafe.Pointer(&s[0]))%huge)) % huge / size
	s = s[skip : skip+n : skip+n]
	Advise(s)
	return s
}

// Advise asks for huge pages under the 2 MiB-aligned part of s, and for the pages already there to be
// collapsed into huge ones.
func Advise[T any](s []T) {
	if len(s) == 0 {
		return
	}
	base := unsafe.Pointer(&s[0])
	size := uintptr(len(s)) * unsafe.Sizeof(s[0])
	skip := (huge - uintptr(base)%huge) % huge
	if size <= skip+huge {
		return
	}
	advise(unsafe.Slice((*byte)(unsafe.Add(base, skip)), (size-skip)&^(huge-1)))
}
