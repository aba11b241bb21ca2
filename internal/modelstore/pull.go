package modelstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lathe-ml/lathe/internal/catalog"
)

// DefaultEndpoint is the Hugging Face hub.
const DefaultEndpoint = "https://huggingface.co"

// PullOptions configure a download from the Hugging Face hub.
type PullOptions struct {
	Endpoint string // hub URL; "" means $HF_ENDPOINT, or DefaultEndpoint when that is unset
	Token    string // bearer token for gated and private repositories; "" means $HF_TOKEN (or $HUGGING_FACE_HUB_TOKEN)
	Revision string // branch, tag or commit; "" means main
	// Progress, when set, is called as bytes arrive with the bytes on disk and the total of the
	// files being pulled. It is called from the pulling goroutine.
	Progress func(done, total int64)
	// Client makes the requests; nil means a client built on http.DefaultTransport.
	Client *http.Client
	// StallTimeout abandons (and retries) a request that receives nothing for this long; 0 means 60s.
	StallTimeout time.Duration
}

func (o PullOptions) withDefaults() PullOptions {
	if o.Endpoint == "" {
		o.Endpoint = os.Getenv("HF_ENDPOINT")
	}
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}
	o.Endpoint = strings.TrimRight(o.Endpoint, "/")
	if o.Token == "" {
		o.Token = os.Getenv("HF_TOKEN")
	}
	if o.Token == "" {
		o.Token = os.Getenv("HUGGING_FACE_HUB_TOKEN") // the older name, still honoured by huggingface_hub
	}
	if o.Revision == "" {
		o.Revision = "main"
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = 60 * time.Second
	}
	return o
}

// HubSource names what to download from the hub.
type HubSource struct {
	Repo string // repository, e.g. HuggingFaceTB/SmolLM2-135M
	File string // one file inside Repo for a GGUF model; empty for a Hugging Face directory
}

// SourceFor is where a catalog model's weights are on the hub.
func SourceFor(m catalog.Model) HubSource { return HubSource{Repo: m.HubRepo, File: m.HubFile} }

// PullError is a download that failed, with advice on what to do instead. It unwraps to the
// cause (ErrGated, ErrChecksum, a network error, ...).
type PullError struct {
	Name       string // model name in the store
	Endpoint   string // hub the download was tried from
	NotInStore bool   // the download was needed because the store lacked the model (Ensure)
	Advice     string // what to run instead
	Err        error
}

func (e *PullError) Error() string {
	what := "model " + e.Name + " could not be downloaded"
	if e.NotInStore {
		what = "model " + e.Name + " is not in the model store and could not be downloaded"
	}
	return fmt.Sprintf("%s from %s (%v): %s", what, e.Endpoint, e.Err, e.Advice)
}

func (e *PullError) Unwrap() error { return e.Err }

func pullError(name string, src HubSource, endpoint string, err error) error {
	local := "/path/to/" + path.Base(src.Repo)
	if src.File != "" {
		local = "/path/to/" + path.Base(src.File)
	}
	importCmd := fmt.Sprintf("run \"lathe models import %s --name %s\"", local, name)
	advice := importCmd + " or set HF_ENDPOINT to a mirror"
	switch {
	case errors.Is(err, ErrGated):
		advice = fmt.Sprintf("the repository %s is gated or private: accept its licence at %s/%s and set HF_TOKEN to a token of that account, or %s", src.Repo, endpoint, src.Repo, importCmd)
	case errors.Is(err, errRepoNotFound):
		advice = fmt.Sprintf("check the repository name %s (if it is private, set HF_TOKEN), or %s", src.Repo, importCmd)
	case errors.Is(err, ErrChecksum):
		advice = "run the pull again, or " + importCmd
	}
	return &PullError{Name: name, Endpoint: endpoint, Advice: advice, Err: err}
}

// Ensure returns the catalog model from the store, pulling it from the hub first when the store
// does not have it. Concurrent calls for one model download it once. A failed download returns a
// *PullError whose message says what to run instead.
func (s *Store) Ensure(ctx context.Context, m catalog.Model, opts PullOptions) (Entry, error) {
	if e, err := s.Get(m.Name); err == nil || !errors.Is(err, ErrNotFound) {
		return e, err
	}
	e, err := s.Pull(ctx, m.Name, SourceFor(m), opts)
	if errors.Is(err, ErrExists) {
		return s.Get(m.Name) // another process or goroutine pulled or imported it meanwhile
	}
	var pe *PullError
	if errors.As(err, &pe) {
		pe.NotInStore = true
	}
	return e, err
}

