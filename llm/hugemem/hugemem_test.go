package hugemem

import (
	"testing"
	"unsafe"
)

// Large slices start on a 2 MiB boundary, hold exactly n zeroed elements with no spare capacity (an
// append cannot run into the alignment slack of another slice), and small ones are plain.
func TestMake(t *testing.T) {
	for _, n := range []int{0, 1, 1000, minBytes/4 - 1, minBytes / 4, minBytes/4 + 12345, 3 << 20} {
		s := Make[float32](n)
		if len(s) != n || cap(s) != n && n*4 >= minBytes {
			t.Fatalf("Make(%d): len %d cap %d", n, len(s), cap(s))
		}
		for i, v := range s {
			if v != 0 {
				t.Fatalf("Make(%d)[%d] = %g, want 0", n, i, v)
			}
		}
		if n*4 >= minBytes {
			if addr := uintptr(unsafe.Pointer(&s[0])); addr%huge != 0 {
				t.Fatalf("Make(%d) starts at %#x, not on a 2 MiB boundary", n, addr)
			}
			s[n-1] = 1 // the whole slice is usable
		}
	}
	// Another element type: the alignment is in bytes.
	if d := Make[float64](minBytes / 8); uintptr(unsafe.Pointer(&d[0]))%huge != 0 {
		t.Fatal("Make[float64] is not 2 MiB-aligned")
	}
	Advise([]float32(nil)) // nothing to do, no panic
	Advise(make([]byte, 10))
}
