// Package kube_test is the Kubernetes tier: Lathe's Kubernetes executor against a real control plane
// (kube-apiserver, kube-controller-manager and kube-scheduler built from the k8s.io/kubernetes
// module by scripts/kubeplane.sh, etcd from Debian, a kwok node), with PostgreSQL and versitygw.
// No container runs: the test runs a job pod's command itself, as the pod would, and reports the
// pod's end to the API server as the kubelet would.
//
// It is opt-in because the first build of the control plane takes minutes:
//
//	LATHE_KUBE=1 go test ./test/kube/ -v
package kube_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/lathe-ml/lathe/internal/client"
	"github.com/lathe-ml/lathe/internal/kube"
	"github.com/lathe-ml/lathe/internal/s3test"
	"github.com/lathe-ml/lathe/internal/store"
	"github.com/lathe-ml/lathe/internal/store/pgtest"
	"github.com/lathe-ml/lathe/internal/store/postgres"
)

const (
	accessKey    = "AKIAIOSFODNN7EXAMPLE"
	secretKey    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	model        = "../../../shared/models/stories260K.gguf"
	modelsBucket = "kube-models"
	namespace    = "lathe" // deploy/namespace.yaml's
	image        = "lathe:test"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

func TestKubernetesExecutor(t *testing.T) {
	if os.Getenv("LATHE_KUBE") != "1" {
		t.Skip("Kubernetes tier NOT RUN (opt-in: it builds kube-apiserver, kube-controller-manager and kube-scheduler, minutes the first time). " +
			"Run it with: apt-get install -y etcd-server postgresql && LATHE_KUBE=1 go test ./test/kube/ -v -timeout 30m")
	}
	began := time.Now()
	bin := kubeplane(t)
	t.Logf("control plane binaries ready in %s (%s)", time.Since(began).Round(time.Second), bin)
	lathe := buildLathe(t)

	began = time.Now()
	lc := startKubeLathe(t, bin, lathe, "--kube-gpus", "1")
	t.Logf("control plane and Lathe up in %s", time.Since(began).Round(time.Second))
	kc, database, ext, addr := lc.kc, lc.database, lc.ext, lc.addr
	ctx := context.Background()
	sm, s3c := clients(addr)
	putDataset(t, s3c)

	began = time.Now()
	for _, name := range []string{"kube-done", "kube-stopped", "kube-oom", "kube-resume"} {
		in := jobInput(name)
		if name == "kube-resume" { // long enough to be killed between two checkpoints
			in.AutoMLProblemTypeConfig.(*types.AutoMLProblemTypeConfigMemberTextGenerationJobConfig).Value.TextGenerationHyperParameters["epochCount"] = "8"
			in.AutoMLProblemTypeConfig.(*types.AutoMLProblemTypeConfigMemberTextGenerationJobConfig).Value.TextGenerationHyperParameters["batchSize"] = "1"
		}
		if _, err := sm.CreateAutoMLJobV2(ctx, in); err != nil {
			t.Fatal(err)
		}
	}

	// A job becomes a Job with the right pod spec, on the node its selector and tolerations allow.
	pod := runningPod(t, kc, "lathe-kube-done", "")
	c := pod.Spec.Containers[0]
	wantArgs := []string{"worker", "--job", "kube-done", "--data-dir", kube.DataDir, "--s3-endpoint", ext.URL, "--models-bucket", modelsBucket}
	if !slices.Equal(c.Command, []string{"lathe"}) || !slices.Equal(c.Args, wantArgs) || c.Image != image {
		t.Errorf("container %s %v %v, want %s lathe %v", c.Image, c.Command, c.Args, image, wantArgs)
	}
	wantRes := map[corev1.ResourceName]string{corev1.ResourceCPU: "1", corev1.ResourceMemory: "517Mi"}
	for r, want := range wantRes {
		if got := c.Resources.Requests[r]; got.String() != want {
			t.Errorf("request %s = %s, want %s (Stories260K, full fine-tuning)", r, got.String(), want)
		}
	}
	if got := c.Resources.Limits[kube.GPUResource]; got.Value() != 1 {
		t.Errorf("nvidia.com/gpu limit %s, want 1", got.String())
	}
	if pod.Spec.NodeName != "kwok-gpu-0" || pod.Spec.NodeSelector["lathe.dev/pool"] != "training" || pod.Spec.RestartPolicy != corev1.RestartPolicyNever ||
		pod.Spec.ServiceAccountName != "lathe-job" {
		t.Errorf("pod on %q, selector %v, restart %s, service account %s", pod.Spec.NodeName, pod.Spec.NodeSelector, pod.Spec.RestartPolicy, pod.Spec.ServiceAccountName)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != "lathe" {
		t.Errorf("envFrom %+v, want the lathe Secret", c.EnvFrom)
	}

	// The pod's command, run here as the pod would, trains the job; the pod then succeeds.
	ranFor := runPod(t, kc, lathe, pod)
	d := describe(t, sm, "kube-done")
	if d.AutoMLJobStatus != types.AutoMLJobStatusCompleted {
		t.Fatalf("kube-done is %s (%s) after its pod's command exited 0", d.AutoMLJobStatus, aws.ToString(d.FailureReason))
	}
	finishPod(t, kc, pod, 0, "Completed")
	waitJobCondition(t, kc, "lathe-kube-done", batchv1.JobComplete)
	t.Logf("kube-done: pod command ran %s, job Completed", ranFor.Round(time.Second))

	// Stop deletes the Job.
	stopped := runningPod(t, kc, "lathe-kube-stopped", "")
	if _, err := sm.StopAutoMLJob(ctx, &sagemaker.StopAutoMLJobInput{AutoMLJobName: aws.String("kube-stopped")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Job lathe-kube-stopped to be deleted", time.Minute, func() (bool, error) {
		_, err := kc.BatchV1().Jobs(namespace).Get(ctx, "lathe-kube-stopped", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	waitFor(t, "kube-stopped to be Stopped", time.Minute, func() (bool, error) {
		return describe(t, sm, "kube-stopped").AutoMLJobStatus == types.AutoMLJobStatusStopped, nil
	})
	t.Logf("kube-stopped: pod %s, Job deleted, job Stopped", stopped.Name)

	// Pods killed by the OOM killer until the Job runs out of retries: the job is Failed, with why.
	oomPods := 0
	waitFor(t, "the Job lathe-kube-oom to fail", 3*time.Minute, func() (bool, error) {
		kj, err := kc.BatchV1().Jobs(namespace).Get(ctx, "lathe-kube-oom", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range kj.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		pods, err := kc.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=lathe-kube-oom"})
		if err != nil {
			return false, err
		}
		for i := range pods.Items {
			if p := &pods.Items[i]; p.Status.Phase == corev1.PodRunning {
				finishPod(t, kc, p, 137, "OOMKilled")
				oomPods++
			}
		}
		return false, nil
	})
	waitFor(t, "kube-oom to be Failed", time.Minute, func() (bool, error) {
		return describe(t, sm, "kube-oom").AutoMLJobStatus == types.AutoMLJobStatusFailed, nil
	})
	reason := aws.ToString(describe(t, sm, "kube-oom").FailureReason)
	if !strings.Contains(reason, "BackoffLimitExceeded") || !strings.Contains(reason, "OOMKilled") || !strings.Contains(reason, "lathe/lathe-kube-oom") {
		t.Errorf("kube-oom FailureReason %q: want the Job, BackoffLimitExceeded and the pod's OOMKilled", reason)
	}
	if oomPods != kube.BackoffLimit+1 {
		t.Errorf("%d pods were run for kube-oom, want %d (backoff limit %d)", oomPods, kube.BackoffLimit+1, kube.BackoffLimit)
	}
	t.Logf("kube-oom: %d pods OOMKilled, job Failed: %s", oomPods, reason)

	// A pod killed in the middle of training (SIGKILL: the OOM killer, a lost node) is replaced by
	// the Job; the new pod waits for the dead one's lease to run out, resumes from its checkpoint
	// and completes the job.
	st, err := postgres.Open(ctx, database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	first := runningPod(t, kc, "lathe-kube-resume", "")
	cmd := podCommand(t, kc, lathe, first)
	podLog := filepath.Join(t.TempDir(), "first-pod.log")
	lf, err := os.Create(podLog)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "kube-resume's first checkpoint", 3*time.Minute, func() (bool, error) {
		j, err := st.GetJob(ctx, "kube-resume")
		if err != nil {
			return false, err
		}
		if j.Status != store.StatusInProgress {
			b, _ := os.ReadFile(podLog)
			t.Fatalf("kube-resume ended %s before its pod was killed:\n%s", j.Status, tail(string(b), 3000))
		}
		return len(j.Checkpoint) > 0, nil
	})
	cmd.Process.Kill()
	cmd.Wait()
	finishPod(t, kc, first, 137, "Error")
	second := runningPod(t, kc, "lathe-kube-resume", first.Name)
	ranFor = runPod(t, kc, lathe, second)
	d = describe(t, sm, "kube-resume")
	j, err := st.GetJob(ctx, "kube-resume")
	if err != nil {
		t.Fatal(err)
	}
	if d.AutoMLJobStatus != types.AutoMLJobStatusCompleted || j.Attempts != 2 {
		t.Fatalf("kube-resume is %s (%s) after %d attempts, want Completed after 2 (the killed pod's and its replacement's)",
			d.AutoMLJobStatus, aws.ToString(d.FailureReason), j.Attempts)
	}
	finishPod(t, kc, second, 0, "Completed")
	waitJobCondition(t, kc, "lathe-kube-resume", batchv1.JobComplete)
	t.Logf("kube-resume: first pod killed after its first checkpoint, second pod %s ran %s (lease wait included), job Completed", second.Name, ranFor.Round(time.Second))
	t.Logf("jobs through the cluster in %s", time.Since(began).Round(time.Second))
}

// kubeplane builds (or finds cached) the control plane with scripts/kubeplane.sh.
// kubeLathe is a Lathe API node (--workers 0) under the Kubernetes executor: a real control plane
// with Lathe's own manifests applied (validation, defaulting, admission) and their Secret given the
// test's PostgreSQL database and versitygw keys, one node, and Stories260K imported once into the
// fleet's models bucket.
type kubeLathe struct {
	kc       kubernetes.Interface
	database string
	ext      s3test.Service
	addr     string
}

// startKubeLathe starts a kubeLathe from the control plane's binaries (bin) and the lathe binary;
// serveArgs go after the executor's common flags.
func startKubeLathe(t *testing.T, bin, lathe string, serveArgs ...string) kubeLathe {
	t.Helper()
	cp := startControlPlane(t, bin)
	kc := cp.client
	ctx := context.Background()
	applyManifests(t, cp, "../../deploy")
	database := pgtest.Shared(t).NewDatabase(t)
	ext := s3test.VersityGW(t)
	secret, err := kc.CoreV1().Secrets(namespace).Get(ctx, "lathe", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret.StringData = map[string]string{"LATHE_DATABASE": database, "AWS_ACCESS_KEY_ID": ext.AccessKeyID, "AWS_SECRET_ACCESS_KEY": ext.SecretAccessKey}
	if _, err := kc.CoreV1().Secrets(namespace).Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	addNode(t, kc)

	env := baseEnv(t, ext)
	run(t, lathe, env, "models", "import", model, "--name", "Stories260K", "--data-dir", t.TempDir(),
		"--s3-endpoint", ext.URL, "--models-bucket", modelsBucket)
	args := append([]string{"serve", "--workers", "0", "--data-dir", t.TempDir(), "--database", database,
		"--s3-endpoint", ext.URL, "--models-bucket", modelsBucket,
		"--executor", "kubernetes", "--kubeconfig", cp.kubeconfig, "--kube-namespace", namespace, "--kube-image", image,
		"--kube-secret", "lathe", "--kube-service-account", "lathe-job", "--kube-node-selector", "lathe.dev/pool=training",
		"--kube-tolerations", "nvidia.com/gpu:NoSchedule"}, serveArgs...)
	return kubeLathe{kc: kc, database: database, ext: ext, addr: serve(t, lathe, env, args...)}
}

func kubeplane(t *testing.T) string {
	cmd := exec.Command("../../scripts/kubeplane.sh")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/kubeplane.sh: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return lines[len(lines)-1]
}

func buildLathe(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "lathe")
	cmd := exec.Command("go", "build", "-o", p, "github.com/lathe-ml/lathe/cmd/lathe")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build lathe: %v", err)
	}
	return p
}

type controlPlane struct {
	kubeconfig string
	client     kubernetes.Interface
	dynamic    dynamic.Interface
	mapper     meta.RESTMapper
}

// startControlPlane starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok,
// the API server with client certificates of a CA made here (the admin is in system:masters).
func startControlPlane(t *testing.T, bin string) *controlPlane {
	dir := t.TempDir()
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatal("etcd not found: apt-get install -y etcd-server")
	}
	etcdClient, etcdPeer, apiPort := freeAddr(t), freeAddr(t), freePort(t)
	start(t, "etcd", etcd, "--data-dir", filepath.Join(dir, "etcd"), "--listen-client-urls", "http://"+etcdClient,
		"--advertise-client-urls", "http://"+etcdClient, "--listen-peer-urls", "http://"+etcdPeer,
		"--initial-advertise-peer-urls", "http://"+etcdPeer, "--initial-cluster", "default=http://"+etcdPeer)

	caKey, caCert := newCA(t)
	writePEM(t, filepath.Join(dir, "ca.crt"), "CERTIFICATE", caCert.Raw)
	adminKey, adminCert := leaf(t, caKey, caCert, "admin", []string{"system:masters"})
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "sa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey))
	pub, _ := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	writePEM(t, filepath.Join(dir, "sa.pub"), "PUBLIC KEY", pub)

	// The endpoint reconciler refuses a loopback advertise address; nothing here needs the
	// kubernetes Service's endpoints.
	start(t, "kube-apiserver", filepath.Join(bin, "kube-apiserver"), "--etcd-servers", "http://"+etcdClient,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--endpoint-reconciler-type", "none", "--secure-port", apiPort, "--cert-dir", filepath.Join(dir, "serving"),
		"--client-ca-file", filepath.Join(dir, "ca.crt"), "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc", "--service-account-key-file", filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(dir, "sa.key"), "--service-cluster-ip-range", "10.96.0.0/16")

	kubeconfig := filepath.Join(dir, "kubeconfig")
	kcfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:%s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, apiPort, b64(pemOf("CERTIFICATE", adminCert.Raw)), b64(pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(adminKey))))
	if err := os.WriteFile(kubeconfig, []byte(kcfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kc := kubernetes.NewForConfigOrDie(cfg)
	waitFor(t, "kube-apiserver to be ready", 2*time.Minute, func() (bool, error) {
		b, err := kc.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
		return err == nil && string(b) == "ok", nil
	})
	start(t, "kube-controller-manager", filepath.Join(bin, "kube-controller-manager"), "--kubeconfig", kubeconfig,
		"--controllers", "*,-serviceaccount-token", "--leader-elect=false", "--secure-port=0", "--use-service-account-credentials=false")
	start(t, "kube-scheduler", filepath.Join(bin, "kube-scheduler"), "--kubeconfig", kubeconfig, "--leader-elect=false",
		"--secure-port", freePort(t), "--bind-address", "127.0.0.1")
	start(t, "kwok", filepath.Join(bin, "kwok"), "--kubeconfig", kubeconfig, "--manage-all-nodes=true",
		"-c", filepath.Join(filepath.Dir(bin), "kwok-stages.yaml"))

	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &controlPlane{kubeconfig: kubeconfig, client: kc, dynamic: dyn,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kc.Discovery()))}
}

// applyManifests creates every object of the YAML files in dir (namespaces first).
func applyManifests(t *testing.T, cp *controlPlane, dir string) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(b), "\n---") {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(m) > 0 {
				objs = append(objs, &unstructured.Unstructured{Object: m})
			}
		}
	}
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		return boolInt(b.GetKind() == "Namespace") - boolInt(a.GetKind() == "Namespace")
	})
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := cp.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s %s: %v", gvk, o.GetName(), err)
		}
		var ri dynamic.ResourceInterface = cp.dynamic.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = cp.dynamic.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		if _, err := ri.Create(context.Background(), o, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
			t.Fatalf("apply %s %s/%s from deploy/: %v", gvk.Kind, o.GetNamespace(), o.GetName(), err)
		}
	}
	t.Logf("applied %d objects from deploy/", len(objs))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// addNode registers a kwok node with GPUs, labelled and tainted for training.
