package server

import (
	"net/http"
	"strings"
	"time"
)

// metricsPath is where Config.Metrics is served. Path-style S3 would read it as the bucket
// "metrics", so that name is reserved: creating it answers BucketAlreadyExists, as S3 does for a
// name another account holds.
const metricsPath = "/metrics"

// reservedBucket reports whether r is a CreateBucket of a name Lathe keeps for itself.
func reservedBucket(r *http.Request) bool {
	return r.Method == http.MethodPut && r.URL.Path == metricsPath && len(subresources(r)) == 0
}

// subresources is the request's query less what does not choose the operation: the SDKs'
// x-id and a presigned URL's signature parameters.
func subresources(r *http.Request) map[string][]string {
	q := r.URL.Query()
	for k := range q {
		if k == "x-id" || strings.HasPrefix(strings.ToLower(k), "x-amz-") || k == "AWSAccessKeyId" || k == "Signature" || k == "Expires" {
			delete(q, k)
		}
	}
	return q
}

func (s *server) writeReservedBucket(w http.ResponseWriter, r *http.Request) {
	s.writeS3Error(w, r, s3Error{Status: http.StatusConflict, Code: "BucketAlreadyExists",
		Message: "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."})
}

// RequestInfo describes one answered request to Config.Observe.
type RequestInfo struct {
	API       string // s3, sagemaker, runtime, openai, lathe, iam, metrics
	Operation string // the SageMaker, runtime, IAM or S3 operation; "" for OpenAI and Lathe's own paths
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
	if which == apiS3 && info.Operation == "" {
		info.Operation = s3Operation(r)
	}
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

// s3Operation names the S3 operation a request is, from its method, path and sub-resources (the
// operations Lathe's S3 API and the SDKs use); "" when it is none of them.
func s3Operation(r *http.Request) string {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := subresources(r)
	has := func(k string) bool { _, ok := q[k]; return ok }
	plain := len(q) == 0
	copySource := r.Header.Get("X-Amz-Copy-Source") != ""
	switch {
	case bucket == "":
		if r.Method == http.MethodGet {
			return "ListBuckets"
		}
	case key == "":
		switch r.Method {
		case http.MethodPut:
			if plain {
				return "CreateBucket"
			}
		case http.MethodDelete:
			if plain {
				return "DeleteBucket"
			}
		case http.MethodHead:
			return "HeadBucket"
		case http.MethodPost:
			if has("delete") {
				return "DeleteObjects"
			}
		case http.MethodGet:
			switch {
			case has("uploads"):
				return "ListMultipartUploads"
			case has("location"):
				return "GetBucketLocation"
			case has("versioning"):
				return "GetBucketVersioning"
			case has("versions"):
				return "ListObjectVersions"
			case len(q["list-type"]) == 1 && q["list-type"][0] == "2":
				return "ListObjectsV2"
			case !has("acl") && !has("policy") && !has("tagging") && !has("cors") && !has("lifecycle"):
				return "ListObjects"
			}
		}
	default:
		switch r.Method {
		case http.MethodPut:
			switch {
			case has("partNumber") && has("uploadId") && copySource:
				return "UploadPartCopy"
			case has("partNumber") && has("uploadId"):
				return "UploadPart"
			case has("tagging"):
				return "PutObjectTagging"
			case copySource:
				return "CopyObject"
			case plain:
				return "PutObject"
			}
		case http.MethodGet:
			switch {
			case has("uploadId"):
				return "ListParts"
			case has("tagging"):
				return "GetObjectTagging"
			case !has("acl") && !has("attributes"):
				return "GetObject"
			}
		case http.MethodHead:
			return "HeadObject"
		case http.MethodDelete:
			if has("uploadId") {
				return "AbortMultipartUpload"
			}
			if !has("tagging") {
				return "DeleteObject"
			}
		case http.MethodPost:
			switch {
			case has("uploads"):
				return "CreateMultipartUpload"
			case has("uploadId"):
				return "CompleteMultipartUpload"
			}
		}
	}
	return ""
}
