package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	rttypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"

	"github.com/lathe-ml/lathe/internal/store"
	"github.com/lathe-ml/lathe/internal/store/pgtest"
	"github.com/lathe-ml/lathe/internal/store/postgres"
)

// An endpoint with two instances, created through one of two API-only nodes, is served by replicas
// on workers and described, invoked, updated and deleted through either node (the hosting resources
// are in the shared PostgreSQL database): both replicas on the only worker at first, then spread
// when a second worker joins. 16 clients call it, half through each node, while one worker is
// killed with SIGKILL (each node's router retries the other replica, and the lost replica is placed
// again on the surviving worker) and while UpdateEndpoint rolls the replicas one at a time: no call
// fails. A replica listener refuses calls without the fleet's token, and a job with
// ModelDeployConfig that ran on a worker ends with its endpoint InService on the workers.
func TestEndpointReplicasSurviveAWorker(t *testing.T) {
	ctx := context.Background()
	t.Setenv("LATHE_OPENAI_API_KEY", "sk-fleet-test")
	database := pgtest.Shared(t).NewDatabase(t)
	api := serveNode(t, nil, "api", "--database", database, "--workers", "0", "--worker-timeout", "3s")
	api2 := serveNode(t, nil, "api-2", "--database", database, "--workers", "0", "--worker-timeout", "3s")
	c, c2 := clientsOf(api), clientsOf(api2)
	st, err := postgres.Open(ctx, database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	gguf, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("stories/model.gguf"),
		Body: strings.NewReader(string(gguf))}); err != nil {
		t.Fatal(err)
	}
	w1, id1 := startWorker(t, nil, "worker-1", database, "http://"+api)
	waitWorkers(t, st, 1)

	if _, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("stories"),
		PrimaryContainer: &types.ContainerDefinition{ModelDataUrl: aws.String("s3://models/stories/model.gguf")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("stories-config"),
		ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("stories"),
			InitialInstanceCount: aws.Int32(2), InstanceType: types.ProductionVariantInstanceTypeMlG5Xlarge}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("stories"),
		EndpointConfigName: aws.String("stories-config")}); err != nil {
		t.Fatal(err)
	}
	// The other API node describes the endpoint as the first does, with its current instances.
	waitInstances(t, c2, 2, 2*time.Minute)
	waitInstances(t, c, 2, time.Minute)
	if l, err := c2.sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{}); err != nil || len(l.Endpoints) != 1 ||
		aws.ToString(l.Endpoints[0].EndpointName) != "stories" {
		t.Fatalf("ListEndpoints on the second API node: %+v, %v", l, err)
	}
	if m, err := c2.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("stories")}); err != nil ||
		aws.ToString(m.PrimaryContainer.ModelDataUrl) != "s3://models/stories/model.gguf" {
		t.Fatalf("DescribeModel on the second API node: %+v, %v", m, err)
	}
	// With one worker, both replicas are on it; a second worker takes one of them over.
	waitReplicasOn(t, st, id1, 2, time.Minute)
	_, id2 := startWorker(t, nil, "worker-2", database, "http://"+api)
	waitReplicasOn(t, st, id2, 1, time.Minute)
	waitInstances(t, c, 2, time.Minute)
	placed := replicaWorkers(t, st)
	if len(placed) != 2 || placed[0] == placed[1] || !(placed[0] == id1 || placed[1] == id1) || !(placed[0] == id2 || placed[1] == id2) {
		t.Fatalf("replicas on workers %v, want one on each of %s and %s", placed, id1, id2)
	}

	// A replica listener serves the fleet's API nodes only: a call without their token is refused.
	rs, err := st.ListReplicas(ctx)
	if err != nil || len(rs) == 0 {
		t.Fatalf("replicas: %v, %v", rs, err)
	}
	for _, bearer := range []string{"", "Bearer lathe-replica", "Bearer " + strings.Repeat("0", 64)} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+rs[0].Addr+"/endpoints/stories/invocations",
			strings.NewReader(`{"inputs":"Once upon a time"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Lathe-Replica", rs[0].ID)
		if bearer != "" {
			req.Header.Set("Authorization", bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || strings.Contains(string(b), "generated_text") {
			t.Errorf("a call to the replica listener with Authorization %q: %d %s, want 403", bearer, resp.StatusCode, b)
		}
	}

	// 16 clients, half through each API node, no SDK retries: a failed call is one the router did
	// not save.
	runtimeOf := func(addr string) *sagemakerruntime.Client {
		return sagemakerruntime.NewFromConfig(clientsConfig(), func(o *sagemakerruntime.Options) {
			o.BaseEndpoint = aws.String("http://" + addr)
			o.Retryer = aws.NopRetryer{}
		})
	}
	rts := []*sagemakerruntime.Client{runtimeOf(api), runtimeOf(api2)}
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	fail := func(msg string) {
		failed.Add(1)
		mu.Lock()
		failures = append(failures, msg)
		mu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	defer halt()
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rt := rts[i%2]
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				out, err := rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("stories"),
					ContentType: aws.String("application/json"),
					Body:        fmt.Appendf(nil, `{"inputs":"Once upon a time %d","parameters":{"max_new_tokens":24,"seed":%d}}`, i, n)})
				if err != nil {
					fail(fmt.Sprintf("API node %d: %v", i%2+1, err))
					continue
				}
				if !strings.Contains(string(out.Body), "generated_text") {
					fail("answer without generated_text: " + string(out.Body))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	waitCalls := func(n int64) {
		t.Helper()
		target := ok.Load() + n
		for deadline := time.Now().Add(time.Minute); ok.Load() < target && failed.Load() == 0; {
			if time.Now().After(deadline) {
				t.Fatalf("%d calls answered, %d failed, waiting for %d", ok.Load(), failed.Load(), target)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Kill worker-1 once the clients are well under way.
	waitCalls(40)
	if err := w1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-w1.done
	killOK, killFailed := ok.Load(), failed.Load()
	// The lost replica comes back on worker-2; the clients keep calling meanwhile and after.
	waitReplicasOn(t, st, id2, 2, time.Minute)
	waitInstances(t, c2, 2, time.Minute)
	waitCalls(40)
	list := run(t, nil, "workers", "list", "--database", database)
	listed := false
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[0] == id2 {
			listed = regexp.MustCompile(`^stories/AllTraffic/0-[0-9a-f]{8}\(Ready\),stories/AllTraffic/1-[0-9a-f]{8}\(Ready\)$`).MatchString(f[3])
		}
	}
	if !listed {
		t.Errorf("lathe workers list does not show both replicas on %s:\n%s", id2, list)
	}
	// A third worker joins and takes one of the two replicas over.
	_, id3 := startWorker(t, nil, "worker-3", database, "http://"+api)
	waitReplicasOn(t, st, id3, 1, time.Minute)
	waitInstances(t, c, 2, time.Minute)
	afterKillOK, afterKillFailed := ok.Load(), failed.Load()

	// UpdateEndpoint to another model, through the second API node: its replicas replace the old
	// ones one at a time, each new one ready before an old one goes.
	if _, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("stories-2"),
		PrimaryContainer: &types.ContainerDefinition{ModelDataUrl: aws.String("s3://models/stories/model.gguf")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("stories-config-2"),
		ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("stories-2"),
			InitialInstanceCount: aws.Int32(2), InstanceType: types.ProductionVariantInstanceTypeMlG5Xlarge}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("stories"),
		EndpointConfigName: aws.String("stories-config-2")}); err != nil {
		t.Fatal(err)
	}
	maxReplicas, minReady := 0, 2
	for deadline := time.Now().Add(time.Minute); ; {
		// Sample the rollout: never more than one replica beyond the two, never fewer than two ready.
		if rs, err := st.ListReplicas(ctx); err == nil {
			ready := 0
			for _, r := range rs {
				if r.State == store.ReplicaReady && r.Worker != id1 {
					ready++
				}
			}
			maxReplicas, minReady = max(maxReplicas, len(rs)), min(minReady, ready)
		}
		d, err := c.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("stories")})
		if err != nil {
			t.Fatal(err)
		}
		if d.EndpointStatus == types.EndpointStatusInService && aws.ToString(d.EndpointConfigName) == "stories-config-2" {
			if d.FailureReason != nil {
				t.Fatalf("update failed: %s", aws.ToString(d.FailureReason))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint %s with config %s a minute after UpdateEndpoint", d.EndpointStatus, aws.ToString(d.EndpointConfigName))
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitInstances(t, c2, 2, time.Minute)
	if rs, err := st.ListReplicas(ctx); err != nil || len(rs) != 2 || !strings.Contains(string(rs[0].Spec), "stories-2") ||
		!strings.Contains(string(rs[1].Spec), "stories-2") || rs[0].Worker == rs[1].Worker {
		t.Fatalf("replicas after the update: %+v %v; want two of stories-2 on two workers", rs, err)
	}
	if maxReplicas > 3 || minReady < 2 {
		t.Errorf("during the update: up to %d replicas at once (want at most 3: one new beside the old) and as few as %d ready (want 2)",
			maxReplicas, minReady)
	}
	waitCalls(40)
	halt()
	t.Logf("%d calls from 16 clients through 2 API nodes: %d answered before the kill; kill of a worker and re-placement: %d answered, %d failed; rolling update: %d answered, %d failed; in all %d failed",
		ok.Load()+failed.Load(), killOK, afterKillOK-killOK, afterKillFailed-killFailed, ok.Load()-afterKillOK, failed.Load()-afterKillFailed, failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d calls failed, first: %s", failed.Load(), failures[0])
	}

	// The response stream is routed too, by either node.
	for _, rt := range rts {
		s, err := rt.InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
			EndpointName: aws.String("stories"), ContentType: aws.String("application/json"),
			Body: []byte(`{"inputs":"Once upon a time","parameters":{"max_new_tokens":8}}`)})
		if err != nil {
			t.Fatal(err)
		}
		var streamed strings.Builder
		for ev := range s.GetStream().Events() {
			if p, ok := ev.(*rttypes.ResponseStreamMemberPayloadPart); ok {
				streamed.Write(p.Value.Bytes)
			}
		}
		if err := s.GetStream().Close(); err != nil || s.GetStream().Err() != nil {
			t.Fatalf("stream: %v %v", err, s.GetStream().Err())
		}
		if !strings.Contains(streamed.String(), "generated_text") {
			t.Errorf("stream without generated_text: %q", streamed.String())
		}
		if aws.ToString(s.InvokedProductionVariant) != "AllTraffic" {
			t.Errorf("stream invoked variant %q, want AllTraffic", aws.ToString(s.InvokedProductionVariant))
		}
	}

	// So are the OpenAI completions, streamed or not, after the API node checked the key.
	for _, node := range []string{api, api2} {
		for _, tc := range []struct {
			key, body string
			status    int
			want      string
		}{
			{"sk-fleet-test", `{"model":"stories","prompt":"Once upon a time","max_tokens":8}`, http.StatusOK, `"text_completion"`},
			{"sk-fleet-test", `{"model":"stories","prompt":"Once upon a time","max_tokens":8,"stream":true}`, http.StatusOK, "data: [DONE]"},
			{"sk-wrong", `{"model":"stories","prompt":"Once upon a time","max_tokens":8}`, http.StatusUnauthorized, "invalid_api_key"},
			{"sk-fleet-test", `{"model":"nope","prompt":"Once upon a time"}`, http.StatusNotFound, "model_not_found"},
		} {
			req, _ := http.NewRequest(http.MethodPost, "http://"+node+"/v1/completions", strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+tc.key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
				t.Errorf("POST %s/v1/completions %s with key %s: %d %s, want %d with %s", node, tc.body, tc.key, resp.StatusCode, b, tc.status, tc.want)
			}
		}
	}

	// Deleting the endpoint through the second node takes its replicas off the workers, and the
	// first node no longer knows it.
	if _, err := c2.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("stories")}); err != nil {
		t.Fatal(err)
	}
	if rs, err := st.ListReplicas(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("replicas after DeleteEndpoint: %v, %v", rs, err)
	}
	if _, err := c.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("stories")}); err == nil ||
		!strings.Contains(err.Error(), "Could not find endpoint") {
		t.Errorf("DescribeEndpoint on the first node after the delete on the second: %v, want Could not find endpoint", err)
	}

	// A model the workers cannot load fails the endpoint with the worker's reason, and leaves no
	// replica behind.
	if _, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("missing"),
		PrimaryContainer: &types.ContainerDefinition{ModelDataUrl: aws.String("s3://models/missing/")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("missing-config"),
		ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("missing"),
			InitialInstanceCount: aws.Int32(1), InstanceType: types.ProductionVariantInstanceTypeMlG5Xlarge}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("missing"),
		EndpointConfigName: aws.String("missing-config")}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		d, err := c2.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("missing")})
		if err != nil {
			t.Fatal(err)
		}
		if d.EndpointStatus == types.EndpointStatusFailed {
			if !strings.Contains(aws.ToString(d.FailureReason), "no model data at s3://models/missing/") {
				t.Errorf("FailureReason %q, want the worker's reason", aws.ToString(d.FailureReason))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint of a missing model %s after a minute, want Failed", d.EndpointStatus)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rs, err := st.ListReplicas(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("replicas of a failed endpoint: %v, %v", rs, err)
	}

	// A job with ModelDeployConfig runs on a worker, which creates its endpoint in the shared store
	// with a replica on a worker; both API nodes serve it.
	putDataset(t, c)
	in := jobInput("deployed", "1", "8")
	in.ModelDeployConfig = &types.ModelDeployConfig{AutoGenerateEndpointName: aws.Bool(false), EndpointName: aws.String("tuned")}
	if _, err := c.sm.CreateAutoMLJobV2(ctx, in); err != nil {
		t.Fatal(err)
	}
	d := waitEnded(t, c2, "deployed", 3*time.Minute)
	if d.AutoMLJobStatus != types.AutoMLJobStatusCompleted || d.ModelDeployResult == nil ||
		aws.ToString(d.ModelDeployResult.EndpointName) != "tuned" {
		t.Fatalf("job with ModelDeployConfig: %s (%s), deploy result %+v", d.AutoMLJobStatus, aws.ToString(d.FailureReason), d.ModelDeployResult)
	}
	for i, rt := range rts {
		out, err := rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("tuned"),
			ContentType: aws.String("application/json"), Body: []byte(`{"inputs":"What does animal 3 say?","parameters":{"max_new_tokens":8}}`)})
		if err != nil || !strings.Contains(string(out.Body), "generated_text") {
			t.Errorf("the job's endpoint through API node %d: %v", i+1, err)
		}
	}
	if rs, err := st.ListReplicas(ctx); err != nil || len(rs) != 1 || rs[0].State != store.ReplicaReady ||
		(rs[0].Worker != id2 && rs[0].Worker != id3) {
		t.Errorf("replicas of the job's endpoint: %+v, %v; want one Ready on a live worker", rs, err)
	}
}

// waitInstances waits until the endpoint "stories" is InService with want current instances.
func waitInstances(t *testing.T, c clients, want int32, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		d, err := c.sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String("stories")})
		if err != nil {
			t.Fatal(err)
		}
		if d.EndpointStatus == types.EndpointStatusFailed {
			t.Fatalf("endpoint failed: %s", aws.ToString(d.FailureReason))
		}
		if d.EndpointStatus == types.EndpointStatusInService && len(d.ProductionVariants) == 1 &&
			aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount) == want && aws.ToInt32(d.ProductionVariants[0].DesiredInstanceCount) == 2 {
			return
		}
		if time.Now().After(deadline) {
			var cur int32 = -1
			if len(d.ProductionVariants) > 0 {
				cur = aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount)
			}
			t.Fatalf("endpoint %s with %d current instances after %s, want InService with %d", d.EndpointStatus, cur, within, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitWorkers waits until n workers are in the registry (their first heartbeat).
func waitWorkers(t *testing.T, st *postgres.Store, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		ws, err := st.ListWorkers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers registered: %v, want %d", ws, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replicaWorkers lists the workers the Ready replicas are on.
func replicaWorkers(t *testing.T, st *postgres.Store) []string {
	t.Helper()
	rs, err := st.ListReplicas(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		if r.State == store.ReplicaReady {
			out = append(out, r.Worker)
		}
	}
	return out
}

// waitReplicasOn waits until n replicas are Ready on worker.
func waitReplicasOn(t *testing.T, st *postgres.Store, worker string, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := 0
		for _, w := range replicaWorkers(t, st) {
			if w == worker {
				got++
			}
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(errors.New("replicas not placed again on the surviving worker in time"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
