package endpoint_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/lathe-ml/lathe/internal/endpoint"
	"github.com/lathe-ml/lathe/internal/store"
	"github.com/lathe-ml/lathe/internal/store/sqlite"
)

// The pods of an endpoint variant's Deployment each take one replica of their variant: unplaced ones
// first, never another variant's or another endpoint's, never a second one, and a dead pod's
// replica once its heartbeat has lapsed.
func TestClaimerTakesOneReplicaOfItsVariant(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lathe.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	spec := []byte(`{"name":"A"}`)
	if err := st.SetReplicas(ctx, "chat", []store.Replica{
		{ID: "chat/A/0-x", Endpoint: "Chat", Variant: "A", Spec: spec},
		{ID: "chat/A/1-x", Endpoint: "Chat", Variant: "A", Spec: spec},
		{ID: "chat/B/0-x", Endpoint: "Chat", Variant: "B", Spec: []byte(`{"name":"B"}`)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetReplicas(ctx, "chatter", []store.Replica{{ID: "chatter/A/0-x", Endpoint: "Chatter", Variant: "A", Spec: spec}}); err != nil {
		t.Fatal(err)
	}
	pod := func(name string) *endpoint.Claimer {
		return &endpoint.Claimer{Replicas: st, Workers: st, Owner: name, Endpoint: "Chat", Variant: "A", WorkerTimeout: time.Minute}
	}
	where := func() map[string]string {
		rs, err := st.ListReplicas(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, r := range rs {
			out[r.ID] = r.Worker
		}
		return out
	}
	claim := func(c *endpoint.Claimer) string {
		if err := st.WorkerHeartbeat(ctx, c.Owner, "host", time.Now()); err != nil {
			t.Fatal(err)
		}
		id, err := c.ClaimOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	p1, p2, p3 := pod("pod-1"), pod("pod-2"), pod("pod-3")
	if got := claim(p1); got != "chat/A/0-x" {
		t.Errorf("pod-1 took %q, want chat/A/0-x", got)
	}
	if got := claim(p1); got != "" {
		t.Errorf("pod-1 took %q as well: a pod serves one replica", got)
	}
	if got := claim(p2); got != "chat/A/1-x" {
		t.Errorf("pod-2 took %q, want chat/A/1-x", got)
	}
	if got := claim(p3); got != "" {
		t.Errorf("pod-3 took %q while every replica of Chat/A has a live pod (B and Chatter are not its to take)", got)
	}
	w := where()
	if w["chat/B/0-x"] != "" || w["chatter/A/0-x"] != "" || w["chat/A/0-x"] != "pod-1" || w["chat/A/1-x"] != "pod-2" {
		t.Fatalf("placement %v", w)
	}

	// pod-1 dies (it stops heartbeating and leaves the registry): pod-3 takes its replica.
	if err := st.RemoveWorker(ctx, "pod-1"); err != nil {
		t.Fatal(err)
	}
	if got := claim(p3); got != "chat/A/0-x" {
		t.Errorf("pod-3 took %q after pod-1 died, want its chat/A/0-x", got)
	}
	// A replica the executor marked Failed (its pods cannot run) is nobody's to take.
	if _, err := st.ReportReplica(ctx, "chat/A/1-x", "pod-2", store.ReplicaFailed, "", "CrashLoopBackOff"); err != nil {
		t.Fatal(err)
	}
	if err := st.RemoveWorker(ctx, "pod-2"); err != nil {
		t.Fatal(err)
	}
	if got := claim(pod("pod-4")); got != "" {
		t.Errorf("pod-4 took the failed replica %q", got)
	}
}
