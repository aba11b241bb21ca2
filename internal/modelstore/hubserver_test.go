package modelstore

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHub serves repositories the way the Hugging Face hub does (see hub.go for the API), so the
// pull code runs against real HTTP: paginated tree listings, LFS files behind redirects to a CDN
// path, Range requests, gated repositories, and X-Error-Code headers.
type fakeHub struct {
	*httptest.Server
	pageSize int

	mu       sync.Mutex
	repos    map[string]*fakeRepo
	requests []string // "GET <path> range=<Range> auth=<bool>" in arrival order
}

type fakeRepo struct {
	commit  string
	files   map[string][]byte
	lfs     func(path string) bool // stored in LFS (sha256 oid, redirect to the CDN)
	token   string                 // when set, resolve needs "Bearer <token>" (a gated repo)
	tamper  map[string][]byte      // bytes served instead of the ones the listing describes
	cut     map[string]int         // the next cut[path] downloads send half the bytes, then drop the connection
	stall   map[string]int         // the next stall[path] downloads send half the bytes, then hang
	noRange bool                   // ignore Range headers (answer 200 with the whole file)
}

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{pageSize: 3, repos: map[string]*fakeRepo{}}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Close)
	return h
}

func (h *fakeHub) add(repo string, r *fakeRepo) *fakeRepo {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.commit == "" {
		r.commit = strings.Repeat("c0ffee", 7)[:40]
	}
	if r.lfs == nil {
		r.lfs = func(p string) bool {
			return strings.HasSuffix(p, ".safetensors") || strings.HasSuffix(p, ".gguf") || strings.HasSuffix(p, ".bin")
		}
	}
	h.repos[repo] = r
	return r
}

// requestsFor returns the logged requests whose path contains s.
func (h *fakeHub) requestsFor(s string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.requests {
		if strings.Contains(r, s) {
			out = append(out, r)
		}
	}
	return out
}

func gitBlobSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func hubFail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Error-Code", code)
	w.Header().Set("X-Error-Message", msg)
	http.Error(w, msg, status)
}

func (h *fakeHub) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests = append(h.requests, fmt.Sprintf("GET %s range=%s auth=%t", r.URL.Path, r.Header.Get("Range"), r.Header.Get("Authorization") != ""))
	h.mu.Unlock()

	p := strings.TrimPrefix(r.URL.Path, "/")
	if rest, ok := strings.CutPrefix(p, "cdn/"); ok {
		h.serveCDN(w, r, rest)
		return
	}
	api := strings.HasPrefix(p, "api/models/")
	parts := strings.Split(strings.TrimPrefix(p, "api/models/"), "/")
	if len(parts) < 4 {
		hubFail(w, http.StatusNotFound, "EntryNotFound", "no such route")
		return
	}
	repoName, kind, rev, rest := parts[0]+"/"+parts[1], parts[2], parts[3], strings.Join(parts[4:], "/")
	h.mu.Lock()
	repo := h.repos[repoName]
	h.mu.Unlock()
	if repo == nil {
		hubFail(w, http.StatusUnauthorized, "RepoNotFound", "Repository not found")
		return
	}
	if rev != "main" && rev != repo.commit {
		hubFail(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	switch {
	case api && kind == "revision":
		_ = json.NewEncoder(w).Encode(map[string]any{"id": repoName, "sha": repo.commit, "gated": repo.token != ""})
	case api && kind == "tree":
		h.serveTree(w, r, repo, rest)
	case !api && kind == "resolve":
		h.serveResolve(w, r, repoName, repo, rest)
	default:
		hubFail(w, http.StatusNotFound, "EntryNotFound", "no such route")
	}
}

func (h *fakeHub) serveTree(w http.ResponseWriter, r *http.Request, repo *fakeRepo, dir string) {
	type lfs struct {
		OID         string `json:"oid"`
		Size        int    `json:"size"`
		PointerSize int    `json:"pointerSize"`
	}
	type entry struct {
		Type string `json:"type"`
		OID  string `json:"oid"`
		Size int    `json:"size"`
		Path string `json:"path"`
		LFS  *lfs   `json:"lfs,omitempty"`
	}
	var all []entry
	dirs := map[string]bool{}
	for _, p := range slices.Sorted(maps.Keys(repo.files)) {
		if dir != "" && !strings.HasPrefix(p, dir+"/") {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
		if sub, _, nested := strings.Cut(rel, "/"); nested && r.URL.Query().Get("recursive") != "true" {
			d := path.Join(dir, sub)
			if !dirs[d] {
				dirs[d] = true
				all = append(all, entry{Type: "directory", OID: strings.Repeat("d", 40), Path: d})
			}
			continue
		}
		b := repo.files[p]
		e := entry{Type: "file", OID: gitBlobSHA1(b), Size: len(b), Path: p}
		if repo.lfs(p) {
			oid := sha(b)
			e.LFS = &lfs{OID: oid, Size: len(b), PointerSize: 134}
		}
		all = append(all, e)
	}
	start, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	end := min(start+h.pageSize, len(all))
	if end < len(all) {
		next := *r.URL
		q := next.Query()
		q.Set("cursor", strconv.Itoa(end))
		next.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, next.String()))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(all[start:end])
}

func (h *fakeHub) serveResolve(w http.ResponseWriter, r *http.Request, repoName string, repo *fakeRepo, file string) {
	if repo.token != "" {
		switch r.Header.Get("Authorization") {
		case "":
			hubFail(w, http.StatusUnauthorized, "GatedRepo", "Access to model "+repoName+" is restricted. You must have access to it and be authenticated to access it. Please log in.")
			return
		case "Bearer " + repo.token:
		default:
			hubFail(w, http.StatusForbidden, "GatedRepo", "Access to model "+repoName+" is restricted and you are not in the authorized list.")
			return
		}
	}
	b, ok := repo.files[file]
	if !ok {
		hubFail(w, http.StatusNotFound, "EntryNotFound", "Entry not found")
		return
	}
	w.Header().Set("X-Repo-Commit", repo.commit)
	if repo.lfs(file) {
		// LFS files answer with a redirect to a CDN; the hub's own headers carry the sha256.
		w.Header().Set("X-Linked-Etag", `"`+sha(b)+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(b)))
		w.Header().Set("Location", "/cdn/"+repoName+"/"+file)
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+gitBlobSHA1(b)+`"`)
	h.serveBytes(w, r, repo, file, b)
}

func (h *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.SplitN(rest, "/", 3)
	h.mu.Lock()
	repo := h.repos[parts[0]+"/"+parts[1]]
	h.mu.Unlock()
	w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`) // an S3-style MD5, not the sha256
	h.serveBytes(w, r, repo, parts[2], repo.files[parts[2]])
}

func (h *fakeHub) serveBytes(w http.ResponseWriter, r *http.Request, repo *fakeRepo, file string, b []byte) {
	h.mu.Lock()
	cut, stall := repo.cut[file] > 0, repo.stall[file] > 0
	if cut {
		repo.cut[file]--
	}
	if stall {
		repo.stall[file]--
	}
	h.mu.Unlock()
	if t, ok := repo.tamper[file]; ok {
		b = t
	}
	if repo.noRange {
		r.Header.Del("Range")
	}
	if !cut && !stall {
		http.ServeContent(w, r, file, time.Time{}, bytes.NewReader(b))
		return
	}
	// Promise the whole file, send half of it, then fail.
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b[:len(b)/2])
	w.(http.Flusher).Flush()
	if stall {
		<-r.Context().Done() // hang until the client gives up
		return
	}
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}
