package cpuinfo

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A Xeon's leaf 4, as the manual lays it out: L1d 48 KiB (12 ways x 64 sets x 64 B), L2 2 MiB
// (16 ways x 2048 sets), the instruction cache skipped, L3 105 MiB (15 ways x 114688 sets, 128 threads).
func TestFromLeafDecodesTheDeterministicCacheLeaf(t *testing.T) {
	reg := func(typ, level, shared, ways, sets uint32) [3]uint32 {
		return [3]uint32{typ | level<<5 | (shared-1)<<14, (ways-1)<<22 | 63, sets - 1}
	}
	leaf := [][3]uint32{
		reg(1, 1, 2, 12, 64),
		reg(2, 1, 2, 8, 64),
		reg(3, 2, 2, 16, 2048),
		reg(3, 3, 128, 15, 114688),
		{0, 0, 0},
	}
	c, ok := fromLeaf(func(sub uint32) (uint32, uint32, uint32) {
		r := leaf[min(int(sub), len(leaf)-1)]
		return r[0], r[1], r[2]
	})
	want := Caches{L1D: 48 << 10, L2: 2 << 20, L3: 105 << 20, L3SharedBy: 128}
	if !ok || c != want {
		t.Errorf("decoded %+v (ok %v), want %+v", c, ok, want)
	}
	if _, ok := fromLeaf(func(uint32) (uint32, uint32, uint32) { return 0, 0, 0 }); ok {
		t.Error("a leaf of zeros (AMD's leaf 4) decoded as caches")
	}
}

// What CPUID says must be what Linux says about cpu0 (the kernel reads the same leaves, but through
// its own decoding): the sizes the blocking is derived from.
func TestDetectMatchesLinuxSysfs(t *testing.T) {
	dirs, _ := filepath.Glob("/sys/devices/system/cpu/cpu0/cache/index*")
	if len(dirs) == 0 {
		t.Skip("no /sys/devices/system/cpu/cpu0/cache on this system to compare with")
	}
	var want Caches
	for _, d := range dirs {
		read := func(name string) string {
			b, err := os.ReadFile(filepath.Join(d, name))
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(b))
		}
		if read("type") == "Instruction" {
			continue
		}
		size, err := strconv.Atoi(strings.TrimSuffix(read("size"), "K"))
		if err != nil {
			t.Fatalf("%s/size: %v", d, err)
		}
		switch read("level") {
		case "1":
			want.L1D = size << 10
		case "2":
			want.L2 = size << 10
		case "3":
			want.L3 = size << 10
		}
	}
	got := Detect()
	t.Logf("detected: %s", got)
	if got.L1D != want.L1D || got.L2 != want.L2 || got.L3 != want.L3 {
		t.Errorf("CPUID says L1d %d, L2 %d, L3 %d; sysfs says L1d %d, L2 %d, L3 %d",
			got.L1D, got.L2, got.L3, want.L1D, want.L2, want.L3)
	}
}
