package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The log rotates before a line would pass MaxSize, keeps the newest rotated files, and every line
// of every file is one whole event.
func TestLogRotatesBySizeAndKeepsTheNewest(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, 1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { tick = tick.Add(time.Second); return tick }
	for i := range 40 {
		if err := l.Write(Event{RequestID: "r" + string(rune('a'+i%26)), Principal: "arn:aws:iam::000000000000:user/ana",
			Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Allowed: true, Decision: "Allow", Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rotated, err := Rotated(dir)
	if err != nil || len(rotated) != 2 {
		t.Fatalf("rotated files %v (%v), want the 2 newest kept", rotated, err)
	}
	total := 0
	for _, name := range append(rotated, File) {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 1000 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %d bytes, mode %v", name, fi.Size(), fi.Mode().Perm())
		}
		f, _ := os.Open(filepath.Join(dir, name))
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action != "s3:GetObject" {
				t.Fatalf("%s: line %q: %v", name, sc.Text(), err)
			}
			total++
		}
		f.Close()
	}
	if total == 0 || total >= 40 {
		t.Fatalf("%d lines kept of 40 written: rotation dropped none or all", total)
	}
}
