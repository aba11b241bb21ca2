package s3models_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lathe-ml/lathe/internal/blob"
	"github.com/lathe-ml/lathe/internal/modelstore"
	"github.com/lathe-ml/lathe/internal/modelstore/s3models"
	"github.com/lathe-ml/lathe/internal/s3test"
)

const stories = "../../../../shared/models/stories260K.gguf"

func TestSharedModels(t *testing.T) {
	for _, be := range []struct {
		name  string
		start func(testing.TB) s3test.Service
	}{{"versitygw", s3test.VersityGW}, {"another lathe", s3test.Lathe}} {
		t.Run(be.name, func(t *testing.T) {
			ext := be.start(t)
			objects, err := blob.New(context.Background(), blob.Options{Endpoint: ext.URL, Region: ext.Region,
				AccessKeyID: ext.AccessKeyID, SecretAccessKey: ext.SecretAccessKey, PathStyle: true})
			if err != nil {
				t.Fatal(err)
			}
			testSharedModels(t, objects)
		})
	}
}

func openStore(t *testing.T) *modelstore.Store {
	t.Helper()
	s, err := modelstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testSharedModels(t *testing.T, objects *blob.Client) {
	ctx := context.Background()
	original, err := os.ReadFile(stories)
	if err != nil {
		t.Fatal(err)
	}

	// One process imports the model and publishes it.
	a := openStore(t)
	if _, err := a.Import(ctx, stories, "Stories260K"); err != nil {
		t.Fatal(err)
	}
	sharedA := s3models.New(a, objects, "fleet")
	published, err := sharedA.Publish(ctx, "Stories260K")
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if ok, err := objects.Exists(ctx, "s3://fleet/_lathe/models/Stories260K/manifest.json"); !ok || err != nil {
		t.Fatalf("no manifest under the shared prefix: %v, %v", ok, err)
	}

	// Another process, with an empty cache, finds it there and fetches it once.
	b := openStore(t)
	sharedB := s3models.New(b, objects, "fleet")
	list, err := sharedB.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "Stories260K" {
		t.Fatalf("List: %+v, %v", list, err)
	}
	got, err := sharedB.Fetch(ctx, "Stories260K")
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if got.Architecture != "llama" || got.Format != modelstore.FormatGGUF || len(got.Files) != 1 || got.Files[0] != published.Files[0] {
		t.Fatalf("fetched %+v, published %+v", got, published)
	}
	path, err := b.Path("Stories260K")
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(path); err != nil || !bytes.Equal(data, original) {
		t.Fatalf("the cached copy differs from the imported file (%d bytes, %v)", len(data), err)
	}
	// Once cached, the shared copy is not needed any more.
	if err := objects.Delete(ctx, "s3://fleet/_lathe/models/Stories260K/"+published.Files[0].Path); err != nil {
		t.Fatal(err)
	}
	if _, err := sharedB.Fetch(ctx, "Stories260K"); err != nil {
		t.Fatalf("Fetch of a cached model: %v", err)
	}
	if _, err := sharedA.Publish(ctx, "Stories260K"); err != nil { // the manifest matches: nothing re-uploaded
		t.Fatal(err)
	}

	// A model nobody published.
	if _, err := sharedB.Fetch(ctx, "Missing"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Fatalf("Fetch of an unpublished model: %v, want ErrNotFound", err)
	}

	// A shared file that does not match its manifest is refused and nothing is cached.
	if _, err := a.Import(ctx, stories, "Tampered"); err != nil {
		t.Fatal(err)
	}
	tampered, err := sharedA.Publish(ctx, "Tampered")
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(original)
	bad[len(bad)/2] ^= 1
	if err := objects.PutBytes(ctx, "s3://fleet/_lathe/models/Tampered/"+tampered.Files[0].Path, bad, ""); err != nil {
		t.Fatal(err)
	}
	c := openStore(t)
	if _, err := s3models.New(c, objects, "fleet").Fetch(ctx, "Tampered"); !errors.Is(err, modelstore.ErrChecksum) {
		t.Fatalf("Fetch of a tampered model: %v, want ErrChecksum", err)
	}
	if _, err := c.Get("Tampered"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Fatalf("the tampered model is in the cache: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Join(c.Dir(), ".staging")); len(left) != 0 {
		t.Fatalf("staging left behind: %v", left)
	}

	// Remove takes the shared copy away; caches keep theirs.
	if err := sharedA.Remove(ctx, "Tampered"); err != nil {
		t.Fatal(err)
	}
	if _, err := sharedA.Manifest(ctx, "Tampered"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Fatalf("Manifest after Remove: %v", err)
	}
	if objs, err := objects.List(ctx, "s3://fleet/_lathe/models/Tampered/"); err != nil || len(objs) != 0 {
		t.Fatalf("objects left after Remove: %+v, %v", objs, err)
	}
	if _, err := a.Get("Tampered"); err != nil {
		t.Fatalf("the local copy went with the shared one: %v", err)
	}
}
