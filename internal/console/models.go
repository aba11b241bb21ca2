package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

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
	// Transfer is the pull or import the console has running for this name, or that failed.
	Transfer *transfer `json:"transfer,omitempty"`
}

// ModelStore is the part of the model store the console uses (a *modelstore.Store).
type ModelStore interface {
	List() ([]modelstore.Entry, error)
	Ensure(ctx context.Context, m catalog.Model, opts modelstore.PullOptions) (modelstore.Entry, error)
	Import(ctx context.Context, srcPath, name string) (modelstore.Entry, error)
}

// transfer is a pull or an import the console started, while it runs and after it failed.
type transfer struct {
	Kind  string `json:"kind"`  // pull or import
	State string `json:"state"` // running or failed
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
	Error string `json:"error,omitempty"`
}

// modelRows lists the catalog, marked with what the store holds and what is being pulled, then the
// store's models that are not in the catalog.
func (c *Console) modelRows() ([]Model, error) {
	if c.cfg.ModelStore == nil {
		return []Model{}, nil
	}
	entries, err := c.cfg.ModelStore.List()
	if err != nil {
		return nil, fmt.Errorf("list the model store: %w", err)
	}
	inStore := map[string]modelstore.Entry{}
	for _, e := range entries {
		inStore[e.Name] = e
	}
	out := []Model{}
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
			Runnable: catalog.Runnable(e.Architecture), Source: e.Source.String()})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range out {
		if t, ok := c.transfers[out[i].Name]; ok && !(out[i].InStore && t.State == "running" && t.Kind == "import") {
			cp := *t
			out[i].Transfer = &cp
		}
	}
	return out, nil
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
	ms, err := c.modelRows()
	if err != nil {
		c.internal(w, "models", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": ms})
}

// rootOnly refuses a model-store change to anyone but the account's root: the store has no IAM
// actions yet, so no policy could grant them.
func rootOnly(w http.ResponseWriter, s *session) bool {
	if s.root {
		return true
	}
	writeError(w, http.StatusForbidden, "AccessDeniedException",
		"Only the account's root may pull or import base models: the model store has no IAM actions yet. User: "+s.arn)
	return false
}

// start records a transfer for name and runs it in the background; false when one is running.
func (c *Console) start(name, kind string, run func(ctx context.Context, t *transfer) error) bool {
	c.mu.Lock()
	if t, ok := c.transfers[name]; ok && t.State == "running" {
		c.mu.Unlock()
		return false
	}
	t := &transfer{Kind: kind, State: "running"}
	c.transfers[name] = t
	c.mu.Unlock()
	go func() {
		// The transfer outlives the request that started it; it ends with the process.
		err := run(context.Background(), t)
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil {
			c.log.Error("console model "+kind, "model", name, "err", err)
			t.State, t.Error = "failed", err.Error()
			return
		}
		delete(c.transfers, name)
		c.log.Info("console model "+kind+" done", "model", name)
	}()
	return true
}

// pull answers POST /console/api/models/pull {"name"}: the catalog model is downloaded from the
// hub into the store in the background; GET models shows its progress.
func (c *Console) pull(w http.ResponseWriter, r *http.Request, s *session) {
	if !rootOnly(w, s) {
		return
	}
	var in struct{ Name string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "ValidationException", "The body must be {\"name\": MODEL}.")
		return
	}
	m, ok := catalog.Lookup(in.Name)
	if !ok {
		writeError(w, http.StatusBadRequest, "ValidationException", fmt.Sprintf("%q is not a catalog model.", in.Name))
		return
	}
	if !catalog.Runnable(m.Architecture) {
		writeError(w, http.StatusBadRequest, "ValidationException", fmt.Sprintf("The engine does not run %s (%s) yet.", m.Name, m.Architecture))
		return
	}
	if c.cfg.ModelStore == nil {
		writeError(w, http.StatusNotImplemented, "NotImplemented", "This server has no model store.")
		return
	}
	started := c.start(m.Name, "pull", func(ctx context.Context, t *transfer) error {
		opts := c.cfg.PullOptions
		opts.Progress = func(done, total int64) {
			c.mu.Lock()
			t.Done, t.Total = done, total
			c.mu.Unlock()
		}
		_, err := c.cfg.ModelStore.Ensure(ctx, m, opts)
		return err
	})
	if !started {
		writeError(w, http.StatusConflict, "ConflictException", m.Name+" is already being pulled or imported.")
		return
	}
	c.log.Info("console model pull", "model", m.Name, "principal", s.arn)
	writeJSON(w, http.StatusAccepted, map[string]string{"name": m.Name})
}

