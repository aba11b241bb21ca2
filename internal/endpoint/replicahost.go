package endpoint

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lathe-ml/lathe/internal/endpoint/openai"
	"github.com/lathe-ml/lathe/internal/endpoint/runtime"
	"github.com/lathe-ml/lathe/internal/endpoint/serving"
	"github.com/lathe-ml/lathe/internal/store"
)

// HostConfig wires a ReplicaHost.
type HostConfig struct {
	Replicas store.Replicas
	Owner    string // the worker's id, as its heartbeat registers it
	Addr     string // HOST:PORT where API nodes reach Handler
	DataDir  string // replicas/<id>/ holds each replica's downloaded model
	Objects  Objects
	Models   ModelSource // may be nil: then only model artifacts in S3 can be served
	Serving  serving.Options
	// Interval is how often the worker looks for replicas placed on it; default 1 s.
	Interval  time.Duration
	AccountID string
	Logger    *slog.Logger
}

// ReplicaHost is a worker's side of endpoint replicas: it loads the replicas the API nodes place on
// this worker, reports them Ready with the address of its listener, serves InvokeEndpoint for them
// (Handler), and unloads those taken away (the endpoint deleted or updated, or the replica placed
// elsewhere after this worker was taken for dead).
type ReplicaHost struct {
	cfg HostConfig
	log *slog.Logger

	mu     sync.Mutex
	loaded map[string]*hostReplica // by replica id
	secret []byte                  // the fleet's replica secret, once read (mu)
	wg     sync.WaitGroup
}

type hostReplica struct {
	spec   string // the Spec it was loaded from
	name   string // the endpoint's name as created
	engine *serving.Engine
	cancel context.CancelFunc // stops the load in progress
}

// drainGrace is how long an unloaded replica still admits the calls routed to it just before.
const drainGrace = time.Second

// NewHost returns a host; Run does the work.
func NewHost(cfg HostConfig) *ReplicaHost {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &ReplicaHost{cfg: cfg, log: cfg.Logger, loaded: map[string]*hostReplica{}}
}

