package modelstore

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The Hugging Face hub's HTTP API, as huggingface_hub and huggingface.js use it:
//
//	GET {endpoint}/api/models/{repo}/revision/{revision}  -> {"sha": "<commit>", ...}
//	GET {endpoint}/api/models/{repo}/tree/{revision}[/{dir}] -> [{"type": "file", "path", "size",
//	    "oid": "<git blob sha1>", "lfs": {"oid": "<sha256>", "size", "pointerSize"}}, ...],
//	    paginated with a Link: <...>; rel="next" header
//	GET {endpoint}/{repo}/resolve/{revision}/{path} -> the bytes, often through a redirect to a CDN;
//	    Range requests are honoured; X-Error-Code / X-Error-Message explain failures.

// hubClient talks to one hub endpoint.
type hubClient struct {
	endpoint string
	token    string
	client   *http.Client
	stall    time.Duration
}

// remoteFile is one file to download and what it must hash to.
type remoteFile struct {
	path   string // inside the repository
	size   int64
	sha256 string // LFS oid; empty for files kept in git
	gitOID string // git blob sha1 of a file kept in git
}

type treeEntry struct {
	Type string `json:"type"`
	Path string `json:"path"`
	Size int64  `json:"size"`
	OID  string `json:"oid"`
	LFS  *struct {
		OID  string `json:"oid"`
		Size int64  `json:"size"`
	} `json:"lfs"`
}

func (e treeEntry) remote() remoteFile {
	if e.LFS != nil {
		return remoteFile{path: e.Path, size: e.LFS.Size, sha256: strings.TrimPrefix(e.LFS.OID, "sha256:")}
	}
	return remoteFile{path: e.Path, size: e.Size, gitOID: e.OID}
}

// hubError is a non-success answer from the hub.
type hubError struct {
	url    string
	status int
	code   string // X-Error-Code, e.g. GatedRepo, RepoNotFound, EntryNotFound
	msg    string // X-Error-Message
}

func (e *hubError) Error() string {
	s := fmt.Sprintf("GET %s: %d %s", e.url, e.status, http.StatusText(e.status))
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}

// Unwrap classifies the failure. The hub answers 401 for a repository it will not show, which is
// also how it hides private ones, so RepoNotFound is reported as such, not as gated.
func (e *hubError) Unwrap() error {
	switch {
	case e.code == "RepoNotFound":
		return errRepoNotFound
	case e.status == http.StatusUnauthorized || e.status == http.StatusForbidden || e.code == "GatedRepo":
		return ErrGated
	}
	return nil
}

var errRepoNotFound = errors.New("repository not found")

// retryable reports whether the same request may succeed later.
func (e *hubError) retryable() bool {
	return e.status == http.StatusTooManyRequests || e.status >= 500
}

func newHubError(resp *http.Response) *hubError {
	return &hubError{
		url:    resp.Request.URL.Redacted(),
		status: resp.StatusCode,
		code:   resp.Header.Get("X-Error-Code"),
		msg:    resp.Header.Get("X-Error-Message"),
	}
}

var repoRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$`)

func (h *hubClient) apiURL(repo, kind, revision, dir string) string {
	u := h.endpoint + "/api/models/" + repo + "/" + kind + "/" + url.PathEscape(revision)
	if dir != "" {
		u += "/" + escapePath(dir)
	}
	return u
}

func (h *hubClient) resolveURL(repo, revision, file string) string {
	return h.endpoint + "/" + repo + "/resolve/" + url.PathEscape(revision) + "/" + escapePath(file)
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

func (h *hubClient) get(ctx context.Context, rawURL string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "lathe")
	if h.token != "" {
		// Go's client drops this header when a redirect leaves the hub's domain (the CDN URL is
		// pre-signed), so the token is not leaked to other hosts.
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	return h.client.Do(req)
}

// getJSON fetches one API document, returning the response's Link next URL too.
func (h *hubClient) getJSON(ctx context.Context, rawURL string, v any) (next string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*h.stall)
	defer cancel()
	resp, err := h.get(ctx, rawURL, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", newHubError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return "", fmt.Errorf("GET %s: decode: %w", rawURL, err)
	}
	if n := nextLink(resp.Header.Get("Link")); n != "" {
		ref, err := url.Parse(n)
		if err != nil {
			return "", fmt.Errorf("GET %s: bad Link header: %w", rawURL, err)
		}
		next = resp.Request.URL.ResolveReference(ref).String()
	}
	return next, nil
}

// nextLink returns the rel="next" target of an RFC 8288 Link header.
func nextLink(header string) string {
	for _, link := range strings.Split(header, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(link), ";")
		if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
			continue
		}
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "rel") && strings.Trim(v, `"`) == "next" {
				return target[1 : len(target)-1]
			}
		}
	}
	return ""
}

