package storetest

import (
	"context"
	"testing"

	"github.com/lathe-ml/lathe/internal/store"
)

// testReplicas: API nodes set an endpoint's replicas and place them; workers report them, and a
// worker a replica was taken from can no longer report it.
func testReplicas(t *testing.T, newDB NewDatabase) {
	ctx := context.Background()
	open := newDB(t)
	api, worker := handle(t, open), handle(t, open)
	spec := []byte(`{"name":"AllTraffic","instance_count":2}`)
	rs := []store.Replica{
		{ID: "ep/AllTraffic/0", Endpoint: "Ep", Variant: "AllTraffic", Spec: spec},
		{ID: "ep/AllTraffic/1", Endpoint: "Ep", Variant: "AllTraffic", Spec: spec},
	}
	if err := api.SetReplicas(ctx, "ep", rs); err != nil {
		t.Fatal(err)
	}
	if ok, err := api.PlaceReplica(ctx, "ep/AllTraffic/0", "", "w1"); err != nil || !ok {
		t.Fatalf("place: %v %v", ok, err)
	}
	if ok, err := api.PlaceReplica(ctx, "ep/AllTraffic/0", "", "w2"); err != nil || ok {
		t.Fatalf("placing a replica that moved meanwhile: %v %v, want false", ok, err)
	}
	if ok, err := worker.ReportReplica(ctx, "ep/AllTraffic/0", "w1", store.ReplicaReady, "127.0.0.1:9", ""); err != nil || !ok {
		t.Fatalf("report: %v %v", ok, err)
	}
	// The same replicas again keep their placement and state.
	if err := api.SetReplicas(ctx, "ep", rs); err != nil {
		t.Fatal(err)
	}
	got, err := worker.ListReplicas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Worker != "w1" || got[0].State != store.ReplicaReady || got[0].Addr != "127.0.0.1:9" ||
		got[0].Endpoint != "Ep" || string(got[0].Spec) != string(spec) || got[1].Worker != "" || got[1].State != store.ReplicaPending {
		t.Fatalf("replicas = %+v", got)
	}
	// Moved to w2 (w1 was taken for dead): w1's reports are refused.
	if ok, err := api.PlaceReplica(ctx, "ep/AllTraffic/0", "w1", "w2"); err != nil || !ok {
		t.Fatalf("re-place: %v %v", ok, err)
	}
	if ok, err := worker.ReportReplica(ctx, "ep/AllTraffic/0", "w1", store.ReplicaReady, "127.0.0.1:9", ""); err != nil || ok {
		t.Fatalf("report of the old worker: %v %v, want false", ok, err)
	}
	// A changed spec replaces the replica; no replicas remove them.
	if err := api.SetReplicas(ctx, "ep", rs[:1:1]); err != nil {
		t.Fatal(err)
	}
	if got, err = api.ListReplicas(ctx); err != nil || len(got) != 1 || got[0].Worker != "w2" {
		t.Fatalf("after shrinking: %+v %v", got, err)
	}
	changed := []store.Replica{{ID: "ep/AllTraffic/0", Endpoint: "Ep", Variant: "AllTraffic", Spec: []byte(`{"name":"AllTraffic","instance_count":1}`)}}
	if err := api.SetReplicas(ctx, "ep", changed); err != nil {
		t.Fatal(err)
	}
	if got, err = api.ListReplicas(ctx); err != nil || len(got) != 1 || got[0].Worker != "" || got[0].State != store.ReplicaPending {
		t.Fatalf("after a spec change: %+v %v", got, err)
	}
	if err := api.SetReplicas(ctx, "ep", nil); err != nil {
		t.Fatal(err)
	}
	if got, err = api.ListReplicas(ctx); err != nil || len(got) != 0 {
		t.Fatalf("after removing: %+v %v", got, err)
	}
}
