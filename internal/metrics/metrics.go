// Package metrics is what `lathe serve` exposes at /metrics in Prometheus' text format: HTTP
// requests by API, endpoint invocations and their latency, errors, and the job queue read from the
// metadata store at scrape time (jobs by status, queue depth and wait, training tokens/s).
//
// Request metrics are counted by this process; job metrics are the store's, so every process
// sharing one database reports the same job figures.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lathe-ml/lathe/internal/store"
)

// Request is one answered HTTP request, as the front door saw it.
type Request struct {
	API       string // s3, sagemaker, runtime, openai, iam, lathe
	Operation string // e.g. CreateAutoMLJobV2, InvokeEndpoint; "" when the API does not name one
	Status    int
	// ErrorType is the AWS error type of an error answer (X-Amzn-ErrorType), when known.
	ErrorType string
	// Endpoint is the SageMaker endpoint an InvokeEndpoint call named; "" for other requests.
	Endpoint string
	Duration time.Duration
}

// Latency buckets, in seconds: control-plane calls take milliseconds, generations seconds.
var (
	httpBuckets     = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	endpointBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
)

// Metrics holds the process's registry.
type Metrics struct {
	reg    *prometheus.Registry
	labels limiter

	httpRequests     *prometheus.CounterVec
	httpDuration     *prometheus.HistogramVec
	errors           *prometheus.CounterVec
	endpointRequests *prometheus.CounterVec
	endpointDuration *prometheus.HistogramVec
}

// New returns the process's metrics. jobs, when not nil, is read at every scrape for the job
// metrics.
func New(jobs store.Store, logger *slog.Logger) *Metrics {
	if logger == nil {
		logger = slog.Default()
	}
	m := &Metrics{
		reg:    prometheus.NewRegistry(),
		labels: limiter{seen: map[string]map[string]bool{}},
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lathe_http_requests_total",
			Help: "HTTP requests answered, by API, operation and status code.",
		}, []string{"api", "operation", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lathe_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by API.",
			Buckets: httpBuckets,
		}, []string{"api"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lathe_errors_total",
			Help: "Error answers (status 400 and above), by API and AWS error type (or http_<status> when the answer named none).",
		}, []string{"api", "type"}),
		endpointRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lathe_endpoint_requests_total",
			Help: "InvokeEndpoint and InvokeEndpointWithResponseStream calls, by endpoint, operation and status code.",
		}, []string{"endpoint", "operation", "code"}),
		endpointDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lathe_endpoint_request_duration_seconds",
			Help:    "Time to answer an endpoint invocation (to the end of the stream for streaming calls), by endpoint and operation.",
			Buckets: endpointBuckets,
		}, []string{"endpoint", "operation"}),
	}
	m.reg.MustRegister(m.httpRequests, m.httpDuration, m.errors, m.endpointRequests, m.endpointDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if jobs != nil {
		m.reg.MustRegister(&jobCollector{jobs: jobs, log: logger, now: time.Now})
	}
	return m
}

// Observe counts one answered request.
func (m *Metrics) Observe(r Request) {
	// Operation names, error types and endpoint names come from requests, some of them not even
	// signed: each keeps at most maxLabelValues values, so a stream of made-up names cannot grow
	// the registry without bound.
	r.Operation = m.labels.value("operation", r.Operation)
	r.ErrorType = m.labels.value("type", r.ErrorType)
	switch r.Status {
	case 400, 401, 403, 404:
		r.Endpoint = "" // no such endpoint, or a caller it is not for: not the endpoint's traffic
	}
	r.Endpoint = m.labels.value("endpoint", r.Endpoint)
	code := strconv.Itoa(r.Status)
	m.httpRequests.WithLabelValues(r.API, r.Operation, code).Inc()
	m.httpDuration.WithLabelValues(r.API).Observe(r.Duration.Seconds())
	if r.Status >= 400 {
		typ := r.ErrorType
		if typ == "" {
			typ = "http_" + code
		}
		m.errors.WithLabelValues(r.API, typ).Inc()
	}
	if r.Endpoint != "" {
		m.endpointRequests.WithLabelValues(r.Endpoint, r.Operation, code).Inc()
		m.endpointDuration.WithLabelValues(r.Endpoint, r.Operation).Observe(r.Duration.Seconds())
	}
}

// Handler serves the registry in Prometheus' text format (or OpenMetrics, when the scraper asks).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Registry is where other parts of the process may register collectors of their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// scrapeTimeout bounds the store reads of one scrape.
const scrapeTimeout = 10 * time.Second

var (
	jobsDesc = prometheus.NewDesc("lathe_jobs",
		"AutoML jobs in the metadata store, by AutoMLJobStatus.", []string{"status"}, nil)
	queueDepthDesc = prometheus.NewDesc("lathe_job_queue_depth",
		"Jobs waiting for a worker: InProgress or Stopping with no live lease.", nil, nil)
	queueWaitDesc = prometheus.NewDesc("lathe_job_queue_oldest_wait_seconds",
		"How long the oldest job waiting for a worker has waited since it was created; 0 when none waits.", nil, nil)
	tokensDesc = prometheus.NewDesc("lathe_job_training_tokens_per_second",
		"The latest training throughput a running job reported, by job.", []string{"job"}, nil)
	scrapeErrorDesc = prometheus.NewDesc("lathe_job_metrics_scrape_error",
		"1 when the job metrics could not be read from the metadata store at this scrape.", nil, nil)
)

// statuses are the AutoMLJobStatus values, each reported even when no job has it.
var statuses = []string{store.StatusInProgress, store.StatusStopping, store.StatusCompleted, store.StatusFailed, store.StatusStopped}

// jobCollector reads the job metrics from the store when scraped.
type jobCollector struct {
	jobs store.Store
	log  *slog.Logger
	now  func() time.Time
}

func (c *jobCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobsDesc
	ch <- queueDepthDesc
	ch <- queueWaitDesc
	ch <- tokensDesc
	ch <- scrapeErrorDesc
}

func (c *jobCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	s, err := readJobs(ctx, c.jobs, c.now())
	failed := 0.0
	if err != nil {
		// A scrape still answers (with the request metrics) when the database is away; the gauge
		// says the job figures are missing rather than zero.
		c.log.Warn("metrics: read jobs", "err", err)
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrorDesc, prometheus.GaugeValue, failed)
	if err != nil {
		return
	}
	for _, st := range statuses {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(s.byStatus[st]), st)
	}
	ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(s.queued))
	ch <- prometheus.MustNewConstMetric(queueWaitDesc, prometheus.GaugeValue, s.oldestWait.Seconds())
	for job, tps := range s.tokensPerSecond {
		ch <- prometheus.MustNewConstMetric(tokensDesc, prometheus.GaugeValue, tps, job)
	}
}

// maxLabelValues bounds the distinct values of one request-derived label; later ones read "other".
const maxLabelValues = 500

// limiter remembers the values each request-derived label has taken.
type limiter struct {
	mu   sync.Mutex
	seen map[string]map[string]bool
}

func (l *limiter) value(kind, v string) string {
	if v == "" {
		return v
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seen[kind]
	if s == nil {
		s = map[string]bool{}
		l.seen[kind] = s
	}
	if s[v] {
		return v
	}
	if len(s) >= maxLabelValues {
		return "other"
	}
	s[v] = true
	return v
}