// commit resolves a branch or tag to the commit the files are then downloaded at, so a pull that
// races a push to the repository still gets one consistent snapshot. A mirror that does not answer
// with a sha leaves the revision as it is.
func (h *hubClient) commit(ctx context.Context, repo, revision string) (string, error) {
	var info struct {
		SHA string `json:"sha"`
	}
	if _, err := h.getJSON(ctx, h.apiURL(repo, "revision", revision, ""), &info); err != nil {
		return "", err
	}
	if info.SHA == "" {
		return revision, nil
	}
	return info.SHA, nil
}

// list returns the files (not directories) directly inside dir ("" for the top) at revision.
func (h *hubClient) list(ctx context.Context, repo, revision, dir string) ([]treeEntry, error) {
	want := "." // path.Dir of a top-level file
	if dir != "" {
		want = dir
	}
	var out []treeEntry
	next := h.apiURL(repo, "tree", revision, dir)
	for pages := 0; next != ""; pages++ {
		if pages == 10000 {
			return nil, fmt.Errorf("list %s: too many pages", repo)
		}
		var page []treeEntry
		n, err := h.getJSON(ctx, next, &page)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if e.Type == "file" && path.Dir(e.Path) == want {
				out = append(out, e)
			}
		}
		next = n
	}
	return out, nil
}

// errStalled cancels a download that received nothing for the stall timeout.
var errStalled = errors.New("download stalled")

// retryBackoff is the pause before a download's second attempt (doubling each time after).
var retryBackoff = 500 * time.Millisecond

const maxAttempts = 4

// download fetches f into dst, resuming from dst+".part" when an earlier attempt (in this or an
// earlier process) left one, and verifies the bytes before renaming the part into place.
// progress receives the number of bytes of f on disk so far.
// It returns the file's sha256.
func (h *hubClient) download(ctx context.Context, repo, revision string, f remoteFile, dst string, progress func(int64)) (string, error) {
	if ok, sum, err := verified(ctx, dst, f, ""); err != nil {
		return "", err
	} else if ok {
		progress(f.size)
		return sum, nil
	}
	part := dst + ".part"
	var lastErr error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(retryBackoff << (attempt - 1)):
			}
		}
		resumed, etag, err := h.fetchPart(ctx, repo, revision, f, part, progress)
		if err == nil {
			ok, sum, verr := verified(ctx, part, f, etag)
			switch {
			case verr != nil:
				return "", verr
			case ok:
				if err := os.Rename(part, dst); err != nil {
					return "", fmt.Errorf("download %s: %w", f.path, err)
				}
				return sum, nil
			}
			_ = os.Remove(part)
			progress(0)
			err = checksumError(f, etag)
			if !resumed {
				return "", err // the server sent these bytes whole: asking again will not help
			}
			// The part may come from another revision or a corrupted earlier run: start over.
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		var he *hubError
		if errors.As(err, &he) && !he.retryable() {
			return "", err
		}
		lastErr = err
	}
	return "", fmt.Errorf("download %s: gave up after %d attempts: %w", f.path, maxAttempts, lastErr)
}

