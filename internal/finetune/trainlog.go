package finetune

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// trainLog is the job's JSON-lines training log (training-log.jsonl under the job's output path): one
// object per line with an "event" (start, resumed, step, checkpoint, eval, stopped, done) and its
// numbers. It lives in the job's work dir, so a resumed job appends to it, and is uploaded with each
// checkpoint and at the end.
type trainLog struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

func openTrainLog(path string) (*trainLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open training log: %w", err)
	}
	return &trainLog{path: path, f: f}, nil
}

// Event appends one line: {"time": ..., "event": name, ...fields}.
func (l *trainLog) Event(name string, fields map[string]any) {
	rec := map[string]any{"time": time.Now().UTC().Format(time.RFC3339Nano), "event": name}
	for k, v := range fields {
		rec[k] = v
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.f.Write(append(line, '\n'))
}

func (l *trainLog) Close() error { return l.f.Close() }

// TrimAfter drops the step and checkpoint lines past step: a run that resumes from the checkpoint
// at step trains those steps again, and the log must show each step once. (A crash after the log was
// uploaded but before its checkpoint was, or one that leaves the local log ahead of the local
// checkpoint, would otherwise leave them twice.)
func (l *trainLog) TrimAfter(step int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	data, err := os.ReadFile(l.path)
	if err != nil {
		return fmt.Errorf("read training log: %w", err)
	}
	var kept []byte
	for line := range bytes.Lines(data) {
		var e struct {
			Event string `json:"event"`
			Step  int    `json:"step"`
		}
		if json.Unmarshal(line, &e) == nil && (e.Event == "step" || e.Event == "checkpoint") && e.Step > step {
			continue
		}
		kept = append(kept, line...)
	}
	if len(kept) == len(data) {
		return nil
	}
	tmp := l.path + ".tmp"
	if err := os.WriteFile(tmp, kept, 0o644); err != nil {
		return fmt.Errorf("rewrite training log: %w", err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		return fmt.Errorf("rewrite training log: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open training log: %w", err)
	}
	l.f.Close()
	l.f = f
	return nil
}
