package endpoint_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/lathe-ml/lathe/internal/endpoint"
	"github.com/lathe-ml/lathe/internal/endpoint/serving"
	"github.com/lathe-ml/lathe/internal/store"
)

// waitCurrent waits until DescribeEndpoint shows the endpoint InService with want current instances
// of its first variant.
func (e *env) waitCurrent(t *testing.T, name string, want int32) *sagemaker.DescribeEndpointOutput {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; {
		d, err := e.sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		if d.EndpointStatus == types.EndpointStatusInService && len(d.ProductionVariants) > 0 &&
			aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount) == want {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint %s: %s, want InService with %d current instances", name, d.EndpointStatus, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An endpoint served by one node keeps serving, the same answers, when its data dir restarts as an
// API-only node (lathe serve --workers 0): its instance becomes a replica on the worker. The
// worker's replica listener refuses calls without the fleet's token, and an update rolls there.
func TestEndpointMovesToWorkers(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	e := startEnv(t, dir, serving.Options{})
	e.deploy(t, "moved", baseModelContainer("raw"))
	body := `{"inputs":"Once upon a time","parameters":{"max_new_tokens":10}}`
	before, _ := invoke(t, e, "moved", body)
	e.stop()

	e = startEnvWith(t, dir, serving.Options{}, true)
	d := e.waitCurrent(t, "moved", 1)
	if aws.ToInt32(d.ProductionVariants[0].DesiredInstanceCount) != 1 {
		t.Errorf("DesiredInstanceCount %d, want 1", aws.ToInt32(d.ProductionVariants[0].DesiredInstanceCount))
	}
	after, out := invoke(t, e, "moved", body)
	if after[0].GeneratedText != before[0].GeneratedText || aws.ToString(out.InvokedProductionVariant) != "AllTraffic" {
		t.Errorf("on the worker %q (variant %s), served by the node before %q", after[0].GeneratedText,
			aws.ToString(out.InvokedProductionVariant), before[0].GeneratedText)
	}

	// A replica placed away and back between two rounds of its worker (Pending again on the same
	// worker) is reported ready again by the worker that still has it loaded.
	rs, err := e.st.ListReplicas(ctx)
	if err != nil || len(rs) != 1 {
		t.Fatalf("replicas %+v, %v", rs, err)
	}
	if ok, err := e.st.PlaceReplica(ctx, rs[0].ID, "w1", "w1"); err != nil || !ok {
		t.Fatalf("place again: %v %v", ok, err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		rs, err := e.st.ListReplicas(ctx)
		if err == nil && len(rs) == 1 && rs[0].State == store.ReplicaReady && rs[0].Addr == e.hostAddr {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica placed back on its worker: %+v, %v; want Ready at %s", rs, err, e.hostAddr)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Only the API node, which holds the fleet's token, may call the replica listener.
	for _, auth := range []string{"", "Bearer lathe-replica", "Bearer " + strings.Repeat("ab", 32)} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+e.hostAddr+"/endpoints/moved/invocations", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(endpoint.ReplicaHeader, "moved/AllTraffic/0")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "AccessDeniedException") {
			t.Errorf("replica listener with Authorization %q: %d %s, want 403 AccessDeniedException", auth, resp.StatusCode, b)
		}
	}

	// UpdateEndpoint to a config with another model and variant: the new replica is ready before
	// the old one goes, and the endpoint answers from it.
	if _, err := e.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("plain"), PrimaryContainer: baseModelContainer("plain")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("plain-config"),
		ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("Plain"), ModelName: aws.String("plain"),
			InstanceType: types.ProductionVariantInstanceTypeMlC5Xlarge, InitialInstanceCount: aws.Int32(1)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("moved"), EndpointConfigName: aws.String("plain-config")}); err != nil {
		t.Fatal(err)
	}
	for {
		// Every call during the update is answered, by the old variant or the new one.
		_, out := invoke(t, e, "moved", body)
		d, err := e.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("moved")})
		if err != nil {
			t.Fatal(err)
		}
		if d.EndpointStatus == types.EndpointStatusInService {
			if aws.ToString(d.EndpointConfigName) != "plain-config" || d.FailureReason != nil {
				t.Fatalf("after the update: config %s, reason %s", aws.ToString(d.EndpointConfigName), aws.ToString(d.FailureReason))
			}
			break
		}
		if v := aws.ToString(out.InvokedProductionVariant); v != "AllTraffic" && v != "Plain" {
			t.Fatalf("variant %q during the update", v)
		}
	}
	updated, out := invoke(t, e, "moved", body)
	if aws.ToString(out.InvokedProductionVariant) != "Plain" || updated[0].GeneratedText == before[0].GeneratedText {
		t.Errorf("after the update: variant %s, text %q (before %q)", aws.ToString(out.InvokedProductionVariant), updated[0].GeneratedText, before[0].GeneratedText)
	}
	e.waitCurrent(t, "moved", 1)

	// UpdateEndpointWeightsAndCapacities: the instance counts are replicas, added and removed.
	for _, n := range []int32{2, 1} {
		if _, err := e.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
			EndpointName: aws.String("moved"), DesiredWeightsAndCapacities: []types.DesiredWeightAndCapacity{
				{VariantName: aws.String("Plain"), DesiredInstanceCount: aws.Int32(n)}}}); err != nil {
			t.Fatal(err)
		}
		d := e.waitCurrent(t, "moved", n)
		if aws.ToInt32(d.ProductionVariants[0].DesiredInstanceCount) != n || d.FailureReason != nil {
			t.Errorf("after asking for %d instances: desired %d, reason %s", n, aws.ToInt32(d.ProductionVariants[0].DesiredInstanceCount),
				aws.ToString(d.FailureReason))
		}
		if again, out := invoke(t, e, "moved", body); aws.ToString(out.InvokedProductionVariant) != "Plain" || again[0].GeneratedText != updated[0].GeneratedText {
			t.Errorf("with %d instances: variant %s, text %q, want %q", n, aws.ToString(out.InvokedProductionVariant), again[0].GeneratedText, updated[0].GeneratedText)
		}
	}
}

