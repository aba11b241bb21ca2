//go:build amd64 && !purego

package cpuinfo

// cpuid executes CPUID with EAX = leaf and ECX = sub.
//
//go:noescape
func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

func detect() Caches {
	maxLeaf, vb, vc, vd := cpuid(0, 0)
	intel := vb == 0x756e6547 && vd == 0x49656e69 && vc == 0x6c65746e // "GenuineIntel"
	maxExt, _, _, _ := cpuid(0x80000000, 0)
	leaf := func(l uint32) func(uint32) (uint32, uint32, uint32) {
		return func(sub uint32) (uint32, uint32, uint32) {
			a, b, c, _ := cpuid(l, sub)
			return a, b, c
		}
	}
	// AMD answers leaf 4 with zeros and Intel has no leaf 0x8000001D: each vendor's own first.
	if intel && maxLeaf >= 4 {
		if c, ok := fromLeaf(leaf(4)); ok {
			c.Source = "cpuid leaf 4"
			return c
		}
	}
	if maxExt >= 0x8000001d {
		if c, ok := fromLeaf(leaf(0x8000001d)); ok {
			c.Source = "cpuid leaf 0x8000001d"
			return c
		}
	}
	if maxExt >= 0x80000006 { // the legacy AMD leaves: L1d in KiB in ECX[31:24], L2 in KiB in ECX[31:16]
		_, _, l1, _ := cpuid(0x80000005, 0)
		_, _, l2, _ := cpuid(0x80000006, 0)
		return Caches{L1D: int(l1>>24) << 10, L2: int(l2>>16) << 10, Source: "cpuid legacy"}
	}
	return Caches{Source: "none"}
}