// importModel answers POST /console/api/models/import {"s3Uri", "name"}: the object (a GGUF file)
// is read through the S3 API as the signed-in root, so S3 answers as for any client, then imported
// into the store under name.
func (c *Console) importModel(w http.ResponseWriter, r *http.Request, s *session) {
	if !rootOnly(w, s) {
		return
	}
	var in struct{ S3URI, Name string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "ValidationException", "The body must be {\"s3Uri\": URI, \"name\": NAME}.")
		return
	}
	bucket, key, ok := strings.Cut(strings.TrimPrefix(in.S3URI, "s3://"), "/")
	if !strings.HasPrefix(in.S3URI, "s3://") || !ok || bucket == "" || key == "" || strings.HasSuffix(key, "/") {
		writeError(w, http.StatusBadRequest, "ValidationException", "s3Uri must name one object: s3://BUCKET/KEY.gguf.")
		return
	}
	if !strings.HasSuffix(strings.ToLower(key), ".gguf") {
		writeError(w, http.StatusBadRequest, "ValidationException", "The console imports single GGUF files (.gguf); import a Hugging Face folder with lathe models import.")
		return
	}
	if in.Name == "" {
		writeError(w, http.StatusBadRequest, "ValidationException", "Give the model a name.")
		return
	}
	if c.cfg.ModelStore == nil {
		writeError(w, http.StatusNotImplemented, "NotImplemented", "This server has no model store.")
		return
	}
	// The object is fetched now, under the request's signature and context, so that a missing
	// object or a denial is this request's answer; the import into the store runs after.
	req, err := c.signed(r, s, http.MethodGet, s3Escape("/"+bucket+"/"+key), "", nil, 0, "s3", "UNSIGNED-PAYLOAD", nil)
	if err != nil {
		c.internal(w, "import", err)
		return
	}
	dir, err := os.MkdirTemp("", "lathe-console-import-")
	if err != nil {
		c.internal(w, "import", err)
		return
	}
	path := filepath.Join(dir, filepath.Base(key))
	f, err := os.Create(path)
	if err != nil {
		os.RemoveAll(dir)
		c.internal(w, "import", err)
		return
	}
	fw := &fileRelay{f: f, h: http.Header{}}
	c.api.ServeHTTP(fw, req)
	if cerr := f.Close(); fw.err == nil {
		fw.err = cerr
	}
	if fw.status >= 300 || fw.err != nil {
		os.RemoveAll(dir)
		if fw.status >= 300 {
			rel := &s3Relay{out: w, h: fw.h, status: fw.status, errBody: &fw.errBody}
			rel.finish()
			return
		}
		c.internal(w, "import", fw.err)
		return
	}
	started := c.start(in.Name, "import", func(ctx context.Context, t *transfer) error {
		defer os.RemoveAll(dir)
		_, err := c.cfg.ModelStore.Import(ctx, path, in.Name)
		return err
	})
	if !started {
		os.RemoveAll(dir)
		writeError(w, http.StatusConflict, "ConflictException", in.Name+" is already being pulled or imported.")
		return
	}
	c.log.Info("console model import", "model", in.Name, "from", in.S3URI, "principal", s.arn)
	writeJSON(w, http.StatusAccepted, map[string]string{"name": in.Name})
}

// fileRelay writes a successful S3 answer to a file and keeps an error's document.
type fileRelay struct {
	f       *os.File
	h       http.Header
	status  int
	errBody bytes.Buffer
	err     error
}

func (w *fileRelay) Header() http.Header { return w.h }
func (w *fileRelay) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
}
func (w *fileRelay) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.status >= 300 {
		return w.errBody.Write(p)
	}
	n, err := w.f.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}