// Pull downloads a model from the hub into the store under name. Files land in
// <store>/.downloads/<name>/ first, where an interrupted pull resumes; every file is checked
// against the hub's sha256 (LFS files) or git blob id (small files) before the folder is renamed
// into the store. Only one process pulls a given name at a time; a pull of a model already in the
// store fails with ErrExists. Download failures are *PullError.
func (s *Store) Pull(ctx context.Context, name string, src HubSource, opts PullOptions) (Entry, error) {
	if err := checkName(name); err != nil {
		return Entry{}, err
	}
	if !repoRE.MatchString(src.Repo) || strings.Contains(src.Repo, "..") {
		return Entry{}, fmt.Errorf("pull %s: invalid hub repository %q", name, src.Repo)
	}
	if src.File != "" && (path.IsAbs(src.File) || path.Clean(src.File) != src.File || strings.HasPrefix(src.File, "..")) {
		return Entry{}, fmt.Errorf("pull %s: invalid file %q in %s", name, src.File, src.Repo)
	}
	if _, err := s.Get(name); err == nil {
		return Entry{}, fmt.Errorf("pull %s: %w", name, ErrExists)
	}
	opts = opts.withDefaults()

	downloads := filepath.Join(s.root, downloadsDir)
	if err := os.MkdirAll(downloads, 0o755); err != nil {
		return Entry{}, fmt.Errorf("pull %s: %w", name, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(downloads, name+".lock"))
	if err != nil {
		return Entry{}, fmt.Errorf("pull %s: %w", name, err)
	}
	defer unlock()
	if _, err := s.Get(name); err == nil {
		return Entry{}, fmt.Errorf("pull %s: %w", name, ErrExists) // pulled while we waited for the lock
	}

	e, err := s.pull(ctx, name, src, opts, filepath.Join(downloads, name))
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, ErrExists) {
			return Entry{}, err
		}
		return Entry{}, pullError(name, src, opts.Endpoint, err)
	}
	return e, nil
}

func (s *Store) pull(ctx context.Context, name string, src HubSource, opts PullOptions, dir string) (Entry, error) {
	h := &hubClient{endpoint: opts.Endpoint, token: opts.Token, client: opts.Client, stall: opts.StallTimeout}
	commit, err := h.commit(ctx, src.Repo, opts.Revision)
	if err != nil {
		return Entry{}, fmt.Errorf("resolve %s@%s: %w", src.Repo, opts.Revision, err)
	}
	listDir := ""
	if src.File != "" && path.Dir(src.File) != "." {
		listDir = path.Dir(src.File)
	}
	tree, err := h.list(ctx, src.Repo, commit, listDir)
	if err != nil {
		return Entry{}, fmt.Errorf("list files of %s@%s: %w", src.Repo, opts.Revision, err)
	}
	byName := map[string]remoteFile{}
	var names []string
	for _, t := range tree {
		base := path.Base(t.Path)
		byName[base] = t.remote()
		names = append(names, base)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Entry{}, err
	}

	var total int64
	var mu sync.Mutex
	var base, current int64 // bytes of finished files, bytes of the file in flight
	report := func(n int64) {
		if opts.Progress == nil {
			return
		}
		mu.Lock()
		current = n
		done := base + current
		mu.Unlock()
		opts.Progress(done, total)
	}
	sha := map[string]string{}
	fetch := func(file string) error {
		f := byName[file]
		sum, err := h.download(ctx, src.Repo, commit, f, filepath.Join(dir, file), report)
		if err != nil {
			return err
		}
		sha[file] = sum
		mu.Lock()
		base += f.size
		current = 0
		mu.Unlock()
		return nil
	}

	format := FormatHF
	var files []string
	if src.File != "" {
		format = FormatGGUF
		if _, ok := byName[path.Base(src.File)]; !ok {
			return Entry{}, fmt.Errorf("%s has no file %s at revision %s", src.Repo, src.File, opts.Revision)
		}
		files = []string{path.Base(src.File)}
	} else {
		files, err = selectHFFiles(names, func() ([]string, error) {
			// The index says which shards to fetch, so it comes first.
			total = byName[safetensorsIx].size
			if err := fetch(safetensorsIx); err != nil {
				return nil, err
			}
			data, err := os.ReadFile(filepath.Join(dir, safetensorsIx))
			if err != nil {
				return nil, err
			}
			return indexShards(data)
		})
		if err != nil {
			return Entry{}, fmt.Errorf("%s@%s: %w", src.Repo, opts.Revision, err)
		}
	}
	total = 0
	for _, f := range files {
		total += byName[f].size
	}
	mu.Lock()
	base, current = 0, 0 // the index, if fetched above, is counted again (verified on disk) below
	mu.Unlock()
	if err := removeOthers(dir, files); err != nil {
		return Entry{}, err
	}

	entry := Entry{
		Name:   name,
		Format: format,
		Source: Source{Endpoint: opts.Endpoint, Repo: src.Repo, Revision: commit, File: src.File},
	}
	for _, file := range files {
		if err := fetch(file); err != nil {
			return Entry{}, err
		}
		entry.Files = append(entry.Files, File{Path: file, Size: byName[file].size, SHA256: sha[file]})
	}
	if entry.Architecture, err = architecture(dir, entry); err != nil {
		return Entry{}, fmt.Errorf("%s: %w", src.Repo, err)
	}
	entry.Added = time.Now().UTC()
	return entry, s.commit(dir, entry)
}

// removeOthers deletes files a previous, different pull left in the download folder (parts of
// files this pull does not want), so the folder holds exactly the model when it is renamed.
func removeOthers(dir string, keep []string) error {
	dirents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, d := range dirents {
		name := d.Name()
		kept := false
		for _, k := range keep {
			if name == k || name == k+".part" {
				kept = true
			}
		}
		if !kept {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}
