package finetune

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A run that resumes from the checkpoint at step 2 trims the steps its predecessor logged past it
// (and keeps appending), so each step shows once in the job's training log.
func TestTrainLogTrimAfter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "training-log.jsonl")
	l, err := openTrainLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Event("start", map[string]any{"total_steps": 4})
	for s := 1; s <= 3; s++ {
		l.Event("step", map[string]any{"step": s})
		if s == 2 {
			l.Event("checkpoint", map[string]any{"step": s})
		}
	}
	l.Event("checkpoint", map[string]any{"step": 3})
	if err := l.TrimAfter(2); err != nil {
		t.Fatal(err)
	}
	l.Event("resumed", map[string]any{"step": 2})
	l.Event("step", map[string]any{"step": 3})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var steps, resumed []int
	for line := range bytes.Lines(b) {
		var e struct {
			Event string `json:"event"`
			Step  int    `json:"step"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		switch e.Event {
		case "step":
			steps = append(steps, e.Step)
		case "resumed":
			resumed = append(resumed, e.Step)
		}
	}
	if want := []int{1, 2, 3}; !slices.Equal(steps, want) || !slices.Equal(resumed, []int{2}) {
		t.Fatalf("steps %v resumed %v after the trim; want %v and [2]:\n%s", steps, resumed, want, b)
	}
}
