// Package console is Lathe's web console: pages served at /console/ from files embedded in the
// binary, and a small JSON API under /console/api/ that the pages call.
//
// The console holds no authority of its own. A browser signs in with an access key id and secret;
// the console keeps them in a server-side session and sends every action the browser asks for to
// the front door in-process as a request signed with those keys, so it is verified, authorized
// (root or IAM user, the user's policies applying) and answered exactly as the same call from an
// SDK would be, denials included. The browser holds only an HttpOnly, SameSite=Strict session
// cookie and a per-session CSRF token that every state-changing call must send in X-CSRF-Token.
package console

import (
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/lathe-ml/lathe/internal/modelstore"
)

//go:embed static
var static embed.FS

// Paths.
const (
	Prefix     = "/console/"
	apiPrefix  = Prefix + "api/"
	cookieName = "lathe_console"
	csrfHeader = "X-CSRF-Token"
)

// Session lifetimes.
const (
	DefaultIdleTimeout = 1 * time.Hour
	DefaultMaxLifetime = 12 * time.Hour
)

// Config configures the console.
type Config struct {
	Region    string // the region the console signs its API calls for
	AccountID string // for the root's ARN when the server has no IAM to ask
	// IdleTimeout ends a session not used for this long; MaxLifetime ends any session this old.
	// Zero means DefaultIdleTimeout, DefaultMaxLifetime.
	IdleTimeout, MaxLifetime time.Duration
	// ModelStore is the base-model store the Models page lists, pulls into and imports into; nil
	// lists no models.
	ModelStore ModelStore
	// PullOptions are the hub's endpoint and token for pulls (empty: HF_ENDPOINT and HF_TOKEN).
	PullOptions modelstore.PullOptions
	Logger      *slog.Logger
	// Now is the clock sessions expire by; nil means time.Now. (API calls are always signed with
	// the real time: the front door checks signatures against its own clock.)
	Now func() time.Time
}

// Console serves the web console.
type Console struct {
	cfg      Config
	log      *slog.Logger
	api      http.Handler
	sessions *sessions
	assets   http.Handler

	mu        sync.Mutex
	transfers map[string]*transfer // model name -> the pull or import the console runs
}

// Handler returns a constructor for server.Config.Console: given the front door, the console's
// handler.
func Handler(cfg Config) func(api http.Handler) http.Handler {
	return func(api http.Handler) http.Handler { return New(cfg, api) }
}

// New returns the console, sending its API calls to api (the front door).
func New(cfg Config, api http.Handler) *Console {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.AccountID == "" {
		cfg.AccountID = "000000000000"
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxLifetime <= 0 {
		cfg.MaxLifetime = DefaultMaxLifetime
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Console{cfg: cfg, log: cfg.Logger, api: api, sessions: newSessions(cfg.Now, cfg.IdleTimeout, cfg.MaxLifetime),
		transfers: map[string]*transfer{}}
	if c.log == nil {
		c.log = slog.Default()
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	c.assets = http.StripPrefix(Prefix+"static/", http.FileServer(http.FS(sub)))
	return c
}

// securityHeaders: the pages load only their own scripts and styles, talk only to this origin,
// and may not be framed.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "+
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
}

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, apiPrefix):
		c.serveAPI(w, r, strings.TrimPrefix(p, apiPrefix))
	case strings.HasPrefix(p, Prefix+"static/"):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "Only GET reads the console's files.")
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		c.assets.ServeHTTP(w, r)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		// Every page is the one document; the script shows the page the fragment names.
		b, err := static.ReadFile("static/index.html")
		if err != nil {
			panic(err)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(b)
	default:
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The console's pages are read with GET.")
	}
}

// serveAPI answers /console/api/<rest>.
func (c *Console) serveAPI(w http.ResponseWriter, r *http.Request, rest string) {
	w.Header().Set("Cache-Control", "no-store")
	if rest == "session" && r.Method == http.MethodPost {
		c.signIn(w, r)
		return
	}
	s := c.session(r)
	if s == nil {
		c.clearCookie(w)
		writeError(w, http.StatusUnauthorized, "NotSignedIn", "Sign in to use the console (the session has ended or never began).")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !sameOrigin(r) || !s.checkCSRF(r.Header.Get(csrfHeader)) {
			writeError(w, http.StatusForbidden, "InvalidCSRFToken",
				"The request has no valid CSRF token in X-CSRF-Token; reload the console and try again.")
			return
		}
	}
	switch {
	case rest == "session":
		switch r.Method {
		case http.MethodGet:
			c.writeSession(w, s)
		case http.MethodDelete:
			c.sessions.remove(s.id)
			c.clearCookie(w)
			w.WriteHeader(http.StatusNoContent)
		default:
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "Use GET, POST or DELETE on the session.")
		}
	case rest == "models" && r.Method == http.MethodGet:
		c.models(w)
	case rest == "models/pull" && r.Method == http.MethodPost:
		c.pull(w, r, s)
	case rest == "models/import" && r.Method == http.MethodPost:
		c.importModel(w, r, s)
	case rest == "permissions" && r.Method == http.MethodGet:
		c.permissions(w, r, s)
	case strings.HasPrefix(rest, "sagemaker/") && r.Method == http.MethodPost:
		c.sageMaker(w, r, s, strings.TrimPrefix(rest, "sagemaker/"))
	case strings.HasPrefix(rest, "s3/") || rest == "s3":
		c.s3(w, r, s)
	case strings.HasPrefix(rest, "invoke/") && r.Method == http.MethodPost:
		name, err := url.PathUnescape(strings.TrimPrefix(rest, "invoke/"))
		if err != nil || name == "" || strings.Contains(name, "/") {
			writeError(w, http.StatusBadRequest, "ValidationException", "The endpoint name in the path is not valid.")
			return
		}
		c.invokeStream(w, r, s, name)
	default:
		writeError(w, http.StatusNotFound, "NotFound", "The console has no API "+r.Method+" "+rest+".")
	}
}

