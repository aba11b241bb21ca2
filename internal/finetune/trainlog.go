package finetune

import (
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
