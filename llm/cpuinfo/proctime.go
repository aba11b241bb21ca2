package cpuinfo

import (
	"syscall"
	"time"
)

// ProcessTime is the CPU time (user and system) this process has used so far: over a benchmark's
// wall time and thread count, it says how busy the cores were and whether other work shared them.
// It is 0 where the system cannot say.
func ProcessTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
