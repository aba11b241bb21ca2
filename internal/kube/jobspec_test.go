package kube

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/lathe-ml/lathe/internal/job"
)

func TestResources(t *testing.T) {
	for _, tc := range []struct {
		name          string
		params        int64
		method        string
		gpus          int
		cpu, mem, lim string
	}{
		// 16 B x 260K x 1.25 + 512 MiB, rounded up to MiB.
		{"tiny full", 260_000, "full", 0, "1", "517Mi", "1034Mi"},
		// 16 B x 135M x 1.25 = 2574.9 MiB, + 512.
		{"135M full", 135_000_000, "full", 0, "1", "3087Mi", "6174Mi"},
		// (4 + 0.16) B x 7B x 1.25 = 34713.7 MiB, + 512; 28 cores capped at 16.
		{"7B lora", 7_000_000_000, "lora", 1, "16", "35226Mi", "70452Mi"},
		{"1.7B lora", 1_700_000_000, "lora", 0, "7", "8943Mi", "17886Mi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkResources(t, Resources(tc.params, tc.method, tc.gpus), tc.cpu, tc.mem, tc.lim, tc.gpus, "training")
		})
	}
}

// checkResources compares a pod's requests and limits with the expected ones; a CPU limit is never
// set, since it would throttle the work (what) on an idle node.
func checkResources(t *testing.T, r corev1.ResourceRequirements, cpu, mem, lim string, gpus int, what string) {
	t.Helper()
	if got := r.Requests.Cpu().String(); got != cpu {
		t.Errorf("cpu request %s, want %s", got, cpu)
	}
	if got := r.Requests.Memory().String(); got != mem {
		t.Errorf("memory request %s, want %s", got, mem)
	}
	if got := r.Limits.Memory().String(); got != lim {
		t.Errorf("memory limit %s, want %s", got, lim)
	}
	gpu, ok := r.Limits[GPUResource]
	if (gpus > 0) != ok || ok && gpu.Value() != int64(gpus) {
		t.Errorf("gpu limit %v (set %v), want %d", gpu.String(), ok, gpus)
	}
	if _, ok := r.Limits[corev1.ResourceCPU]; ok {
		t.Errorf("a CPU limit is set: %s would be throttled on an idle node", what)
	}
}

func TestJobForSizesFromTheCatalogAndMethod(t *testing.T) {
	s := Settings{Namespace: "ml", Image: "lathe:1", Secret: "lathe", S3Endpoint: "http://s3:9000", ModelsBucket: "models", GPUs: 2,
		NodeSelector: map[string]string{"pool": "gpu"}, Tolerations: []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists}}}
	kj := JobFor(job.Spec{Name: "My-Job-7", BaseModel: "Mistral7B"}, s)
	if kj.Name != "lathe-my-job-7" || kj.Namespace != "ml" || kj.Labels[LabelJob] != "my-job-7" || kj.Annotations[AnnotationJobName] != "My-Job-7" {
		t.Fatalf("metadata %s/%s %v %v", kj.Namespace, kj.Name, kj.Labels, kj.Annotations)
	}
	pod := kj.Spec.Template.Spec
	c := pod.Containers[0]
	wantArgs := []string{"worker", "--job", "My-Job-7", "--data-dir", DataDir, "--s3-endpoint", "http://s3:9000", "--models-bucket", "models"}
	if !reflect.DeepEqual(c.Args, wantArgs) || !reflect.DeepEqual(c.Command, []string{"lathe"}) {
		t.Errorf("command %v args %v, want lathe %v", c.Command, c.Args, wantArgs)
	}
	if strings.Contains(strings.Join(c.Args, " "), "postgres") {
		t.Error("the database URL (with its password) is in the pod's arguments")
	}
	if kj.Annotations["lathe.dev/method"] != "lora" || !reflect.DeepEqual(c.Resources, Resources(7_200_000_000, "lora", 2)) {
		t.Errorf("Mistral7B: method %s resources %v, want lora sized for 7.2B", kj.Annotations["lathe.dev/method"], c.Resources)
	}
	if pod.RestartPolicy != corev1.RestartPolicyNever || pod.NodeSelector["pool"] != "gpu" || len(pod.Tolerations) != 1 ||
		c.EnvFrom[0].SecretRef.Name != "lathe" {
		t.Errorf("pod spec %+v", pod)
	}
	small := JobFor(job.Spec{Name: "s", BaseModel: "SmolLM2-135M", HyperParameters: map[string]string{"epochCount": "1"}}, s)
	if small.Annotations["lathe.dev/method"] != "full" {
		t.Errorf("SmolLM2-135M method %s, want full", small.Annotations["lathe.dev/method"])
	}
}

func TestParseFlags(t *testing.T) {
	sel, err := ParseNodeSelector("pool=gpu, zone=a")
	if err != nil || !reflect.DeepEqual(sel, map[string]string{"pool": "gpu", "zone": "a"}) {
		t.Errorf("node selector %v, %v", sel, err)
	}
	if _, err := ParseNodeSelector("pool"); err == nil || !strings.Contains(err.Error(), "--kube-node-selector") {
		t.Errorf("bad node selector: %v", err)
	}
	tol, err := ParseTolerations("nvidia.com/gpu:NoSchedule,dedicated=training:NoExecute,any")
	want := []corev1.Toleration{
		{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "training", Effect: corev1.TaintEffectNoExecute},
		{Key: "any", Operator: corev1.TolerationOpExists},
	}
	if err != nil || !reflect.DeepEqual(tol, want) {
		t.Errorf("tolerations %+v, %v", tol, err)
	}
	if _, err := ParseTolerations("a:Sometimes"); err == nil || !strings.Contains(err.Error(), "--kube-tolerations") {
		t.Errorf("bad effect: %v", err)
	}
}
