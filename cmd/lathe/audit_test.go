package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lathe-ml/lathe/internal/audit"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// `lathe audit tail` prints the last lines; -f prints each later line once, in order, also across
// the server's rotations of the log.
func TestAuditTailFollowsAcrossRotation(t *testing.T) {
	dataDir := t.TempDir()
	dir := filepath.Join(dataDir, "audit")
	l, err := audit.Open(dir, 2000, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	write := func(from, to int) {
		for i := from; i < to; i++ {
			if err := l.Write(audit.Event{RequestID: fmt.Sprintf("req-%03d", i), Action: "s3:GetObject", Decision: "Root", Allowed: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(0, 5)
	cmd := auditCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"tail", "-n", "2", "--data-dir", dataDir})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); strings.Count(got, "\n") != 2 || !strings.Contains(got, `"req-003"`) || !strings.Contains(got, `"req-004"`) {
		t.Fatalf("tail -n 2:\n%s", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	followed := &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- auditTail(ctx, followed, dir, 5, true, 5*time.Millisecond) }()
	waitFor := func(id string) {
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(followed.String(), id) {
			if time.Now().After(deadline) {
				t.Fatalf("tail -f has not printed %s:\n%s", id, followed.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(`"req-004"`) // it has read the log to its end
	write(5, 60)         // about 100 bytes a line: several rotations
	waitFor(`"req-059"`)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rotated, _ := audit.Rotated(dir)
	if len(rotated) < 2 {
		t.Fatalf("the log rotated %d times; the test needs rotations", len(rotated))
	}
	lines := strings.Split(strings.TrimSuffix(followed.String(), "\n"), "\n")
	if len(lines) != 60 {
		t.Fatalf("tail -f printed %d lines, want the last 5 and the 55 written after it started", len(lines))
	}
	for i, line := range lines {
		if want := fmt.Sprintf(`"req-%03d"`, i); !strings.Contains(line, want) {
			t.Fatalf("line %d is %s, want %s", i, line, want)
		}
	}
}