func addNode(t *testing.T, kc kubernetes.Interface) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "kwok-gpu-0", Labels: map[string]string{"type": "kwok", "lathe.dev/pool": "training"},
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"}},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "nvidia.com/gpu", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"),
				corev1.ResourcePods: resource.MustParse("110"), kube.GPUResource: resource.MustParse("8")},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"),
				corev1.ResourcePods: resource.MustParse("110"), kube.GPUResource: resource.MustParse("8")},
		},
	}
	if _, err := kc.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the kwok node to be Ready", time.Minute, func() (bool, error) {
		n, err := kc.CoreV1().Nodes().Get(context.Background(), node.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// runningPod waits for a pod of the Job, other than the one called not, to be scheduled and
// running (kwok's doing).
func runningPod(t *testing.T, kc kubernetes.Interface, job, not string) *corev1.Pod {
	var pod *corev1.Pod
	waitFor(t, "a running pod of Job "+job, 2*time.Minute, func() (bool, error) {
		pods, err := kc.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + job})
		if err != nil {
			return false, err
		}
		for i := range pods.Items {
			if pods.Items[i].Status.Phase == corev1.PodRunning && pods.Items[i].Name != not {
				pod = &pods.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	return pod
}

// runPod runs the pod's command (podCommand) and fails the test unless it exits 0.
func runPod(t *testing.T, kc kubernetes.Interface, lathe string, pod *corev1.Pod) time.Duration {
	cmd := podCommand(t, kc, lathe, pod)
	began := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the pod's command %s: %v\n%s", strings.Join(cmd.Args, " "), err, tail(string(out), 4000))
	}
	return time.Since(began)
}

// podCommand is the pod's container command, to run here with the pod's environment (its env, and
// its envFrom Secret's keys), as the container would; the data dir, the container's own emptyDir,
// is a temporary directory.
func podCommand(t *testing.T, kc kubernetes.Interface, lathe string, pod *corev1.Pod) *exec.Cmd {
	c := pod.Spec.Containers[0]
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent",
		"HF_ENDPOINT=http://127.0.0.1:1"}
	for _, from := range c.EnvFrom {
		if from.SecretRef == nil {
			t.Fatalf("envFrom %+v: only Secrets are expected", from)
		}
		s, err := kc.CoreV1().Secrets(pod.Namespace).Get(context.Background(), from.SecretRef.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range s.Data {
			env = append(env, k+"="+string(v))
		}
	}
	for _, e := range c.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	if c.Command[0] != "lathe" {
		t.Fatalf("the pod runs %q, not lathe", c.Command[0])
	}
	args := slices.Clone(c.Args)
	if i := slices.Index(args, "--data-dir"); i >= 0 && args[i+1] == kube.DataDir {
		args[i+1] = t.TempDir()
	}
	cmd := exec.Command(lathe, args...)
	cmd.Env = env
	return cmd
}

// finishPod reports the pod's end to the API server as the kubelet would: its container terminated
// with exitCode and reason, the pod Succeeded (0) or Failed.
func finishPod(t *testing.T, kc kubernetes.Interface, pod *corev1.Pod, exitCode int32, reason string) {
	ctx := context.Background()
	for {
		p, err := kc.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		now := metav1.Now()
		p.Status.Phase = corev1.PodSucceeded
		if exitCode != 0 {
			p.Status.Phase = corev1.PodFailed
		}
		var statuses []corev1.ContainerStatus
		for _, c := range p.Spec.Containers {
			statuses = append(statuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, State: corev1.ContainerState{
				Terminated: &corev1.ContainerStateTerminated{ExitCode: exitCode, Reason: reason, StartedAt: p.CreationTimestamp, FinishedAt: now}}})
		}
		p.Status.ContainerStatuses = statuses
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == corev1.PodReady || p.Status.Conditions[i].Type == corev1.ContainersReady {
				p.Status.Conditions[i].Status = corev1.ConditionFalse
			}
		}
		_, err = kc.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue // kwok's heartbeat wrote in between
		}
		if err != nil {
			t.Fatal(err)
		}
		return
	}
}

