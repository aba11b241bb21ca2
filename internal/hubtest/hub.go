// Package hubtest serves model repositories from a local folder the way the Hugging Face hub serves
// them (the three routes Lathe's model store uses, see internal/modelstore/hub.go), and writes tiny
// random models of each family in exact Hugging Face layout, so that a real `lathe serve` can pull a
// catalog name (tiiuae/falcon-7b-instruct, google/flan-t5-large, ...) with HF_ENDPOINT pointed at it.
// The end-to-end script runs it (scripts/testhub); nothing here is used by the product.
package hubtest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// commit is the one revision every repository has.
const commit = "0123456789abcdef0123456789abcdef01234567"

// Hub serves root/<owner>/<name>/<files> as hub repositories owner/name.
type Hub struct{ Root string }

func hubError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Error-Code", code)
	w.Header().Set("X-Error-Message", msg)
	http.Error(w, msg, status)
}

func (h Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	api := strings.HasPrefix(p, "api/models/")
	parts := strings.SplitN(strings.TrimPrefix(p, "api/models/"), "/", 5)
	if len(parts) < 4 || strings.Contains(p, "..") {
		hubError(w, http.StatusNotFound, "EntryNotFound", "no such route")
		return
	}
	repo, kind, rev := parts[0]+"/"+parts[1], parts[2], parts[3]
	rest := ""
	if len(parts) == 5 {
		rest = parts[4]
	}
	dir := filepath.Join(h.Root, filepath.FromSlash(repo))
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		hubError(w, http.StatusUnauthorized, "RepoNotFound", "Repository not found")
		return
	}
	if rev != "main" && rev != commit {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	switch {
	case api && kind == "revision":
		_ = json.NewEncoder(w).Encode(map[string]any{"id": repo, "sha": commit})
	case api && kind == "tree":
		h.tree(w, dir, rest)
	case !api && kind == "resolve":
		w.Header().Set("X-Repo-Commit", commit)
		http.ServeFile(w, r, filepath.Join(dir, filepath.FromSlash(rest)))
	default:
		hubError(w, http.StatusNotFound, "EntryNotFound", "no such route")
	}
}

// tree lists a repository's files (all of them, one page) with the hub's ids: the git blob sha1, and
// for weights the LFS sha256 the store checks downloads against.
func (h Hub) tree(w http.ResponseWriter, dir, sub string) {
	type lfs struct {
		OID  string `json:"oid"`
		Size int    `json:"size"`
	}
	type entry struct {
		Type string `json:"type"`
		OID  string `json:"oid"`
		Size int    `json:"size"`
		Path string `json:"path"`
		LFS  *lfs   `json:"lfs,omitempty"`
	}
	var out []entry
	err := filepath.WalkDir(filepath.Join(dir, filepath.FromSlash(sub)), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		g := sha1.New()
		fmt.Fprintf(g, "blob %d\x00", len(b))
		g.Write(b)
		e := entry{Type: "file", OID: hex.EncodeToString(g.Sum(nil)), Size: len(b), Path: filepath.ToSlash(rel)}
		if strings.HasSuffix(path, ".safetensors") {
			s := sha256.Sum256(b)
			e.LFS = &lfs{OID: hex.EncodeToString(s[:]), Size: len(b)}
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		hubError(w, http.StatusNotFound, "EntryNotFound", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
