package kube_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/lathe-ml/lathe/internal/client"
	"github.com/lathe-ml/lathe/internal/kube"
)

// Endpoints under the Kubernetes executor: each variant a Deployment whose pods claim and serve the
// endpoint's replicas, each endpoint a Service. A fake kubelet here runs the command of every
// running pod of the endpoint's Deployment (and SIGTERMs it when the pod goes), as the container
// would.
func TestKubernetesEndpoints(t *testing.T) {
	if os.Getenv("LATHE_KUBE") != "1" {
		t.Skip("Kubernetes tier NOT RUN (opt-in). Run it with: apt-get install -y etcd-server postgresql && LATHE_KUBE=1 go test ./test/kube/ -v -timeout 30m")
	}
	bin := kubeplane(t)
	lathe := buildLathe(t)
	lc := startKubeLathe(t, bin, lathe)
	kc, ext, addr := lc.kc, lc.ext, lc.addr
	ctx := context.Background()
	sm, _ := clients(addr)
	rt := sagemakerruntime.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: sm.Options().Credentials, HTTPClient: client.HTTPClient()},
		func(o *sagemakerruntime.Options) { o.BaseEndpoint = aws.String("http://" + addr) })

	kubelet := newFakeKubelet(t, kc, lathe, "kube-ep")
	defer kubelet.stop()

	if _, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("kube-model"),
		PrimaryContainer: &types.ContainerDefinition{Image: aws.String("lathe/engine:llama"),
			Environment: map[string]string{"LATHE_BASE_MODEL": "Stories260K", "LATHE_PROMPT_FORMAT": "raw"}}}); err != nil {
		t.Fatal(err)
	}
	for _, ec := range []struct {
		name  string
		count int32
	}{{"kube-config", 2}, {"kube-bad-config", 1}} {
		if _, err := sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String(ec.name),
			ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("kube-model"),
				InitialInstanceCount: aws.Int32(ec.count), InstanceType: types.ProductionVariantInstanceTypeMlG5Xlarge, InitialVariantWeight: aws.Float32(1)}}}); err != nil {
			t.Fatal(err)
		}
	}

	began := time.Now()
	if _, err := sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("kube-ep"), EndpointConfigName: aws.String("kube-config")}); err != nil {
		t.Fatal(err)
	}
	// The variant becomes a Deployment of two pods with the endpoint pod's spec; the endpoint a Service.
	depName, svcName := kube.DeploymentName("kube-ep", "AllTraffic"), kube.ServiceName("kube-ep")
	dep := waitDeployment(t, kc, depName, 2)
	if s := describeEndpoint(t, sm, "kube-ep"); s.EndpointStatus != types.EndpointStatusCreating && s.EndpointStatus != types.EndpointStatusInService {
		t.Errorf("kube-ep is %s while its pods start, want Creating", s.EndpointStatus)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	wantArgs := []string{"worker", "--endpoint", "kube-ep", "--variant", "AllTraffic", "--data-dir", kube.DataDir,
		"--replica-addr", "0.0.0.0:8080", "--s3-endpoint", ext.URL, "--models-bucket", modelsBucket}
	if c.Image != image || !slices.Equal(c.Command, []string{"lathe"}) || !slices.Equal(c.Args, wantArgs) {
		t.Errorf("container %s %v %v, want %s lathe %v", c.Image, c.Command, c.Args, image, wantArgs)
	}
	// Stories260K's weights: 4 B x 260K x 1.25 + 512 MiB for the process, rounded up to MiB; 1 core.
	for r, want := range map[corev1.ResourceName]string{corev1.ResourceCPU: "1", corev1.ResourceMemory: "514Mi"} {
		if got := c.Resources.Requests[r]; got.String() != want {
			t.Errorf("request %s = %s, want %s", r, got.String(), want)
		}
	}
	if got := c.Resources.Limits[corev1.ResourceMemory]; got.String() != "1028Mi" {
		t.Errorf("memory limit %s, want 1028Mi", got.String())
	}
	pod := dep.Spec.Template.Spec
	if pod.NodeSelector["lathe.dev/pool"] != "training" || len(pod.Tolerations) != 1 || pod.ServiceAccountName != "lathe-job" ||
		len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != "lathe" || c.ReadinessProbe == nil {
		t.Errorf("pod spec: selector %v tolerations %v sa %s envFrom %+v probe %+v", pod.NodeSelector, pod.Tolerations,
			pod.ServiceAccountName, c.EnvFrom, c.ReadinessProbe)
	}
	svc, err := kc.CoreV1().Services(namespace).Get(ctx, svcName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the endpoint's Service %s: %v", svcName, err)
	}
	for k, v := range svc.Spec.Selector {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("Service selector %v does not select the Deployment's pods %v", svc.Spec.Selector, dep.Spec.Template.Labels)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != kube.ReplicaPort {
		t.Errorf("Service ports %+v, want %d", svc.Spec.Ports, kube.ReplicaPort)
	}

	// The pods' commands, run by the fake kubelet, claim the two replicas; the endpoint is InService.
	waitEndpoint(t, sm, "kube-ep", types.EndpointStatusInService, 2)
	t.Logf("kube-ep: InService with 2 pods in %s", time.Since(began).Round(time.Millisecond))
	answer := invokeEndpoint(t, rt, "kube-ep")
	t.Logf("kube-ep answers: %q", answer)

	// UpdateEndpointWeightsAndCapacities scales the Deployment, up and then down.
	for _, n := range []int32{3, 1} {
		began = time.Now()
		if _, err := sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{EndpointName: aws.String("kube-ep"),
			DesiredWeightsAndCapacities: []types.DesiredWeightAndCapacity{{VariantName: aws.String("AllTraffic"), DesiredInstanceCount: aws.Int32(n)}}}); err != nil {
			t.Fatal(err)
		}
		waitDeployment(t, kc, depName, n)
		waitEndpoint(t, sm, "kube-ep", types.EndpointStatusInService, n)
		if got := invokeEndpoint(t, rt, "kube-ep"); got != answer {
			t.Errorf("with %d pods kube-ep answers %q, before %q (greedy decoding of the same model)", n, got, answer)
		}
		t.Logf("kube-ep: scaled to %d pods, InService in %s", n, time.Since(began).Round(time.Millisecond))
	}

	// DeleteEndpoint removes the Deployment and the Service.
	if _, err := sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("kube-ep")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "kube-ep's Deployment and Service to be deleted", time.Minute, func() (bool, error) {
		_, derr := kc.AppsV1().Deployments(namespace).Get(ctx, depName, metav1.GetOptions{})
		_, serr := kc.CoreV1().Services(namespace).Get(ctx, svcName, metav1.GetOptions{})
		return apierrors.IsNotFound(derr) && apierrors.IsNotFound(serr), nil
	})

	// An endpoint whose pod cannot start (its container in a crash loop, as the kubelet reports it)
	// ends Failed with Kubernetes' reason, and its Deployment goes.
	if _, err := sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("kube-bad"), EndpointConfigName: aws.String("kube-bad-config")}); err != nil {
		t.Fatal(err)
	}
	badDep := kube.DeploymentName("kube-bad", "AllTraffic")
	waitDeployment(t, kc, badDep, 1)
	waitFor(t, "kube-bad to be Failed", 2*time.Minute, func() (bool, error) {
		pods, err := kc.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelEndpoint + "=kube-bad"})
		if err != nil {
			return false, err
		}
		for i := range pods.Items {
			crashLoop(t, kc, &pods.Items[i])
		}
		return describeEndpoint(t, sm, "kube-bad").EndpointStatus == types.EndpointStatusFailed, nil
	})
	reason := aws.ToString(describeEndpoint(t, sm, "kube-bad").FailureReason)
	if !strings.Contains(reason, "CrashLoopBackOff") || !strings.Contains(reason, namespace+"/"+badDep) {
		t.Errorf("kube-bad FailureReason %q: want its Deployment and the pod's CrashLoopBackOff", reason)
	}
	t.Logf("kube-bad: Failed: %s", reason)
	waitFor(t, "kube-bad's Deployment to be deleted", time.Minute, func() (bool, error) {
		_, err := kc.AppsV1().Deployments(namespace).Get(ctx, badDep, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

func waitDeployment(t *testing.T, kc kubernetes.Interface, name string, replicas int32) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	waitFor(t, fmt.Sprintf("Deployment %s with %d replicas", name, replicas), time.Minute, func() (bool, error) {
		got, err := kc.AppsV1().Deployments(namespace).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		d = got
		return got.Spec.Replicas != nil && *got.Spec.Replicas == replicas, nil
	})
	return d
}

func describeEndpoint(t *testing.T, sm *sagemaker.Client, name string) *sagemaker.DescribeEndpointOutput {
	t.Helper()
	d, err := sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// waitEndpoint waits until the endpoint has the status and its variant current instances.
func waitEndpoint(t *testing.T, sm *sagemaker.Client, name string, status types.EndpointStatus, current int32) {
	t.Helper()
	var last *sagemaker.DescribeEndpointOutput
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		last = describeEndpoint(t, sm, name)
		if last.EndpointStatus == types.EndpointStatusFailed && status != types.EndpointStatusFailed {
			t.Fatalf("endpoint %s Failed: %s", name, aws.ToString(last.FailureReason))
		}
		if last.EndpointStatus == status && len(last.ProductionVariants) == 1 && aws.ToInt32(last.ProductionVariants[0].CurrentInstanceCount) == current {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	b, _ := json.Marshal(last)
	t.Fatalf("endpoint %s: %s, want %s with %d current instances", name, b, status, current)
}

func invokeEndpoint(t *testing.T, rt *sagemakerruntime.Client, name string) string {
	t.Helper()
	out, err := rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String(name),
		ContentType: aws.String("application/json"),
		Body:        []byte(`{"inputs":"Once upon a time","parameters":{"max_new_tokens":8,"do_sample":false}}`)})
	if err != nil {
		t.Fatalf("InvokeEndpoint %s: %v", name, err)
	}
	var got []struct {
		GeneratedText string `json:"generated_text"`
	}
	if err := json.Unmarshal(out.Body, &got); err != nil || len(got) != 1 || got[0].GeneratedText == "" {
		t.Fatalf("InvokeEndpoint %s answered %s (%v), want a generated text", name, out.Body, err)
	}
	return got[0].GeneratedText
}

// crashLoop reports the pod's container waiting in CrashLoopBackOff after exiting 1, as a kubelet
// would for a container that keeps crashing.
func crashLoop(t *testing.T, kc kubernetes.Interface, pod *corev1.Pod) {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" {
			return
		}
	}
	p := pod.DeepCopy()
	var statuses []corev1.ContainerStatus
	for _, c := range p.Spec.Containers {
		statuses = append(statuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, RestartCount: 3,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: "back-off 40s restarting failed container=" + c.Name}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}})
	}
	p.Status.ContainerStatuses = statuses
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady || p.Status.Conditions[i].Type == corev1.ContainersReady {
			p.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	if _, err := kc.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
		t.Logf("report pod %s in CrashLoopBackOff: %v", p.Name, err)
	}
}