// fetchPart makes one request for the rest of part. It reports whether it appended to bytes an
// earlier attempt left, and the sha256 the hub announced in its ETag, if any.
func (h *hubClient) fetchPart(ctx context.Context, repo, revision string, f remoteFile, part string, progress func(int64)) (resumed bool, etag string, err error) {
	have := int64(0)
	if info, err := os.Stat(part); err == nil {
		have = info.Size()
	}
	if have > f.size {
		have = 0 // longer than the file can be: not ours
	}
	out, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return false, "", fmt.Errorf("download %s: %w", f.path, err)
	}
	defer out.Close()
	if have == f.size {
		return have > 0, "", nil // complete already; verification decides
	}

	reqCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(h.stall, func() { cancel(errStalled) })
	defer watchdog.Stop()

	header := http.Header{}
	if have > 0 {
		header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := h.get(reqCtx, h.resolveURL(repo, revision, f.path), header)
	if err != nil {
		if errors.Is(context.Cause(reqCtx), errStalled) {
			err = fmt.Errorf("%w: no answer in %s: %w", errStalled, h.stall, err)
		}
		return false, "", err
	}
	defer resp.Body.Close()
	etag = hubETag(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		have = 0 // the server ignored the range (or there was none): take the whole file
	case http.StatusPartialContent:
		if start, ok := contentRangeStart(resp.Header.Get("Content-Range")); !ok || start != have {
			// Not the range asked for: discard what we have and let the next attempt start over.
			_ = out.Truncate(0)
			progress(0)
			return false, "", fmt.Errorf("download %s: server answered range %q to a request from byte %d", f.path, resp.Header.Get("Content-Range"), have)
		}
	case http.StatusRequestedRangeNotSatisfiable:
		_ = out.Truncate(0)
		progress(0)
		return false, "", fmt.Errorf("download %s: server refused to resume: %w", f.path, newHubError(resp))
	default:
		return false, "", newHubError(resp)
	}
	if err := out.Truncate(have); err != nil {
		return false, "", fmt.Errorf("download %s: %w", f.path, err)
	}
	if _, err := out.Seek(have, io.SeekStart); err != nil {
		return false, "", fmt.Errorf("download %s: %w", f.path, err)
	}
	progress(have)

	buf := make([]byte, 256<<10)
	done := have
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			watchdog.Reset(h.stall)
			if _, err := out.Write(buf[:n]); err != nil {
				return have > 0, "", fmt.Errorf("download %s: %w", f.path, err)
			}
			done += int64(n)
			progress(done)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if errors.Is(context.Cause(reqCtx), errStalled) {
				rerr = fmt.Errorf("%w: nothing received for %s", errStalled, h.stall)
			}
			return have > 0, "", fmt.Errorf("download %s: after %d of %d bytes: %w", f.path, done, f.size, rerr)
		}
		if done > f.size {
			return have > 0, "", fmt.Errorf("download %s: server sent more than the %d bytes the hub listed", f.path, f.size)
		}
	}
	if err := out.Sync(); err != nil {
		return have > 0, "", fmt.Errorf("download %s: %w", f.path, err)
	}
	return have > 0, etag, nil
}

// hubETag returns the sha256 the hub put in the ETag (or X-Linked-Etag, on the redirect it answers
// for LFS files) of its own response, the first of a redirect chain. A CDN's ETag is something else
// (an MD5, a multipart tag) and is not used.
func hubETag(resp *http.Response) string {
	first := resp
	for first.Request != nil && first.Request.Response != nil {
		first = first.Request.Response
	}
	for _, h := range []string{"X-Linked-Etag", "Etag"} {
		v := strings.Trim(strings.TrimPrefix(first.Header.Get(h), "W/"), `"`)
		if isHex(v, 64) {
			return strings.ToLower(v)
		}
	}
	return ""
}

func contentRangeStart(v string) (int64, bool) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(start, 10, 64)
	return n, err == nil
}

// verified reports whether the file at p has f's size and hashes, and returns its sha256. A
// missing file is not verified.
func verified(ctx context.Context, p string, f remoteFile, etag string) (bool, string, error) {
	info, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	if info.Size() != f.size {
		return false, "", nil
	}
	sums, err := fileSums(ctx, p, f.size)
	if err != nil {
		return false, "", err
	}
	return sums.matches(f, etag), sums.sha256, nil
}

type sums struct{ sha256, gitSHA1 string }

func (s sums) matches(f remoteFile, etag string) bool {
	if f.sha256 != "" && !strings.EqualFold(s.sha256, f.sha256) {
		return false
	}
	if isHex(f.gitOID, 40) && !strings.EqualFold(s.gitSHA1, f.gitOID) {
		return false
	}
	return etag == "" || strings.EqualFold(s.sha256, etag)
}

// fileSums hashes a file as sha256 (the LFS oid) and as a git blob (the oid of files kept in git).
func fileSums(ctx context.Context, p string, size int64) (sums, error) {
	in, err := os.Open(p)
	if err != nil {
		return sums{}, err
	}
	defer in.Close()
	h256, h1 := sha256.New(), sha1.New()
	fmt.Fprintf(h1, "blob %d\x00", size)
	if _, err := io.Copy(io.MultiWriter(h256, h1), ctxReader{ctx, in}); err != nil {
		return sums{}, fmt.Errorf("hash %s: %w", p, err)
	}
	return sums{hex.EncodeToString(h256.Sum(nil)), hex.EncodeToString(h1.Sum(nil))}, nil
}

func checksumError(f remoteFile, etag string) error {
	want := f.sha256
	kind := "sha256"
	if want == "" && etag != "" {
		want = etag
	}
	if want == "" {
		want, kind = f.gitOID, "git blob sha1"
	}
	return fmt.Errorf("download %s: %w: the bytes received do not match the hub's %s %s; the partial file was discarded, run the pull again", f.path, ErrChecksum, kind, want)
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
