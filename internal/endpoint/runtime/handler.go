// Package runtime serves the SageMaker Runtime's InvokeEndpoint and InvokeEndpointWithResponseStream
// for text generation: the Text Generation Inference (TGI) payload in, TGI's answer out, or TGI's
// token stream inside AWS event-stream PayloadPart frames. The front door (package server) has
// already checked the signature and read the body; a Router finds the loaded model.
package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/lathe-ml/lathe/internal/endpoint/serving"
)

// Target is the loaded model that serves one call, and its production variant's name.
type Target struct {
	Engine  *serving.Engine
	Variant string
}

// Router finds the model behind an endpoint name (exact case, as InvokeEndpoint requires).
type Router interface {
	// Route returns the variant targetVariant names, or one the router picks when it is empty.
	// ErrEndpointNotFound when the endpoint does not exist or is not InService.
	Route(endpointName, targetVariant string) (Target, error)
}

// Errors a Router returns.
var (
	ErrEndpointNotFound = errors.New("endpoint not found or not in service")
	ErrVariantNotFound  = errors.New("production variant not found")
)

// Config configures the handler.
type Config struct {
	Router    Router
	AccountID string // for "Endpoint X of account Y not found."
	Logger    *slog.Logger
}

// New returns the handler for POST /endpoints/{name}/invocations[-response-stream].
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &handler{cfg: cfg}
}

type handler struct{ cfg Config }

var invocationPath = regexp.MustCompile(`^/endpoints/([^/]+)/(invocations|invocations-response-stream)$`)

// Header names of the runtime API.
const (
	headerVariant       = "X-Amzn-Invoked-Production-Variant"
	headerTargetVariant = "X-Amzn-Sagemaker-Target-Variant"
	headerErrorType     = "X-Amzn-Errortype"
	headerStreamContent = "X-Amzn-Sagemaker-Content-Type"
)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := invocationPath.FindStringSubmatch(r.URL.Path)
	if m == nil || r.Method != http.MethodPost {
		writeError(w, http.StatusNotFound, "UnknownOperationException", "No operation at "+r.Method+" "+r.URL.Path+".")
		return
	}
	name, stream := m[1], m[2] == "invocations-response-stream"
	target, err := h.cfg.Router.Route(name, r.Header.Get(headerTargetVariant))
	switch {
	case errors.Is(err, ErrVariantNotFound):
		writeError(w, http.StatusBadRequest, "ValidationError",
			fmt.Sprintf("Variant %s not found for endpoint %s of account %s.", r.Header.Get(headerTargetVariant), name, h.cfg.AccountID))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "ValidationError", fmt.Sprintf("Endpoint %s of account %s not found.", name, h.cfg.AccountID))
		return
	}
	body, err := readAll(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "ValidationError", "Could not read the request body: "+err.Error())
		return
	}
	c, err := parseTGI(body)
	if err != nil {
		h.modelError(w, name, target.Variant, err)
		return
	}
	if stream {
		h.stream(w, r, name, target, c)
		return
	}
	gens, err := h.start(r.Context(), target, c)
	if err != nil {
		h.startError(w, name, target.Variant, err)
		return
	}
	done := make([]generation, len(gens))
	for i, g := range gens {
		res, err := g.gen.Wait(r.Context())
		if err != nil {
			for _, g := range gens[i:] {
				g.gen.Cancel()
			}
			if r.Context().Err() != nil {
				return // the client went away; its generations are cancelled
			}
			h.generationError(w, name, target.Variant, err)
			return
		}
		done[i] = generation{res, g.seed}
	}
	out := make([]tgiOutput, len(c.inputs))
	for i, in := range c.inputs {
		out[i] = c.output(in, done[i*c.bestOf:(i+1)*c.bestOf], target.Engine)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(headerVariant, target.Variant)
	// A single input is answered with a list of one, as SageMaker's TGI containers do.
	_, _ = io.WriteString(w, marshalText(out))
}

// started is one admitted generation and the seed it samples with.
type started struct {
	gen  *serving.Generation
	seed uint64
}