// Run follows the replicas placed on this worker until ctx ends, then unloads them all.
func (h *ReplicaHost) Run(ctx context.Context) error {
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	defer h.closeAll()
	for {
		if err := h.sync(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("endpoint replicas", "worker", h.cfg.Owner, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (h *ReplicaHost) closeAll() {
	h.mu.Lock()
	for id, r := range h.loaded {
		r.cancel()
		if r.engine != nil {
			r.engine.Close()
		}
		delete(h.loaded, id)
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// sync starts loading the replicas newly placed here and unloads those no longer here.
func (h *ReplicaHost) sync(ctx context.Context) error {
	all, err := h.cfg.Replicas.ListReplicas(ctx)
	if err != nil {
		return err
	}
	mine := map[string]store.Replica{}
	for _, r := range all {
		if r.Worker == h.cfg.Owner {
			mine[r.ID] = r
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var stillReady []string
	for id, lr := range h.loaded {
		if r, ok := mine[id]; ok && string(r.Spec) == lr.spec {
			if lr.engine != nil && (r.State != store.ReplicaReady || r.Addr != h.cfg.Addr) {
				// Placed away and back between two rounds (Pending again, its address cleared),
				// while it stayed loaded here: report it ready again.
				stillReady = append(stillReady, id)
			}
			continue
		}
		h.log.Info("endpoint replica unloaded", "replica", id, "worker", h.cfg.Owner)
		lr.cancel()
		if eng := lr.engine; eng != nil {
			// Calls already running finish; a call that found the engine just before it left the map
			// still starts (the grace), rather than failing on a closed engine.
			go func() {
				time.Sleep(drainGrace)
				eng.Drain()
			}()
		}
		delete(h.loaded, id)
	}
	for _, id := range stillReady {
		if _, err := h.cfg.Replicas.ReportReplica(ctx, id, h.cfg.Owner, store.ReplicaReady, h.cfg.Addr, ""); err != nil {
			h.log.Warn("report endpoint replica", "replica", id, "err", err)
		}
	}
	for id, r := range mine {
		if _, ok := h.loaded[id]; ok || r.State == store.ReplicaFailed {
			continue
		}
		lctx, cancel := context.WithCancel(ctx)
		lr := &hostReplica{spec: string(r.Spec), name: r.Endpoint, cancel: cancel}
		h.loaded[id] = lr
		h.wg.Add(1)
		go h.load(lctx, r, lr)
	}
	return nil
}

// load loads one replica and reports it Ready (or Failed).
func (h *ReplicaHost) load(ctx context.Context, r store.Replica, lr *hostReplica) {
	defer h.wg.Done()
	var v variantSpec
	err := json.Unmarshal(r.Spec, &v)
	var eng *serving.Engine
	if err == nil {
		dir := filepath.Join(h.cfg.DataDir, "replicas", strings.ReplaceAll(r.ID, "/", "_"))
		if mkErr := os.MkdirAll(filepath.Dir(dir), 0o755); mkErr != nil {
			err = mkErr
		} else {
			eng, err = loadModel(ctx, h.cfg.Objects, h.cfg.Models, h.cfg.Serving, v, dir)
		}
	}
	h.mu.Lock()
	current := h.loaded[r.ID] == lr && ctx.Err() == nil
	if current && err == nil {
		lr.engine = eng
	}
	h.mu.Unlock()
	if !current {
		if eng != nil {
			eng.Close()
		}
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err != nil {
		h.log.Warn("endpoint replica failed to load", "replica", r.ID, "worker", h.cfg.Owner, "err", err)
		if _, rerr := h.cfg.Replicas.ReportReplica(rctx, r.ID, h.cfg.Owner, store.ReplicaFailed, "", err.Error()); rerr != nil {
			h.log.Error("report endpoint replica", "replica", r.ID, "err", rerr)
		}
		h.mu.Lock()
		if h.loaded[r.ID] == lr {
			delete(h.loaded, r.ID) // placed again (Pending), it is loaded again
		}
		h.mu.Unlock()
		return
	}
	ok, rerr := h.cfg.Replicas.ReportReplica(rctx, r.ID, h.cfg.Owner, store.ReplicaReady, h.cfg.Addr, "")
	if rerr != nil {
		h.log.Error("report endpoint replica", "replica", r.ID, "err", rerr)
	}
	if ok {
		h.log.Info("endpoint replica ready", "replica", r.ID, "endpoint", r.Endpoint, "worker", h.cfg.Owner, "addr", h.cfg.Addr)
	}
	// Not ok: it was placed elsewhere meanwhile; the next sync unloads it.
}

// ReadyPath answers 200 once a replica is loaded on the host (503 before): the readiness probe of
// an endpoint's pod, so that its Deployment counts a pod available only once it serves, and a pod
// left with no replica is the first one a scale-down removes.
const ReadyPath = "/_lathe/ready"

// Serving is how many replicas are loaded here and serve.
func (h *ReplicaHost) Serving() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, lr := range h.loaded {
		if lr.engine != nil {
			n++
		}
	}
	return n
}

// fleetSecret returns the fleet's replica secret, reading it from the store the first time.
func (h *ReplicaHost) fleetSecret(ctx context.Context) ([]byte, error) {
	h.mu.Lock()
	secret := h.secret
	h.mu.Unlock()
	if secret != nil {
		return secret, nil
	}
	secret, err := h.cfg.Replicas.ReplicaSecret(ctx)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.secret = secret
	h.mu.Unlock()
	return secret, nil
}

// Handler serves InvokeEndpoint[WithResponseStream] and the OpenAI completions for the replicas
// loaded here, the replica named by the ReplicaHeader the API node sets; 503 for one not (or no
// longer) loaded here, so that the API node tries another. Only the API nodes of the fleet are
// served: a call must carry the replica's bearer token (replicaToken), else it is refused with 403.
func (h *ReplicaHost) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == ReadyPath && r.Method == http.MethodGet {
			// A pod's readiness probe: it says only whether a replica serves here.
			if h.Serving() == 0 {
				http.Error(w, "no endpoint replica is loaded here", http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, "ok\n")
			return
		}
		id := r.Header.Get(ReplicaHeader)
		secret, err := h.fleetSecret(r.Context())
		if err != nil {
			h.log.Error("read the fleet's replica secret", "err", err)
			fleetError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The worker cannot check calls now.")
			return
		}
		token := replicaToken(secret, id)
		auth, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(auth), []byte(token)) != 1 {
			h.log.Warn("replica call refused: no valid fleet token", "replica", id, "remote", r.RemoteAddr)
			fleetError(w, http.StatusForbidden, "AccessDeniedException",
				"The replica listener serves the API nodes of its fleet only: the call has no valid replica token.")
			return
		}
		h.mu.Lock()
		lr := h.loaded[id]
		var t runtime.Target
		if lr != nil && lr.engine != nil {
			_, rest, _ := strings.Cut(id, "/")
			variant, _, _ := strings.Cut(rest, "/")
			t = runtime.Target{Engine: lr.engine, Variant: variant}
		}
		h.mu.Unlock()
		if t.Engine == nil {
			fleetError(w, http.StatusServiceUnavailable, "ServiceUnavailable", fmt.Sprintf("Replica %q is not served by this worker.", id))
			return
		}
		router := fixedRouter{t: t, name: lr.name}
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			oai, err := openai.New(openai.Config{Router: router, APIKey: token, Logger: h.log})
			if err != nil {
				fleetError(w, http.StatusInternalServerError, "InternalFailure", err.Error())
				return
			}
			oai.ServeHTTP(w, r)
			return
		}
		runtime.New(runtime.Config{Router: router, AccountID: h.cfg.AccountID, Logger: h.log}).ServeHTTP(w, r)
	})
}

// fixedRouter routes every call to one replica's model.
type fixedRouter struct {
	t    runtime.Target
	name string
}

func (f fixedRouter) Route(string, string) (runtime.Target, error) { return f.t, nil }

func (f fixedRouter) InService() []string { return []string{f.name} }
