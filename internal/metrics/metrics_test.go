package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lathe-ml/lathe/internal/store"
	"github.com/lathe-ml/lathe/internal/store/sqlite"
	"github.com/lathe-ml/lathe/internal/store/storetest"
)

// scrape GETs the handler as Prometheus does and parses the text format strictly.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s: %s", resp.Status, b)
	}
	if got := expfmt.ResponseFormat(resp.Header); got.FormatType() != expfmt.TypeTextPlain {
		t.Fatalf("Content-Type %q is not Prometheus' text format", resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value returns the value of the sample of family name whose labels include want; the test fails
// when there is not exactly one.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	var found []*dto.Metric
	for _, m := range fams[name].GetMetric() {
		if hasLabels(m, want) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d samples, want 1", name, want, len(found))
	}
	m := found[0]
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	t.Fatalf("%s: unexpected type", name)
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

func TestJobMetricsFromStore(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lathe.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC().Truncate(time.Second)

	// Two jobs run to their end, one runs now and reported its throughput, one waits for a worker.
	finish := func(name, status string) {
		if err := st.CreateJob(ctx, storetest.NewJob(name, now.Add(-time.Hour)), nil); err != nil {
			t.Fatal(err)
		}
		j, err := st.ClaimJob(ctx, "worker-1", time.Hour)
		if err != nil || j == nil || j.Name != name {
			t.Fatalf("claim %s: %v, %v", name, j, err)
		}
		if err := st.FinishJob(ctx, j.Lease(), store.FinalState{Status: status, Secondary: status, Ended: now}); err != nil {
			t.Fatal(err)
		}
	}
	finish("done", store.StatusCompleted)
	finish("broken", store.StatusFailed)
	if err := st.CreateJob(ctx, storetest.NewJob("running", now.Add(-10*time.Minute)), nil); err != nil {
		t.Fatal(err)
	}
	running, err := st.ClaimJob(ctx, "worker-1", time.Hour)
	if err != nil || running == nil {
		t.Fatalf("claim running: %v, %v", running, err)
	}
	progress, _ := json.Marshal(map[string]any{"Phase": "Training", "Step": 3, "TotalSteps": 10, "TokensPerSecond": 1234.5})
	if err := st.SetProgress(ctx, running.Lease(), progress, now); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateJob(ctx, storetest.NewJob("waiting", now.Add(-90*time.Second)), nil); err != nil {
		t.Fatal(err)
	}

	m := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.reg.MustRegister(&jobCollector{jobs: st, log: slog.Default(), now: func() time.Time { return now }})
	fams := scrape(t, m.Handler())

	for status, want := range map[string]float64{"InProgress": 2, "Completed": 1, "Failed": 1, "Stopped": 0, "Stopping": 0} {
		if got := value(t, fams, "lathe_jobs", map[string]string{"status": status}); got != want {
			t.Errorf("lathe_jobs{status=%q} = %v, want %v", status, got, want)
		}
	}
	if got := value(t, fams, "lathe_job_queue_depth", nil); got != 1 {
		t.Errorf("lathe_job_queue_depth = %v, want 1 (the job no worker holds)", got)
	}
	if got := value(t, fams, "lathe_job_queue_oldest_wait_seconds", nil); got != 90 {
		t.Errorf("lathe_job_queue_oldest_wait_seconds = %v, want 90", got)
	}
	if got := value(t, fams, "lathe_job_training_tokens_per_second", map[string]string{"job": "running"}); got != 1234.5 {
		t.Errorf("tokens/s of the running job = %v, want 1234.5", got)
	}
	if n := len(fams["lathe_job_training_tokens_per_second"].GetMetric()); n != 1 {
		t.Errorf("%d tokens/s series, want 1 (only the running job)", n)
	}
	if got := value(t, fams, "lathe_job_metrics_scrape_error", nil); got != 0 {
		t.Errorf("lathe_job_metrics_scrape_error = %v, want 0", got)
	}

	// With the database gone the scrape still answers, and says the job figures are missing.
	st.Close()
	fams = scrape(t, m.Handler())
	if got := value(t, fams, "lathe_job_metrics_scrape_error", nil); got != 1 {
		t.Errorf("lathe_job_metrics_scrape_error after the store closed = %v, want 1", got)
	}
	if _, ok := fams["lathe_jobs"]; ok {
		t.Error("lathe_jobs reported while the store cannot be read")
	}
}

func TestRequestMetrics(t *testing.T) {
	m := New(nil, nil)
	m.Observe(Request{API: "sagemaker", Operation: "CreateAutoMLJobV2", Status: 200, Duration: 3 * time.Millisecond})
	m.Observe(Request{API: "sagemaker", Operation: "DescribeAutoMLJobV2", Status: 400, ErrorType: "ResourceNotFound", Duration: time.Millisecond})
	m.Observe(Request{API: "s3", Status: 404, Duration: time.Millisecond})
	for range 3 {
		m.Observe(Request{API: "runtime", Operation: "InvokeEndpoint", Endpoint: "stories", Status: 200, Duration: 700 * time.Millisecond})
	}
	m.Observe(Request{API: "runtime", Operation: "InvokeEndpoint", Endpoint: "stories", Status: 424, ErrorType: "ModelError", Duration: 40 * time.Second})
	fams := scrape(t, m.Handler())

	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"lathe_http_requests_total", map[string]string{"api": "sagemaker", "operation": "CreateAutoMLJobV2", "code": "200"}, 1},
		{"lathe_http_requests_total", map[string]string{"api": "runtime", "operation": "InvokeEndpoint", "code": "200"}, 3},
		{"lathe_http_request_duration_seconds", map[string]string{"api": "sagemaker"}, 2},
		{"lathe_errors_total", map[string]string{"api": "sagemaker", "type": "ResourceNotFound"}, 1},
		{"lathe_errors_total", map[string]string{"api": "s3", "type": "http_404"}, 1},
		{"lathe_errors_total", map[string]string{"api": "runtime", "type": "ModelError"}, 1},
		{"lathe_endpoint_requests_total", map[string]string{"endpoint": "stories", "code": "200"}, 3},
		{"lathe_endpoint_requests_total", map[string]string{"endpoint": "stories", "code": "424"}, 1},
		{"lathe_endpoint_request_duration_seconds", map[string]string{"endpoint": "stories", "operation": "InvokeEndpoint"}, 4},
	}
	for _, c := range checks {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The latency histogram puts the three 0.7 s calls at or under 1 s and the 40 s one above 30 s.
	h := fams["lathe_endpoint_request_duration_seconds"].GetMetric()[0].GetHistogram()
	for _, b := range h.GetBucket() {
		var want uint64
		switch {
		case b.GetUpperBound() >= 60:
			want = 4
		case b.GetUpperBound() >= 1:
			want = 3
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v holds %d calls, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if h.GetSampleSum() != 3*0.7+40 {
		t.Errorf("latency sum %v, want %v", h.GetSampleSum(), 3*0.7+40)
	}
}

// Names that callers make up (unknown operations, endpoints that do not exist) cannot grow the
// registry without bound, and a refused invocation is not counted as the endpoint's traffic.
func TestRequestLabelsAreBounded(t *testing.T) {
	m := New(nil, nil)
	for i := range maxLabelValues + 100 {
		m.Observe(Request{API: "sagemaker", Operation: fmt.Sprintf("Made.Up%d", i), Status: 400, ErrorType: "UnknownOperationException"})
		m.Observe(Request{API: "runtime", Operation: "InvokeEndpoint", Endpoint: fmt.Sprintf("ep-%d", i), Status: 200})
	}
	m.Observe(Request{API: "runtime", Operation: "InvokeEndpoint", Endpoint: "nosuch", Status: 400, ErrorType: "ValidationError"})
	fams := scrape(t, m.Handler())
	ops := map[string]bool{}
	for _, s := range fams["lathe_http_requests_total"].GetMetric() {
		for _, l := range s.GetLabel() {
			if l.GetName() == "operation" {
				ops[l.GetValue()] = true
			}
		}
	}
	// InvokeEndpoint took a place first; the other 499 are made-up names, the rest "other".
	if len(ops) != maxLabelValues+1 || !ops["other"] || !ops["InvokeEndpoint"] {
		t.Errorf("%d operation values (other: %v), want %d", len(ops), ops["other"], maxLabelValues+1)
	}
	if got := value(t, fams, "lathe_http_requests_total", map[string]string{"api": "sagemaker", "operation": "other"}); got != 101 {
		t.Errorf("made-up operations beyond the bound: %v, want 101", got)
	}
	if n := len(fams["lathe_endpoint_requests_total"].GetMetric()); n != maxLabelValues+1 {
		t.Errorf("%d endpoint series, want %d", n, maxLabelValues+1)
	}
	if got := value(t, fams, "lathe_endpoint_requests_total", map[string]string{"endpoint": "other"}); got != 100 {
		t.Errorf("endpoints beyond the bound: %v, want 100", got)
	}
	for _, s := range fams["lathe_endpoint_requests_total"].GetMetric() {
		if hasLabels(s, map[string]string{"endpoint": "nosuch"}) {
			t.Error("an invocation of an endpoint that does not exist has a series")
		}
	}
}
