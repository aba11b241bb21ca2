package server

import (
	"net/http"
	"time"
)

// metricsPath is where Config.Metrics is served. Path-style S3 would read it as the bucket
// "metrics", so that name is reserved: creating it answers BucketAlreadyExists, as S3 does for a
// name another account holds.
const metricsPath = "/metrics"

// reservedBucket reports whether r is a CreateBucket of a name Lathe keeps for itself.
func reservedBucket(r *http.Request) bool {
	return r.Method == http.MethodPut && r.URL.Path == metricsPath && r.URL.RawQuery == ""
}

func (s *server) writeReservedBucket(w http.ResponseWriter, r *http.Request) {
	s.writeS3Error(w, r, s3Error{Status: http.StatusConflict, Code: "BucketAlreadyExists",
		Message: "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."})
}

// RequestInfo describes one answered request to Config.Observe.
type RequestInfo struct {
	API       string // s3, sagemaker, runtime, openai, lathe, iam, metrics
	Operation string // the SageMaker, runtime or IAM operation; "" for S3 and OpenAI
	Status    int
	ErrorType string // X-Amzn-ErrorType of a JSON error answer
	Endpoint  string // the endpoint an invocation named
	Duration  time.Duration
}

func (s *server) observe(r *http.Request, rec *recorder, which api, start time.Time) {
	if s.cfg.Observe == nil {
		return
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	info := RequestInfo{API: apiNames[which], Operation: rec.op, Status: status, Duration: time.Since(start)}
	if status >= 400 {
		info.ErrorType = rec.Header().Get("X-Amzn-ErrorType")
	}
	if which == apiRuntime {
		if m := runtimePath.FindStringSubmatch(r.URL.Path); m != nil {
			info.Endpoint = m[1]
		}
	}
	s.cfg.Observe(info)
}

// serveMetrics answers GET /metrics without a signature, as Prometheus scrapes.
func (s *server) serveMetrics(w *recorder, r *http.Request) {
	if s.cfg.Metrics == nil {
		writeJSONError(w, apiLathe, http.StatusNotFound, "NotFound", "This server exports no metrics.")
		return
	}
	s.cfg.Metrics.ServeHTTP(w, r)
}