// fakeKubelet runs the command of every running pod of one endpoint here, as its container would
// (podCommand, with the pod's name and 127.0.0.1 for its downward-API environment and a free port
// for its listener), and sends SIGTERM to it once the pod is deleted.
type fakeKubelet struct {
	t        *testing.T
	kc       kubernetes.Interface
	lathe    string
	endpoint string
	done     chan struct{}
	wg       sync.WaitGroup

	mu     sync.Mutex
	procs  map[string]*exec.Cmd // by pod name
	exited map[string]bool
}

func newFakeKubelet(t *testing.T, kc kubernetes.Interface, lathe, endpoint string) *fakeKubelet {
	k := &fakeKubelet{t: t, kc: kc, lathe: lathe, endpoint: endpoint, done: make(chan struct{}), procs: map[string]*exec.Cmd{},
		exited: map[string]bool{}}
	k.wg.Add(1)
	go k.loop()
	return k
}

func (k *fakeKubelet) loop() {
	defer k.wg.Done()
	for {
		select {
		case <-k.done:
			return
		case <-time.After(200 * time.Millisecond):
		}
		pods, err := k.kc.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: kube.LabelEndpoint + "=" + k.endpoint})
		if err != nil {
			continue
		}
		running := map[string]bool{}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
				continue
			}
			running[p.Name] = true
			k.mu.Lock()
			_, started := k.procs[p.Name]
			k.mu.Unlock()
			if !started {
				k.start(p)
			}
		}
		k.mu.Lock()
		for name, cmd := range k.procs {
			if !running[name] && !k.exited[name] {
				cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		k.mu.Unlock()
	}
}