func waitJobCondition(t *testing.T, kc kubernetes.Interface, name string, cond batchv1.JobConditionType) {
	waitFor(t, fmt.Sprintf("Job %s to be %s", name, cond), time.Minute, func() (bool, error) {
		kj, err := kc.BatchV1().Jobs(namespace).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range kj.Status.Conditions {
			if c.Type == cond && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

func waitFor(t *testing.T, what string, within time.Duration, ok func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		done, err := ok()
		if done {
			return
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s (last error: %v)", within, what, last)
}

// proc logs: every process's output goes to a file whose tail is shown when the test fails.
func start(t *testing.T, name, path string, args ...string) {
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		f.Close()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- %s log (tail) ---\n%s", name, tail(string(b), 3000))
		}
	})
}

func baseEnv(t *testing.T, ext s3test.Service) []string {
	none := filepath.Join(t.TempDir(), "none")
	return append(os.Environ(), "LATHE_ROOT_ACCESS_KEY_ID="+accessKey, "LATHE_ROOT_SECRET_ACCESS_KEY="+secretKey,
		"AWS_ACCESS_KEY_ID="+ext.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+ext.SecretAccessKey, "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE="+none, "AWS_SHARED_CREDENTIALS_FILE="+none, "HF_ENDPOINT=http://127.0.0.1:1")
}

func run(t *testing.T, lathe string, env []string, args ...string) {
	cmd := exec.Command(lathe, args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lathe %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// serve starts `lathe serve` and waits until it is healthy; it returns its address.
func serve(t *testing.T, lathe string, env []string, args ...string) string {
	addr := freeAddr(t)
	startEnv(t, "lathe-serve", lathe, env, append(args, "--addr", addr)...)
	waitFor(t, "lathe serve to be healthy", time.Minute, func() (bool, error) {
		resp, err := http.Get("http://" + addr + "/_lathe/health")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	return addr
}

func startEnv(t *testing.T, name, path string, env []string, args ...string) {
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		f.Close()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("%s did not stop within 30 s of SIGTERM", name)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- %s log (tail) ---\n%s", name, tail(string(b), 4000))
		}
	})
}

func clients(addr string) (*sagemaker.Client, *s3.Client) {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		HTTPClient: client.HTTPClient()}
	return sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String("http://" + addr) }),
		s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String("http://" + addr); o.UsePathStyle = true })
}

