package console

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/modelstore"
)

// Model is one row of the Models page: a catalog entry, a model in the store, or both.
type Model struct {
	Name       string `json:"name"`
	Family     string `json:"family"`
	Parameters int64  `json:"parameters,omitempty"`
	SizeText   string `json:"sizeText"`
	NeedsEULA  bool   `json:"needsEula"`
	Instruct   bool   `json:"instruct"`
	InStore    bool   `json:"inStore"`
	Runnable   bool   `json:"runnable"`
	Why        string `json:"why,omitempty"` // why a model cannot be fine-tuned here
	Source     string `json:"source,omitempty"`
}

// ModelLister is the part of the model store the console reads.
type ModelLister interface {
	List() ([]modelstore.Entry, error)
}

// StoreModels returns Config.Models for a model store: the catalog, marked with what the store
// holds, then the store's models that are not in the catalog.
func StoreModels(store ModelLister) func() ([]Model, error) {
	return func() ([]Model, error) {
		entries, err := store.List()
		if err != nil {
			return nil, fmt.Errorf("list the model store: %w", err)
		}
		inStore := map[string]modelstore.Entry{}
		for _, e := range entries {
			inStore[e.Name] = e
		}
		var out []Model
		for _, m := range catalog.All() {
			_, ok := inStore[m.Name]
			delete(inStore, m.Name)
			src := "huggingface.co/" + m.HubRepo
			if m.HubFile != "" {
				src += "/" + m.HubFile
			}
			row := Model{Name: m.Name, Family: m.Architecture, Parameters: m.Parameters, SizeText: paramText(m.Parameters),
				NeedsEULA: m.NeedsEULA, Instruct: m.Instruct, InStore: ok, Runnable: catalog.Runnable(m.Architecture), Source: src}
			if !row.Runnable {
				row.Why = "the engine does not run " + m.Architecture + " yet"
			}
			out = append(out, row)
		}
		rest := make([]string, 0, len(inStore))
		for name := range inStore {
			rest = append(rest, name)
		}
		sort.Strings(rest)
		for _, name := range rest {
			e := inStore[name]
			out = append(out, Model{Name: name, Family: e.Architecture, SizeText: bytesText(e.Size()), InStore: true,
				Runnable: catalog.Runnable(e.Architecture), Source: "imported"})
		}
		return out, nil
	}
}

func paramText(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func bytesText(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
}

// models answers GET /console/api/models. The store has no API of its own yet; the list is
// descriptive (names, families, sizes) and shown to any signed-in principal.
func (c *Console) models(w http.ResponseWriter) {
	if c.cfg.Models == nil {
		writeJSON(w, http.StatusOK, map[string]any{"models": []Model{}})
		return
	}
	ms, err := c.cfg.Models()
	if err != nil {
		c.internal(w, "models", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": ms})
}