// start admits best_of generations per input, input by input; on any failure the ones already
// admitted are cancelled.
func (h *handler) start(ctx context.Context, t Target, c *call) ([]started, error) {
	if limit := t.Engine.ContextLen() - 1; c.hasTruncate && (c.truncate <= 0 || limit > 0 && c.truncate > limit) {
		return nil, &serving.InputError{Msg: fmt.Sprintf("`truncate` must be strictly positive and less than %d. Given: %d", limit, c.truncate)}
	}
	// A request that needs more generations than the engine ever admits is refused for good (400):
	// a 429 would have the SDKs retry it forever.
	if n, limit := len(c.inputs)*c.bestOf, t.Engine.Capacity(); n > limit {
		return nil, &tooLarge{fmt.Sprintf("The request asks for %d generations (inputs × best_of); this endpoint takes at most %d in one request.", n, limit)}
	}
	var gens []started
	fail := func(err error) ([]started, error) {
		for _, g := range gens {
			g.gen.Cancel()
		}
		return nil, err
	}
	for i, in := range c.inputs {
		prompt, err := t.Engine.Prompt(in)
		if err != nil {
			return fail(err)
		}
		for k := range c.bestOf {
			opt := c.opt
			// The items of one call, and best_of's candidates, sample differently, reproducibly.
			opt.Seed += uint64(i*c.bestOf + k)
			g, err := t.Engine.StartTruncated(ctx, prompt, c.truncate, opt)
			if err != nil {
				return fail(err)
			}
			gens = append(gens, started{g, opt.Seed})
		}
	}
	return gens, nil
}

// tooLarge is a request that can never be admitted (more generations than the engine's capacity).
type tooLarge struct{ msg string }

func (e *tooLarge) Error() string { return e.msg }

// startError answers a generation that could not start: a full queue (429, the SDKs retry it), an
// input the model cannot take (424), an endpoint unloaded meanwhile (400 as a missing endpoint).
func (h *handler) startError(w http.ResponseWriter, name, variant string, err error) {
	var inErr *serving.InputError
	var big *tooLarge
	switch {
	case errors.As(err, &big):
		writeError(w, http.StatusBadRequest, "ValidationError", big.msg)
	case errors.Is(err, serving.ErrBusy):
		writeError(w, http.StatusTooManyRequests, "ThrottlingException",
			fmt.Sprintf("Endpoint %s has too many requests in flight; retry later.", name))
	case errors.As(err, &inErr):
		h.modelError(w, name, variant, invalid("%s", inErr.Msg))
	case errors.Is(err, serving.ErrClosed):
		writeError(w, http.StatusBadRequest, "ValidationError", fmt.Sprintf("Endpoint %s of account %s not found.", name, h.cfg.AccountID))
	default:
		h.generationError(w, name, variant, err)
	}
}

func (h *handler) generationError(w http.ResponseWriter, name, variant string, err error) {
	var inErr *serving.InputError
	if errors.As(err, &inErr) {
		h.modelError(w, name, variant, invalid("%s", inErr.Msg))
		return
	}
	if errors.Is(err, serving.ErrClosed) {
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The endpoint was updated or deleted while the request ran; retry.")
		return
	}
	h.cfg.Logger.Error("generation failed", "endpoint", name, "variant", variant, "err", err)
	h.modelError(w, name, variant, &modelFailure{msg: err.Error()})
}

// modelFailure is an error inside the model server (TGI's 500).
type modelFailure struct{ msg string }

func (e *modelFailure) Error() string { return e.msg }

// modelError answers as SageMaker does when the container rejects a request: 424 ModelError carrying
// the container's status and body.
func (h *handler) modelError(w http.ResponseWriter, name, variant string, err error) {
	status, kind := http.StatusUnprocessableEntity, "validation"
	var fail *modelFailure
	if errors.As(err, &fail) {
		status, kind = http.StatusInternalServerError, "generation"
	}
	orig := marshalText(map[string]string{"error": err.Error(), "error_type": kind})
	class := "client"
	if status >= 500 {
		class = "server"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(headerErrorType, "ModelError")
	w.WriteHeader(http.StatusFailedDependency)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"ErrorCode":          fmt.Sprintf("%s_ERROR_FROM_MODEL", map[string]string{"client": "CLIENT", "server": "SERVER"}[class]),
		"Message":            fmt.Sprintf("Received %s error (%d) from %s with message \"%s\". See the Lathe server log for more information.", class, status, variant, orig),
		"OriginalStatusCode": status,
		"OriginalMessage":    orig,
	})
}

// marshalText is JSON without HTML escaping (a model's message may hold < and >).
func marshalText(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(headerErrorType, code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"ErrorCode": code, "Message": msg})
}

// readAll reads the body the front door already bounded (MaxRuntimeBody).
func readAll(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, maxBody+1))
}

// maxBody is InvokeEndpoint's payload limit (the front door enforces it first).
const maxBody = 6291456
