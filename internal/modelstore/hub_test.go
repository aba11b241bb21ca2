package modelstore

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lathe-ml/lathe/internal/catalog"
)

func init() { retryBackoff = time.Millisecond } // keep retries quick in tests

func lookup(t *testing.T, name string) catalog.Model {
	t.Helper()
	m, ok := catalog.Lookup(name)
	if !ok {
		t.Fatalf("catalog has no %s", name)
	}
	return m
}

// storiesHub serves the catalog's source of Stories260K (ggml-org/models) with the real file.
func storiesHub(t *testing.T) (*fakeHub, []byte) {
	t.Helper()
	data, err := os.ReadFile(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	h := newFakeHub(t)
	h.add("ggml-org/models", &fakeRepo{files: map[string][]byte{
		"README.md":                   []byte("models for tests"),
		"tinyllamas/stories260K.gguf": data,
		"tinyllamas/stories15M.gguf":  []byte("GGUF another model"),
		"bert/model.gguf":             []byte("GGUF"),
	}})
	return h, data
}

// progressLog records Progress calls.
type progressLog struct {
	mu               sync.Mutex
	calls            int
	lastDone, lastOf int64
}

func (p *progressLog) record(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	p.lastDone, p.lastOf = done, total
}

func TestPullGGUFFromCatalog(t *testing.T) {
	h, _ := storiesHub(t)
	s := openStore(t)
	var prog progressLog
	e, err := s.Ensure(context.Background(), lookup(t, "Stories260K"), PullOptions{Endpoint: h.URL, Progress: prog.record})
	if err != nil {
		t.Fatal(err)
	}
	if e.Format != FormatGGUF || e.Architecture != "llama" || len(e.Files) != 1 || e.Files[0].SHA256 != storiesSHA256 {
		t.Errorf("entry %+v, want the llama GGUF with sha256 %s", e, storiesSHA256)
	}
	wantSrc := Source{Endpoint: h.URL, Repo: "ggml-org/models", Revision: h.repos["ggml-org/models"].commit, File: "tinyllamas/stories260K.gguf"}
	if e.Source != wantSrc {
		t.Errorf("source %+v, want %+v", e.Source, wantSrc)
	}
	p, err := s.Path("Stories260K")
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(p); err != nil || sha(data) != storiesSHA256 {
		t.Errorf("file at %s is not the model (%v)", p, err)
	}
	if prog.calls == 0 || prog.lastDone != storiesSize || prog.lastOf != storiesSize {
		t.Errorf("progress: %d calls, last %d/%d; want it to end at %d/%d", prog.calls, prog.lastDone, prog.lastOf, storiesSize, storiesSize)
	}
	if got := h.requestsFor("stories15M"); len(got) != 0 {
		t.Errorf("downloaded a file it did not need: %v", got)
	}
	if got := h.requestsFor("/tree/"); len(got) != 1 || !strings.Contains(got[0], "/tree/"+wantSrc.Revision+"/tinyllamas") {
		t.Errorf("listing requests %v, want one listing of tinyllamas/ at the resolved commit", got)
	}
	if got := h.requestsFor("/resolve/" + wantSrc.Revision + "/tinyllamas/stories260K.gguf"); len(got) != 1 {
		t.Errorf("resolve requests %v, want one at the resolved commit", got)
	}
	if left, _ := os.ReadDir(filepath.Join(s.Dir(), downloadsDir, "Stories260K")); len(left) != 0 {
		t.Errorf("download folder left behind with %d files", len(left))
	}

	// In the store now: Ensure answers without the network.
	before := len(h.requestsFor(""))
	if _, err := s.Ensure(context.Background(), lookup(t, "Stories260K"), PullOptions{Endpoint: h.URL}); err != nil {
		t.Fatal(err)
	}
	if after := len(h.requestsFor("")); after != before {
		t.Errorf("Ensure of a stored model made %d requests", after-before)
	}
	if _, err := s.Pull(context.Background(), "Stories260K", SourceFor(lookup(t, "Stories260K")), PullOptions{Endpoint: h.URL}); !errors.Is(err, ErrExists) {
		t.Errorf("Pull of a stored model: %v, want ErrExists", err)
	}
}

func TestPullHFDirectory(t *testing.T) {
	files := hfModel()
	files["onnx/model.safetensors"] = safetensors("x", 9) // a duplicate in a sub-folder
	files["model-q4.gguf"] = []byte("GGUF quantised duplicate")
	h := newFakeHub(t)
	h.add("HuggingFaceTB/SmolLM2-135M", &fakeRepo{files: files})
	s := openStore(t)
	var prog progressLog
	m := lookup(t, "SmolLM2-135M")
	e, err := s.Pull(context.Background(), m.Name, SourceFor(m), PullOptions{Endpoint: h.URL, Progress: prog.record})
	if err != nil {
		t.Fatal(err)
	}
	if e.Format != FormatHF || e.Architecture != "llama" || !sameSet(fileNames(e), hfWanted) {
		t.Fatalf("entry %+v, want an hf llama model with %v", e, hfWanted)
	}
	var total int64
	dir, _ := s.Path(m.Name)
	for _, f := range e.Files {
		total += f.Size
		if f.SHA256 != sha(files[f.Path]) {
			t.Errorf("%s: manifest sha256 %s, want %s", f.Path, f.SHA256, sha(files[f.Path]))
		}
		if data, err := os.ReadFile(filepath.Join(dir, f.Path)); err != nil || sha(data) != sha(files[f.Path]) {
			t.Errorf("%s on disk differs from the hub's (%v)", f.Path, err)
		}
	}
	for _, unwanted := range []string{"pytorch_model.bin", "README.md", "onnx", "model-q4.gguf"} {
		if got := h.requestsFor("/resolve/main/" + unwanted); len(got) != 0 {
			t.Errorf("downloaded %s: %v", unwanted, got)
		}
		if got := h.requestsFor("/resolve/" + e.Source.Revision + "/" + unwanted); len(got) != 0 {
			t.Errorf("downloaded %s: %v", unwanted, got)
		}
	}
	if got := h.requestsFor("/tree/"); len(got) < 3 {
		t.Errorf("the listing spans several pages, but only %d were fetched: %v", len(got), got)
	}
	if prog.lastDone != total || prog.lastOf != total {
		t.Errorf("progress ended at %d/%d, want %d/%d", prog.lastDone, prog.lastOf, total, total)
	}
}

func TestPullGatedRepository(t *testing.T) {
	tests := []struct {
		name      string
		token     string // PullOptions.Token
		envToken  string // HF_TOKEN
		wantGated bool
	}{
		{"no token", "", "", true},
		{"wrong token", "hf_wrong", "", true},
		{"token option", "hf_good", "", false},
		{"HF_TOKEN from the environment", "", "hf_good", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HF_TOKEN", tc.envToken)
			h := newFakeHub(t)
			h.add("meta-llama/Llama-2-7b-hf", &fakeRepo{files: hfModel(), token: "hf_good"})
			s := openStore(t)
			_, err := s.Ensure(context.Background(), lookup(t, "Llama2-7B"), PullOptions{Endpoint: h.URL, Token: tc.token})
			if !tc.wantGated {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.Get("Llama2-7B"); err != nil {
					t.Error(err)
				}
				return
			}
			var pe *PullError
			if !errors.Is(err, ErrGated) || !errors.As(err, &pe) {
				t.Fatalf("error %v, want a PullError wrapping ErrGated", err)
			}
			for _, want := range []string{"is not in the model store", "gated or private", "HF_TOKEN", h.URL + "/meta-llama/Llama-2-7b-hf", `lathe models import /path/to/Llama-2-7b-hf --name Llama2-7B`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestPullHonoursHFEndpoint(t *testing.T) {
	h, _ := storiesHub(t)
	t.Setenv("HF_ENDPOINT", h.URL+"/")
	e, err := openStore(t).Ensure(context.Background(), lookup(t, "Stories260K"), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Source.Endpoint != h.URL {
		t.Errorf("endpoint %q, want %q", e.Source.Endpoint, h.URL)
	}
}

func TestPullRefusesCorruptBytes(t *testing.T) {
	flip := func(b []byte) []byte { // same length, different bytes
		out := append([]byte(nil), b...)
		out[len(out)-1] ^= 0xff
		return out
	}
	files := hfModel()
	tests := []struct {
		name string
		file string
	}{
		{"LFS file whose sha256 differs from its oid", "model-00002-of-00002.safetensors"},
		{"git file whose bytes differ from its blob id", "config.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHub(t)
			h.add("HuggingFaceTB/SmolLM2-135M", &fakeRepo{files: hfModel(), tamper: map[string][]byte{tc.file: flip(files[tc.file])}})
			s := openStore(t)
			m := lookup(t, "SmolLM2-135M")
			_, err := s.Pull(context.Background(), m.Name, SourceFor(m), PullOptions{Endpoint: h.URL})
			if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), tc.file) || !strings.Contains(err.Error(), "do not match") {
				t.Fatalf("error %v, want ErrChecksum naming %s", err, tc.file)
			}
			if _, err := s.Get(m.Name); !errors.Is(err, ErrNotFound) {
				t.Errorf("a failed pull left a model: %v", err)
			}
			for _, p := range []string{tc.file, tc.file + ".part"} {
				if _, err := os.Stat(filepath.Join(s.Dir(), downloadsDir, m.Name, p)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the corrupt %s was kept (%v)", p, err)
				}
			}
		})
	}
}

func TestPullResumesAfterDroppedConnection(t *testing.T) {
	const shard = "model-00001-of-00002.safetensors"
	half := len(hfModel()[shard]) / 2
	tests := []struct {
		name       string
		repo       fakeRepo
		stall      time.Duration
		wantRanges []string // Range headers of the requests for the shard, in order
	}{
		{"cut halfway", fakeRepo{cut: map[string]int{shard: 1}}, 0, []string{"", fmt.Sprintf("bytes=%d-", half)}},
		{"cut twice", fakeRepo{cut: map[string]int{shard: 2}}, 0, []string{"", fmt.Sprintf("bytes=%d-", half), fmt.Sprintf("bytes=%d-", half)}},
		{"server ignores Range", fakeRepo{cut: map[string]int{shard: 1}, noRange: true}, 0, []string{"", fmt.Sprintf("bytes=%d-", half)}},
		{"stalled halfway", fakeRepo{stall: map[string]int{shard: 1}}, time.Second, []string{"", fmt.Sprintf("bytes=%d-", half)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHub(t)
			tc.repo.files = hfModel()
			h.add("HuggingFaceTB/SmolLM2-135M", &tc.repo)
			s := openStore(t)
			m := lookup(t, "SmolLM2-135M")
			var prog progressLog
			e, err := s.Pull(context.Background(), m.Name, SourceFor(m), PullOptions{Endpoint: h.URL, Progress: prog.record, StallTimeout: tc.stall})
			if err != nil {
				t.Fatal(err)
			}
			dir, _ := s.Path(m.Name)
			if data, err := os.ReadFile(filepath.Join(dir, shard)); err != nil || sha(data) != sha(hfModel()[shard]) {
				t.Errorf("resumed shard differs from the hub's (%v)", err)
			}
			if got := rangesOf(h.requestsFor("/cdn/HuggingFaceTB/SmolLM2-135M/" + shard)); !slices.Equal(got, tc.wantRanges) {
				t.Errorf("shard requests had ranges %q, want %q", got, tc.wantRanges)
			}
			if prog.lastDone != e.Size() || prog.lastOf != e.Size() {
				t.Errorf("progress ended at %d/%d, want %d/%d", prog.lastDone, prog.lastOf, e.Size(), e.Size())
			}
		})
	}
}

func TestPullResumesInALaterRun(t *testing.T) {
	const shard = "model-00002-of-00002.safetensors"
	h := newFakeHub(t)
	repo := h.add("HuggingFaceTB/SmolLM2-135M", &fakeRepo{files: hfModel(), cut: map[string]int{shard: maxAttempts}})
	s := openStore(t)
	m := lookup(t, "SmolLM2-135M")
	_, err := s.Pull(context.Background(), m.Name, SourceFor(m), PullOptions{Endpoint: h.URL})
	if err == nil || !strings.Contains(err.Error(), "gave up after") {
		t.Fatalf("error %v, want the download to give up", err)
	}
	half := len(repo.files[shard]) / 2
	part := filepath.Join(s.Dir(), downloadsDir, m.Name, shard+".part")
	if info, err := os.Stat(part); err != nil || info.Size() != int64(half) {
		t.Fatalf("partial file %s: %v, want %d bytes kept for the next run", part, err, half)
	}

	// The next run (a restarted process) resumes from the bytes on disk.
	before := len(h.requestsFor(shard))
	s2, _ := Open(s.Dir())
	if _, err := s2.Pull(context.Background(), m.Name, SourceFor(m), PullOptions{Endpoint: h.URL}); err != nil {
		t.Fatal(err)
	}
	got := rangesOf(h.requestsFor("/cdn/HuggingFaceTB/SmolLM2-135M/" + shard))
	if want := fmt.Sprintf("bytes=%d-", half); len(h.requestsFor(shard)) != before+2 || got[len(got)-1] != want {
		t.Errorf("the second run asked with ranges %q, want one request with %q", got, want)
	}
	// Files finished in the first run were not fetched again.
	if n := len(h.requestsFor("/cdn/HuggingFaceTB/SmolLM2-135M/model-00001-of-00002.safetensors")); n != 1 {
		t.Errorf("the finished shard was downloaded %d times, want 1", n)
	}
}

func TestPullFailures(t *testing.T) {
	closed := httptest.NewServer(nil)
	closed.Close()
	tests := []struct {
		name     string
		model    string
		endpoint func(t *testing.T) string
		want     []string
	}{
		{"hub unreachable", "Stories260K", func(*testing.T) string { return closed.URL }, []string{
			"model Stories260K is not in the model store and could not be downloaded from " + closed.URL + " (",
			"connection refused",
			`): run "lathe models import /path/to/stories260K.gguf --name Stories260K" or set HF_ENDPOINT to a mirror`,
		}},
		{"repository missing", "Qwen2-5-0-5BInstruct", func(t *testing.T) string { h, _ := storiesHub(t); return h.URL }, []string{
			"Repository not found", "check the repository name Qwen/Qwen2.5-0.5B-Instruct (if it is private, set HF_TOKEN)",
			`lathe models import /path/to/Qwen2.5-0.5B-Instruct --name Qwen2-5-0-5BInstruct`,
		}},
		{"file missing from the repository", "Stories260K", func(t *testing.T) string {
			h := newFakeHub(t)
			h.add("ggml-org/models", &fakeRepo{files: map[string][]byte{"tinyllamas/other.gguf": []byte("GGUF")}})
			return h.URL
		}, []string{"ggml-org/models has no file tinyllamas/stories260K.gguf"}},
		{"not a model directory", "SmolLM2-135M", func(t *testing.T) string {
			h := newFakeHub(t)
			h.add("HuggingFaceTB/SmolLM2-135M", &fakeRepo{files: map[string][]byte{"config.json": []byte(`{"model_type":"llama"}`), "pytorch_model.bin": []byte("x")}})
			return h.URL
		}, []string{"no *.safetensors weights"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			_, err := s.Ensure(context.Background(), lookup(t, tc.model), PullOptions{Endpoint: tc.endpoint(t)})
			var pe *PullError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a PullError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestPullRevision(t *testing.T) {
	h, _ := storiesHub(t)
	m := lookup(t, "Stories260K")
	_, err := openStore(t).Pull(context.Background(), m.Name, SourceFor(m), PullOptions{Endpoint: h.URL, Revision: "v9"})
	if err == nil || !strings.Contains(err.Error(), "Invalid rev id: v9") {
		t.Errorf("unknown revision: %v", err)
	}
	commit := h.repos["ggml-org/models"].commit
	e, err := openStore(t).Pull(context.Background(), m.Name, SourceFor(m), PullOptions{Endpoint: h.URL, Revision: commit})
	if err != nil || e.Source.Revision != commit {
		t.Errorf("pull at a commit: %+v, %v", e.Source, err)
	}
}

func TestConcurrentEnsureDownloadsOnce(t *testing.T) {
	h, _ := storiesHub(t)
	s := openStore(t)
	m := lookup(t, "Stories260K")
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s2, _ := Open(s.Dir())
			_, errs[i] = s2.Ensure(context.Background(), m, PullOptions{Endpoint: h.URL})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := len(h.requestsFor("/cdn/ggml-org/models/tinyllamas/stories260K.gguf")); n != 1 {
		t.Errorf("the model was downloaded %d times, want once", n)
	}
}

func TestPullCancelled(t *testing.T) {
	h, _ := storiesHub(t)
	h.repos["ggml-org/models"].stall = map[string]int{"tinyllamas/stories260K.gguf": 1}
	ctx, cancel := context.WithCancel(context.Background())
	s := openStore(t)
	_, err := s.Pull(ctx, "Stories260K", SourceFor(lookup(t, "Stories260K")), PullOptions{Endpoint: h.URL, Progress: func(done, total int64) {
		if done > 0 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	var pe *PullError
	if errors.As(err, &pe) {
		t.Errorf("a cancelled pull is not a download failure with advice: %v", err)
	}
}

func rangesOf(requests []string) []string {
	var out []string
	for _, r := range requests {
		_, after, _ := strings.Cut(r, "range=")
		rng, _, _ := strings.Cut(after, " ")
		out = append(out, rng)
	}
	return out
}