func (k *fakeKubelet) start(p *corev1.Pod) {
	t := k.t
	cmd := podCommand(t, k.kc, k.lathe, p)
	for _, e := range p.Spec.Containers[0].Env {
		if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil {
			continue
		}
		switch e.ValueFrom.FieldRef.FieldPath {
		case "metadata.name":
			cmd.Env = append(cmd.Env, e.Name+"="+p.Name)
		case "status.podIP":
			cmd.Env = append(cmd.Env, e.Name+"=127.0.0.1")
		}
	}
	if i := slices.Index(cmd.Args, "--replica-addr"); i >= 0 {
		cmd.Args[i+1] = "127.0.0.1:0"
	}
	logPath := filepath.Join(t.TempDir(), p.Name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Error(err)
		return
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Errorf("start pod %s's command: %v", p.Name, err)
		return
	}
	k.mu.Lock()
	k.procs[p.Name] = cmd
	k.mu.Unlock()
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		err := cmd.Wait()
		f.Close()
		k.mu.Lock()
		k.exited[p.Name] = true
		k.mu.Unlock()
		if t.Failed() || err != nil {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- pod %s's command (%v) log (tail) ---\n%s", p.Name, err, tail(string(b), 3000))
		}
	}()
}

// stop ends the pods' commands (SIGTERM, as a node drain would) and waits for them.
func (k *fakeKubelet) stop() {
	close(k.done)
	k.mu.Lock()
	for name, cmd := range k.procs {
		if !k.exited[name] {
			cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	k.mu.Unlock()
	k.wg.Wait()
}
