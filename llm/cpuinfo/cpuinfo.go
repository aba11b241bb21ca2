// Package cpuinfo reads what the engine and its benchmarks need to know about the CPU: the data cache
// sizes of one core, from CPUID, the way the processor reports them (leaf 4 on Intel, leaf 0x8000001D
// on AMD), so that the same binary tunes itself on a Zen 4 with a 1 MiB L2 and a Xeon with 2 MiB.
package cpuinfo

import (
	"fmt"
	"sync"
)

// Caches are the data caches one core sees, in bytes. L3 is the whole cache, shared by L3SharedBy
// logical processors (as the CPU reports it; under a hypervisor, as the hypervisor reports it). A
// size the CPU does not report is 0.
type Caches struct {
	L1D, L2, L3 int
	L3SharedBy  int
	Source      string // where the sizes came from: "cpuid leaf 4", "cpuid leaf 0x8000001d", "cpuid legacy", or "none"
}

func (c Caches) String() string {
	return fmt.Sprintf("L1d %s, L2 %s, L3 %s shared by %d (%s)", kib(c.L1D), kib(c.L2), kib(c.L3), c.L3SharedBy, c.Source)
}

func kib(n int) string {
	switch {
	case n == 0:
		return "?"
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	default:
		return fmt.Sprintf("%d KiB", n>>10)
	}
}

// Detect returns this machine's caches; it asks the CPU once.
var Detect = sync.OnceValue(detect)

// cacheLevel decodes one subleaf of CPUID leaf 4 or 0x8000001D, which share their layout: EAX bits
// 4:0 the type (0 = no more caches, 1 data, 2 instruction, 3 unified), 7:5 the level, 25:14 the
// logical processors sharing it minus one; EBX ways, partitions and line size minus one; ECX sets
// minus one.
func cacheLevel(eax, ebx, ecx uint32) (typ, level, size, sharedBy int) {
	typ = int(eax & 0x1f)
	level = int(eax >> 5 & 7)
	ways := int(ebx>>22&0x3ff) + 1
	partitions := int(ebx>>12&0x3ff) + 1
	line := int(ebx&0xfff) + 1
	sets := int(ecx) + 1
	return typ, level, ways * partitions * line * sets, int(eax>>14&0xfff) + 1
}

// fromLeaf walks the subleaves of a deterministic cache leaf (4 or 0x8000001D) until the type-0 end.
func fromLeaf(query func(sub uint32) (eax, ebx, ecx uint32)) (c Caches, ok bool) {
	for sub := uint32(0); sub < 16; sub++ {
		typ, level, size, shared := cacheLevel(query(sub))
		if typ == 0 {
			break
		}
		if typ == 2 { // instruction cache
			continue
		}
		ok = true
		switch level {
		case 1:
			c.L1D = size
		case 2:
			c.L2 = size
		case 3:
			c.L3, c.L3SharedBy = size, shared
		}
	}
	return c, ok
}
