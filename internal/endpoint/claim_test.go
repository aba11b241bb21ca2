package endpoint_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/lathe-ml/lathe/internal/endpoint"
	"github.com/lathe-ml/lathe/internal/endpoint/serving"
	"github.com/lathe-ml/lathe/internal/finetune"
	"github.com/lathe-ml/lathe/internal/store"
	"github.com/lathe-ml/lathe/internal/store/sqlite"
)

// The pods of an endpoint variant's Deployment each take one replica of their variant: unplaced ones
// first, never another variant's or another endpoint's, never a second one, and a dead pod's
// replica once its heartbeat has lapsed.
func TestClaimerTakesOneReplicaOfItsVariant(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lathe.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	spec := []byte(`{"name":"A"}`)
	if err := st.SetReplicas(ctx, "chat", []store.Replica{
		{ID: "chat/A/0-x", Endpoint: "Chat", Variant: "A", Spec: spec},
		{ID: "chat/A/1-x", Endpoint: "Chat", Variant: "A", Spec: spec},
		{ID: "chat/B/0-x", Endpoint: "Chat", Variant: "B", Spec: []byte(`{"name":"B"}`)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetReplicas(ctx, "chatter", []store.Replica{{ID: "chatter/A/0-x", Endpoint: "Chatter", Variant: "A", Spec: spec}}); err != nil {
		t.Fatal(err)
	}
	pod := func(name string) *endpoint.Claimer {
		return &endpoint.Claimer{Replicas: st, Workers: st, Owner: name, Endpoint: "Chat", Variant: "A", WorkerTimeout: time.Minute,
			Logger: slog.New(slog.DiscardHandler)}
	}
	where := func() map[string]string {
		rs, err := st.ListReplicas(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, r := range rs {
			out[r.ID] = r.Worker
		}
		return out
	}
	claim := func(c *endpoint.Claimer) string {
		if err := st.WorkerHeartbeat(ctx, c.Owner, "host", time.Now()); err != nil {
			t.Fatal(err)
		}
		id, err := c.ClaimOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	p1, p2, p3 := pod("pod-1"), pod("pod-2"), pod("pod-3")
	if got := claim(p1); got != "chat/A/0-x" {
		t.Errorf("pod-1 took %q, want chat/A/0-x", got)
	}
	if got := claim(p1); got != "" {
		t.Errorf("pod-1 took %q as well: a pod serves one replica", got)
	}
	if got := claim(p2); got != "chat/A/1-x" {
		t.Errorf("pod-2 took %q, want chat/A/1-x", got)
	}
	if got := claim(p3); got != "" {
		t.Errorf("pod-3 took %q while every replica of Chat/A has a live pod (B and Chatter are not its to take)", got)
	}
	w := where()
	if w["chat/B/0-x"] != "" || w["chatter/A/0-x"] != "" || w["chat/A/0-x"] != "pod-1" || w["chat/A/1-x"] != "pod-2" {
		t.Fatalf("placement %v", w)
	}

	// pod-1 dies (it stops heartbeating and leaves the registry): pod-3 takes its replica.
	if err := st.RemoveWorker(ctx, "pod-1"); err != nil {
		t.Fatal(err)
	}
	if got := claim(p3); got != "chat/A/0-x" {
		t.Errorf("pod-3 took %q after pod-1 died, want its chat/A/0-x", got)
	}
	// A replica the executor marked Failed (its pods cannot run) is nobody's to take.
	if _, err := st.ReportReplica(ctx, "chat/A/1-x", "pod-2", store.ReplicaFailed, "", "CrashLoopBackOff"); err != nil {
		t.Fatal(err)
	}
	if err := st.RemoveWorker(ctx, "pod-2"); err != nil {
		t.Fatal(err)
	}
	if got := claim(pod("pod-4")); got != "" {
		t.Errorf("pod-4 took the failed replica %q", got)
	}
}

// startPod runs, in process, what `lathe worker --endpoint NAME --variant V` runs in an endpoint's
// Kubernetes pod: a replica host and its listener, and a Claimer (which heartbeats as the worker
// called name). It returns the listener's address and a stop func (SIGTERM: the pod goes).
func startPod(t *testing.T, e *env, name, endpointName, variant string) (string, func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	host := endpoint.NewHost(endpoint.HostConfig{Replicas: e.st, Owner: name, Addr: l.Addr().String(),
		DataDir: filepath.Join(t.TempDir(), name), Objects: e.objects, Models: finetune.StoreSource{Store: e.models},
		Interval: 100 * time.Millisecond, AccountID: account, Logger: quiet})
	srv := &http.Server{Handler: host.Handler()}
	go srv.Serve(l)
	c := &endpoint.Claimer{Replicas: e.st, Workers: e.st, Owner: name, Endpoint: endpointName, Variant: variant,
		WorkerTimeout: 3 * time.Second, Interval: 100 * time.Millisecond, Logger: quiet}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { host.Run(ctx); done <- struct{}{} }()
	go func() { c.Run(ctx); done <- struct{}{} }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		<-done
		srv.Close()
	}
	t.Cleanup(stop)
	return l.Addr().String(), stop
}

// ready is the pod's readiness probe: GET /_lathe/ready on its replica listener.
func ready(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + endpoint.ReadyPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Under the Kubernetes executor no API node places replicas: the endpoint's pods claim them. The
// endpoint is InService once its pods serve, the API node routes to them, a dead pod's replica is
// taken over by a new pod, and a pod left without a replica by a scale-down is not Ready.
func TestSelfPlacedReplicasServeFromTheirPods(t *testing.T) {
	ctx := context.Background()
	e := startEnvFleet(t, t.TempDir(), serving.Options{}, true, true)
	if _, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("pods-model"),
		PrimaryContainer: baseModelContainer("raw"), ExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/r")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("pods-config"),
		ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("pods-model"),
			InstanceType: types.ProductionVariantInstanceTypeMlG512xlarge, InitialInstanceCount: aws.Int32(2)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("Pods"),
		EndpointConfigName: aws.String("pods-config")}); err != nil {
		t.Fatal(err)
	}
	// A worker that is not the endpoint's pod (a job's pod heartbeats too) gets nothing.
	if err := e.st.WorkerHeartbeat(ctx, "job-pod", "localhost", time.Now()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	d, err := e.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("Pods")})
	if err != nil {
		t.Fatal(err)
	}
	if d.EndpointStatus != types.EndpointStatusCreating {
		t.Fatalf("Pods is %s with no pod running, want Creating", d.EndpointStatus)
	}
	rs, err := e.st.ListReplicas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Worker != "" {
			t.Fatalf("replica %s placed on %s by the API node; the pods claim them", r.ID, r.Worker)
		}
	}

	a1, _ := startPod(t, e, "pods-a", "Pods", "AllTraffic")
	_, stopB := startPod(t, e, "pods-b", "Pods", "AllTraffic")
	e.waitCurrent(t, "Pods", 2)
	body := `{"inputs":"Once upon a time","parameters":{"max_new_tokens":8}}`
	first, out := invoke(t, e, "Pods", body)
	if aws.ToString(out.InvokedProductionVariant) != "AllTraffic" || first[0].GeneratedText == "" {
		t.Fatalf("InvokeEndpoint answered %+v from %s", first, aws.ToString(out.InvokedProductionVariant))
	}
	if got := ready(t, a1); got != http.StatusOK {
		t.Errorf("pod a serves a replica; its readiness is %d, want 200", got)
	}

	// Pod b dies; pod c, started by the Deployment in its place, takes over b's replica once b's
	// heartbeat is gone.
	stopB()
	c, _ := startPod(t, e, "pods-c", "Pods", "AllTraffic")
	for deadline := time.Now().Add(30 * time.Second); ready(t, c) != http.StatusOK; {
		if time.Now().After(deadline) {
			t.Fatal("pod c never took over the replica of the dead pod b")
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.waitCurrent(t, "Pods", 2)
	if again, _ := invoke(t, e, "Pods", body); again[0].GeneratedText != first[0].GeneratedText {
		t.Errorf("after the takeover Pods answers %q, before %q", again[0].GeneratedText, first[0].GeneratedText)
	}

	// Scaled down to one: one of the pods has no replica left and is not Ready (the one the
	// Deployment's scale-down removes first).
	if _, err := e.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{EndpointName: aws.String("Pods"),
		DesiredWeightsAndCapacities: []types.DesiredWeightAndCapacity{{VariantName: aws.String("AllTraffic"), DesiredInstanceCount: aws.Int32(1)}}}); err != nil {
		t.Fatal(err)
	}
	e.waitCurrent(t, "Pods", 1)
	for deadline := time.Now().Add(30 * time.Second); ; {
		ra, rc := ready(t, a1), ready(t, c)
		if ra+rc == http.StatusOK+http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the scale-down to 1, readiness of the pods %d and %d, want one 200 and one 503", ra, rc)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rs, err = e.st.ListReplicas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Worker == "job-pod" {
			t.Errorf("replica %s on the job's pod", r.ID)
		}
	}
}
