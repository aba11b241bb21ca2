package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/lathe-ml/lathe/internal/store"
)

// testHosting: models, endpoint configs and endpoints written through one handle are read, listed,
// updated and deleted through another (two API nodes of a fleet), with the exact errors.
func testHosting(t *testing.T, newDB NewDatabase) {
	ctx := context.Background()
	open := newDB(t)
	a, b := handle(t, open), handle(t, open)
	m := store.HostingResource{Name: "My-Model", ARN: "arn:aws:sagemaker:us-east-1:123456789012:model/my-model",
		Created: t0.Truncate(1e6), Spec: []byte(`{"ModelName":"My-Model"}`)}
	if err := a.PutHostingResource(ctx, store.KindModel, "my-model", m); err != nil {
		t.Fatal(err)
	}
	if err := b.PutHostingResource(ctx, store.KindModel, "my-model", m); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second put of a model: %v, want ErrExists", err)
	}
	// Kinds are apart: an endpoint config may share a model's name.
	if err := b.PutHostingResource(ctx, store.KindEndpointConfig, "my-model", m); err != nil {
		t.Fatal(err)
	}
	got, err := b.GetHostingResource(ctx, store.KindModel, "my-model")
	if err != nil || got.Name != m.Name || got.ARN != m.ARN || !got.Created.Equal(m.Created) || !jsonEqual(got.Spec, m.Spec) {
		t.Fatalf("get model = %+v, %v; want %+v", got, err, m)
	}
	if _, err := b.GetHostingResource(ctx, store.KindModel, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get a missing model: %v, want ErrNotFound", err)
	}
	if err := a.PutHostingResource(ctx, store.KindModel, "another", m); err != nil {
		t.Fatal(err)
	}
	if list, err := b.ListHostingResources(ctx, store.KindModel); err != nil || len(list) != 2 {
		t.Fatalf("list models = %+v, %v; want 2", list, err)
	}
	if err := b.DeleteHostingResource(ctx, store.KindModel, "another"); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteHostingResource(ctx, store.KindModel, "another"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}

	e := store.Endpoint{Name: "Ep", ARN: "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep", ConfigName: "cfg",
		Status: "Creating", Created: t0.Truncate(1e6), Modified: t0.Truncate(1e6), Deployment: []byte(`{"variants":[]}`)}
	if err := a.CreateEndpoint(ctx, "ep", e); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateEndpoint(ctx, "ep", e); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create of an endpoint: %v, want ErrExists", err)
	}
	e.Status, e.Failure, e.ConfigName, e.Modified = "InService", "why not", "cfg-2", t0.Add(1500e6).Truncate(1e6)
	e.Deployment = []byte(`{"variants":[{"name":"AllTraffic"}]}`)
	if err := b.UpdateEndpoint(ctx, "ep", e, ""); err != nil {
		t.Fatal(err)
	}
	// Two handles taking it from InService to Updating at once: one wins.
	up := e
	up.Status = "Updating"
	errs := make(chan error, 2)
	for _, h := range []store.Store{a, b} {
		go func() { errs <- h.UpdateEndpoint(ctx, "ep", up, "InService") }()
	}
	if e1, e2 := <-errs, <-errs; (e1 == nil) == (e2 == nil) || !errors.Is(errors.Join(e1, e2), store.ErrNotFound) {
		t.Fatalf("two conditional updates from InService: %v and %v, want one nil and one ErrNotFound", e1, e2)
	}
	if err := a.UpdateEndpoint(ctx, "ep", e, "Updating"); err != nil {
		t.Fatal(err)
	}
	ge, err := a.GetEndpoint(ctx, "ep")
	if err != nil || ge.Name != "Ep" || ge.Status != "InService" || ge.Failure != "why not" || ge.ConfigName != "cfg-2" ||
		!ge.Created.Equal(e.Created) || !ge.Modified.Equal(e.Modified) || !jsonEqual(ge.Deployment, e.Deployment) {
		t.Fatalf("get endpoint = %+v, %v; want %+v", ge, err, e)
	}
	if list, err := b.ListEndpoints(ctx); err != nil || len(list) != 1 || list[0].Name != "Ep" {
		t.Fatalf("list endpoints = %+v, %v", list, err)
	}
	if err := a.DeleteEndpoint(ctx, "ep"); err != nil {
		t.Fatal(err)
	}
	if err := b.UpdateEndpoint(ctx, "ep", e, ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a deleted endpoint: %v, want ErrNotFound", err)
	}
	if _, err := b.GetEndpoint(ctx, "ep"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get of a deleted endpoint: %v, want ErrNotFound", err)
	}
	if err := b.DeleteEndpoint(ctx, "ep"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete of an endpoint: %v, want ErrNotFound", err)
	}
}

// testReplicaSecret: handles asking at once for the fleet's secret all get the same one.
func testReplicaSecret(t *testing.T, newDB NewDatabase) {
	ctx := context.Background()
	open := newDB(t)
	hs := []store.Store{handle(t, open), handle(t, open), handle(t, open)}
	secrets := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range secrets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := hs[i%len(hs)].ReplicaSecret(ctx)
			if err != nil {
				t.Error(err)
			}
			secrets[i] = s
		}()
	}
	wg.Wait()
	for i, s := range secrets {
		if len(s) != store.ReplicaSecretSize || string(s) != string(secrets[0]) {
			t.Fatalf("secret %d = %x, want the same %d bytes as the first (%x)", i, s, store.ReplicaSecretSize, secrets[0])
		}
	}
}