// A create whose process died before the endpoint was InService (a job's worker killed while it
// deployed) is finished by an API node once its row has not moved for a while; an update whose API
// node died mid-roll is rolled back, so that the endpoint serves and takes updates again.
func TestAbandonedCreateAndUpdate(t *testing.T) {
	e := startEnvWith(t, t.TempDir(), serving.Options{}, true)
	ctx := context.Background()
	old := time.Now().Add(-time.Minute)
	dep := `{"variants":[{"name":"AllTraffic","model_name":"m","weight":1,"instance_count":1,` +
		`"environment":{"LATHE_BASE_MODEL":"Stories260K","LATHE_PROMPT_FORMAT":"raw"}}]}`
	if err := e.st.CreateEndpoint(ctx, "orphan", store.Endpoint{Name: "Orphan", ARN: "arn:aws:sagemaker:us-east-1:123456789012:endpoint/orphan",
		ConfigName: "c", Status: endpoint.StatusCreating, Created: old, Modified: old, Deployment: []byte(dep)}); err != nil {
		t.Fatal(err)
	}
	e.waitCurrent(t, "Orphan", 1)
	if res, _ := invoke(t, e, "Orphan", `{"inputs":"Once upon a time","parameters":{"max_new_tokens":4}}`); res[0].GeneratedText == "" {
		t.Errorf("the finished endpoint answered %+v", res)
	}

	if err := e.st.CreateEndpoint(ctx, "stuck", store.Endpoint{Name: "Stuck", ARN: "arn:aws:sagemaker:us-east-1:123456789012:endpoint/stuck",
		ConfigName: "c", Status: endpoint.StatusUpdating, Created: old, Modified: old, Deployment: []byte(dep)}); err != nil {
		t.Fatal(err)
	}
	d := e.waitCurrent(t, "Stuck", 1)
	if !strings.Contains(aws.ToString(d.FailureReason), "update of the endpoint was interrupted") {
		t.Errorf("FailureReason %q, want the interrupted update", aws.ToString(d.FailureReason))
	}
	if res, _ := invoke(t, e, "Stuck", `{"inputs":"Once upon a time","parameters":{"max_new_tokens":4}}`); res[0].GeneratedText == "" {
		t.Errorf("the rolled back endpoint answered %+v", res)
	}
}
