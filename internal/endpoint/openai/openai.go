// Package openai serves Lathe's endpoints over the OpenAI API on the same port as SageMaker's:
// GET /v1/models, POST /v1/completions and POST /v1/chat/completions (model = the endpoint's name;
// "stream": true answers with server-sent events), so the official OpenAI clients work against
// base_url http://HOST:PORT/v1.
//
// Requests carry "Authorization: Bearer <key>" with the key Lathe issues: LATHE_OPENAI_API_KEY when
// set, else the one in <dataDir>/openai-key, generated at the first start (LoadOrCreateKey).
//
// Chat messages are rendered the way the endpoint's model was fine-tuned (its chat template, or the
// plain instruction template for one user message to a base model); /v1/completions continues the
// prompt text as given.
package openai

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/endpoint/runtime"
)

// EnvAPIKey sets the bearer key instead of <dataDir>/openai-key.
const EnvAPIKey = "LATHE_OPENAI_API_KEY"

// KeyFile is the key's file name inside the data dir.
const KeyFile = "openai-key"

// LoadOrCreateKey returns the OpenAI API key: LATHE_OPENAI_API_KEY, else <dataDir>/openai-key, else a
// new random "sk-lathe-..." key written there (mode 0600); created is true only then, so the caller
// prints it once.
func LoadOrCreateKey(dataDir string) (key string, created bool, err error) {
	if k := os.Getenv(EnvAPIKey); k != "" {
		return k, false, nil
	}
	path := filepath.Join(dataDir, KeyFile)
	if b, err := os.ReadFile(path); err == nil {
		if k := strings.TrimSpace(string(b)); k != "" {
			return k, false, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("read OpenAI API key: %w", err)
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", false, err
	}
	key = "sk-lathe-" + hex.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("write OpenAI API key: %w", err)
	}
	return key, true, nil
}

// Router finds endpoints (endpoint.Service implements it).
type Router interface {
	runtime.Router
	// InService lists the endpoints that serve requests now.
	InService() []string
}

// Config configures the handler.
type Config struct {
	Router Router
	APIKey string // required
	Logger *slog.Logger
	Now    func() time.Time
}

// New returns the handler for /v1/.
func New(cfg Config) (http.Handler, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("openai: an API key is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &handler{cfg: cfg}, nil
}

type handler struct{ cfg Config }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(auth)), []byte(h.cfg.APIKey)) != 1 {
		msg := "Incorrect API key provided. Lathe's key is LATHE_OPENAI_API_KEY or the openai-key file in its data dir."
		if !ok {
			msg = "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'; Lathe's key is LATHE_OPENAI_API_KEY or the openai-key file in its data dir."
		}
		writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "", msg)
		return
	}
	switch path := strings.TrimSuffix(r.URL.Path, "/"); {
	case path == "/v1/models" && r.Method == http.MethodGet:
		h.models(w)
	case strings.HasPrefix(path, "/v1/models/") && r.Method == http.MethodGet:
		h.model(w, strings.TrimPrefix(path, "/v1/models/"))
	case path == "/v1/completions" && r.Method == http.MethodPost:
		h.completions(w, r)
	case path == "/v1/chat/completions" && r.Method == http.MethodPost:
		h.chatCompletions(w, r)
	default:
		writeError(w, http.StatusNotFound, "invalid_request_error", "unknown_url", "",
			fmt.Sprintf("Unknown request URL: %s %s.", r.Method, r.URL.Path))
	}
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (h *handler) models(w http.ResponseWriter) {
	names := h.cfg.Router.InService()
	slices.Sort(names)
	data := make([]modelObject, len(names))
	for i, n := range names {
		data[i] = modelObject{ID: n, Object: "model", Created: 0, OwnedBy: "lathe"}
	}
	writeJSON(w, map[string]any{"object": "list", "data": data})
}

func (h *handler) model(w http.ResponseWriter, name string) {
	if slices.Contains(h.cfg.Router.InService(), name) {
		writeJSON(w, modelObject{ID: name, Object: "model", OwnedBy: "lathe"})
		return
	}
	modelNotFound(w, name)
}

func modelNotFound(w http.ResponseWriter, name string) {
	writeError(w, http.StatusNotFound, "invalid_request_error", "model_not_found", "model",
		fmt.Sprintf("The model `%s` does not exist or you do not have access to it. Models are Lathe endpoints that are InService.", name))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, typ, code, param, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var p, c any
	if param != "" {
		p = param
	}
	if code != "" {
		c = code
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": p, "code": c}})
}