// sameOrigin refuses a request whose Origin (sent by browsers on every cross-origin request and on
// same-origin POSTs) names another site; requests without one (curl, older browsers) rely on the
// CSRF token alone.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	return c.sessions.get(ck.Value)
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, s *session) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.id, Path: Prefix, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(c.cfg.MaxLifetime / time.Second)})
}

func (c *Console) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// sessionInfo is what the page knows about its session: who, the CSRF token it must send, and
// when the session ends if left idle.
type sessionInfo struct {
	Arn         string    `json:"arn"`
	Account     string    `json:"account"`
	UserID      string    `json:"userId"`
	AccessKeyID string    `json:"accessKeyId"`
	Root        bool      `json:"root"`
	CSRFToken   string    `json:"csrfToken"`
	Region      string    `json:"region"`
	Expires     time.Time `json:"expires"`
}

func (c *Console) writeSession(w http.ResponseWriter, s *session) {
	writeJSON(w, http.StatusOK, sessionInfo{Arn: s.arn, Account: s.account, UserID: s.userID, AccessKeyID: s.accessKeyID,
		Root: s.root, CSRFToken: s.csrf, Region: c.cfg.Region, Expires: c.sessions.expiresAt(s)})
}

// signInRequest is the sign-in form.
type signInRequest struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	SessionToken    string `json:"sessionToken"`
}

// signIn checks the keys by calling STS GetCallerIdentity with them through the front door (the
// same signature check and key store as every API call), then starts a session.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	// A cross-site form cannot send JSON without a preflight this server never grants, and the
	// Origin check refuses a cross-site script: no login CSRF.
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || !sameOrigin(r) {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "Sign in with a JSON body from the console's own page.")
		return
	}
	var in signInRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "The sign-in body is not valid JSON.")
		return
	}
	in.AccessKeyID, in.SecretAccessKey, in.SessionToken = strings.TrimSpace(in.AccessKeyID), strings.TrimSpace(in.SecretAccessKey), strings.TrimSpace(in.SessionToken)
	if in.AccessKeyID == "" || in.SecretAccessKey == "" {
		writeError(w, http.StatusBadRequest, "ValidationException", "Enter both the access key ID and the secret access key.")
		return
	}
	s := &session{accessKeyID: in.AccessKeyID, secretAccessKey: in.SecretAccessKey, sessionToken: in.SessionToken}
	id, err := c.identify(r, s)
	if err != nil {
		var apiErr *apiError
		if errors.As(err, &apiErr) {
			c.log.Info("console sign-in refused", "access_key", in.AccessKeyID, "code", apiErr.Code, "status", apiErr.Status)
			status := apiErr.Status
			if status == http.StatusForbidden || status == http.StatusBadRequest {
				status = http.StatusUnauthorized
			}
			writeError(w, status, apiErr.Code, apiErr.Message)
			return
		}
		c.log.Error("console sign-in", "access_key", in.AccessKeyID, "err", err)
		writeError(w, http.StatusInternalServerError, "InternalFailure", "Signing in failed; see the server's log.")
		return
	}
	s.arn, s.account, s.userID = id.Arn, id.Account, id.UserID
	s.root = strings.HasSuffix(id.Arn, ":root")
	if err := c.sessions.add(s); err != nil {
		c.log.Error("console session", "err", err)
		writeError(w, http.StatusInternalServerError, "InternalFailure", "Could not start a session.")
		return
	}
	c.log.Info("console sign-in", "principal", s.arn, "access_key", s.accessKeyID)
	c.setCookie(w, r, s)
	c.writeSession(w, s)
}

// writeError answers in the shape of AWS's JSON errors, which the pages read for every API's.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("X-Amzn-ErrorType", code)
	writeJSON(w, status, map[string]string{"__type": code, "message": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"__type":"InternalFailure","message":"encode"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
