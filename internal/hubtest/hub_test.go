package hubtest

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/finetune"
	"github.com/lathe-ml/lathe/internal/modelstore"
)

// The model store pulls the tiny models from this hub under their catalog names, as it pulls the real
// ones from huggingface.co, and the pulled folders load as the engine's models of their family.
func TestStorePullsTinyModels(t *testing.T) {
	root := t.TempDir()
	if err := WriteDecoder(filepath.Join(root, "tiiuae", "falcon-7b-instruct"), Falcon7BConfig,
		"../../../shared/models/vocab/ggml-vocab-falcon.gguf", 1); err != nil {
		t.Fatal(err)
	}
	if err := WriteT5(filepath.Join(root, "google", "flan-t5-large"), "../../llm/tokenizer/testdata/unigram_t5like.tokenizer.json", 2); err != nil {
		t.Fatal(err)
	}
	hub := httptest.NewServer(Hub{Root: root})
	t.Cleanup(hub.Close)
	store, err := modelstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Falcon7BInstruct", "FlanT5L"} {
		entry, _ := catalog.Lookup(name)
		if _, err := store.Ensure(context.Background(), entry, modelstore.PullOptions{Endpoint: hub.URL}); err != nil {
			t.Fatalf("pull %s: %v", name, err)
		}
		path, err := store.Path(name)
		if err != nil {
			t.Fatal(err)
		}
		lm, err := finetune.LoadModel(path, entry)
		if err != nil {
			t.Fatalf("load %s: %v", name, err)
		}
		if ids := lm.Tokenize(lm.Prompt("Hello there"), true); len(ids) < 2 {
			t.Fatalf("%s tokenizes a prompt as %v", name, ids)
		}
	}
	entry, _ := catalog.Lookup("Dolly3B")
	if _, err := store.Ensure(context.Background(), entry, modelstore.PullOptions{Endpoint: hub.URL}); err == nil {
		t.Fatal("a repository the hub does not have was pulled")
	}
}