func putDataset(t *testing.T, c *s3.Client) {
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("tuning")}); err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("input,output\n")
	for i := range 32 {
		fmt.Fprintf(&csv, "What does animal %d say?,The cow says moo %d times.\n", i, i%5)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tuning"), Key: aws.String("train/data.csv"),
		Body: strings.NewReader(csv.String())}); err != nil {
		t.Fatal(err)
	}
}

func jobInput(name string) *sagemaker.CreateAutoMLJobV2Input {
	return &sagemaker.CreateAutoMLJobV2Input{
		AutoMLJobName: aws.String(name),
		AutoMLJobInputDataConfig: []types.AutoMLJobChannel{{ChannelType: types.AutoMLChannelTypeTraining,
			DataSource: &types.AutoMLDataSource{S3DataSource: &types.AutoMLS3DataSource{S3DataType: types.AutoMLS3DataTypeS3Prefix,
				S3Uri: aws.String("s3://tuning/train/")}}}},
		AutoMLProblemTypeConfig: &types.AutoMLProblemTypeConfigMemberTextGenerationJobConfig{Value: types.TextGenerationJobConfig{
			BaseModelName:                 aws.String("Stories260K"),
			TextGenerationHyperParameters: map[string]string{"epochCount": "1", "batchSize": "4", "learningRate": "0.003"}}},
		OutputDataConfig: &types.AutoMLOutputDataConfig{S3OutputPath: aws.String("s3://tuning/out/")},
		RoleArn:          aws.String("arn:aws:iam::123456789012:role/r"),
	}
}

func describe(t *testing.T, sm *sagemaker.Client, name string) *sagemaker.DescribeAutoMLJobV2Output {
	d, err := sm.DescribeAutoMLJobV2(context.Background(), &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func freePort(t *testing.T) string {
	_, port, _ := net.SplitHostPort(freeAddr(t))
	return port
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func newCA(t *testing.T) (*rsa.PrivateKey, *x509.Certificate) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lathe-test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func leaf(t *testing.T, caKey *rsa.PrivateKey, ca *x509.Certificate, cn string, orgs []string) (*rsa.PrivateKey, *x509.Certificate) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	if err := os.WriteFile(path, pemOf(typ, der), 0o600); err != nil {
		t.Fatal(err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
