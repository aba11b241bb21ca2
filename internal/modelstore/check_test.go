package modelstore

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// CheckEnsure answers without downloading: nil when the store has the model or the hub has its
// repository; otherwise exactly the error Ensure gives (the job's FailureReason), so a job can be
// refused when it is created.
func TestCheckEnsure(t *testing.T) {
	// Nothing listens on port 1 (a closed test server's port could be reused by the hub below).
	const closed = "http://127.0.0.1:1"
	ctx := context.Background()
	m := lookup(t, "Stories260K")

	s := openStore(t)
	err := s.CheckEnsure(ctx, m, PullOptions{Endpoint: closed})
	var pe *PullError
	if !errors.As(err, &pe) || !pe.NotInStore {
		t.Fatalf("hub unreachable: %v, want a PullError", err)
	}
	_, ensureErr := s.Ensure(ctx, m, PullOptions{Endpoint: closed})
	if ensureErr == nil || err.Error() != ensureErr.Error() {
		t.Errorf("CheckEnsure says\n%v\nEnsure says\n%v", err, ensureErr)
	}
	if !strings.Contains(err.Error(), `model Stories260K is not in the model store and could not be downloaded from `+closed) {
		t.Errorf("message %q", err)
	}

	h, _ := storiesHub(t)
	if err := s.CheckEnsure(ctx, m, PullOptions{Endpoint: h.URL}); err != nil {
		t.Errorf("hub with the repository: %v", err)
	}
	if n := len(h.requestsFor("stories260K.gguf")); n != 0 {
		t.Errorf("the check downloaded the model (%d requests)", n)
	}
	if err := s.CheckEnsure(ctx, lookup(t, "Qwen2-5-0-5BInstruct"), PullOptions{Endpoint: h.URL}); err == nil ||
		!strings.Contains(err.Error(), "check the repository name Qwen/Qwen2.5-0.5B-Instruct") {
		t.Errorf("repository missing from the hub: %v", err)
	}

	if _, err := s.Ensure(ctx, m, PullOptions{Endpoint: h.URL}); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckEnsure(ctx, m, PullOptions{Endpoint: closed}); err != nil {
		t.Errorf("in the store, hub down: %v", err)
	}
}
