// Package kube is Lathe's Kubernetes executor: an API node started with `lathe serve --executor
// kubernetes` runs each AutoML job as a batch/v1 Job whose one pod runs `lathe worker --job NAME`
// against the shared PostgreSQL database and S3. The job row stays the source of truth (the pod
// claims it with a lease and writes its progress, checkpoints and outcome as any worker does); the
// executor creates the Jobs, deletes them on Stop, and writes into the job row what only
// Kubernetes knows: that its pods failed for good (backoff limit, out of memory, evicted).
package kube

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/finetune"
	"github.com/lathe-ml/lathe/internal/job"
)

// Labels and annotations of the objects the executor creates.
const (
	// LabelJob holds the lower-cased AutoML job name (names are unique case-insensitively).
	LabelJob = "lathe.dev/job"
	// AnnotationJobName holds the job name as the user spelled it.
	AnnotationJobName = "lathe.dev/job-name"
	labelManagedBy    = "app.kubernetes.io/managed-by"
	labelName         = "app.kubernetes.io/name"
	labelComponent    = "app.kubernetes.io/component"
	// ContainerName is the name of the worker container in a job's pod.
	ContainerName = "worker"
	// DataDir is where the pod's emptyDir volume (the worker's model cache and scratch) is mounted.
	DataDir = "/var/lib/lathe"
	// GPUResource is the extended resource of the NVIDIA device plugin.
	GPUResource corev1.ResourceName = "nvidia.com/gpu"
)

// ExitJobFailed is the exit status of `lathe worker --job` when the job ended Failed: the outcome is
// already in the database, so the Job's pod failure policy ends the Job at once instead of
// running the failed job again. Any other non-zero status (a crash, the OOM killer, SIGTERM) is a
// pod failure that the Job retries, and the next pod resumes the job from its last checkpoint.
const ExitJobFailed = 3

// BackoffLimit is how many times a job's pod is replaced after it dies before the Job fails.
const BackoffLimit = 2

// Settings say where and how the job pods run.
type Settings struct {
	Namespace string
	Image     string
	// Secret is the Secret whose keys become the pod's environment: LATHE_DATABASE (the PostgreSQL
	// URL, with its password), AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of the S3, and any other
	// LATHE_ setting. The database URL is kept out of the pod's arguments, which anyone who may read
	// Jobs sees.
	Secret       string
	NodeSelector map[string]string
	Tolerations  []corev1.Toleration
	// GPUs is the nvidia.com/gpu limit of each job pod; 0 asks for none.
	GPUs int
	// ServiceAccount runs the pods; empty: the namespace's default.
	ServiceAccount string
	// S3Endpoint and ModelsBucket are the API node's --s3-endpoint and --models-bucket.
	S3Endpoint   string
	ModelsBucket string
	// Env is set in every pod as is: LATHE_REGION and LATHE_ACCOUNT_ID, which must be the API node's.
	Env []corev1.EnvVar
	// TTLAfterFinished is how long a finished Job is kept (its pods' logs with it); default one day.
	TTLAfterFinished int32
}

// JobName is the name of the Kubernetes Job of an AutoML job: AutoML names (at most 32 letters,
// digits and hyphens, starting and ending with a letter or digit) lower-cased are DNS labels.
func JobName(automlJob string) string { return "lathe-" + strings.ToLower(automlJob) }

// Resources are the requests and limits of a job's pod.
//
// Lathe's engine trains in float32 on the CPU, so memory follows the parameter count P of the base
// model and the method that ResolveHyperParameters picks for it (or the job's own):
//
//	full: 16 bytes/parameter (weights, gradients and the two AdamW moments) x 1.25 (activations,
//	      tokenizer, dataset) + 512 MiB for the process
//	lora:  4 bytes/parameter (frozen weights) + 16 bytes for each trained adapter weight (about 1%
//	      of P at rank 16), x 1.25, + 512 MiB
//
// The memory limit is twice the request, so an underestimate is not an out-of-memory kill at
// once. CPU: one core per 250M parameters, at least 1 and at most 16 (training uses every core it
// gets; there is no CPU limit, so an idle node's cores are not wasted). gpus > 0 adds the
// nvidia.com/gpu limit (extended resources are requested by their limit).
func Resources(params int64, method string, gpus int) corev1.ResourceRequirements {
	var bytes float64
	switch method {
	case "lora":
		bytes = 4*float64(params) + 16*0.01*float64(params)
	default:
		bytes = 16 * float64(params)
	}
	return podResources(params, bytes, gpus)
}

// podResources sizes a pod that holds bytes of model state for a model of params parameters: memory
// requested 1.25 x bytes + 512 MiB (rounded up to MiB), limited at twice that; a core per 250M
// parameters, 1 to 16, and no CPU limit; gpus GPUs when asked.
func podResources(params int64, bytes float64, gpus int) corev1.ResourceRequirements {
	const mib = 1 << 20
	mem := int64(math.Ceil((bytes*1.25+512*mib)/mib)) * mib
	cpu := min(max((params+249_999_999)/250_000_000, 1), 16)
	r := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewQuantity(cpu, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(mem, resource.BinarySI),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceMemory: *resource.NewQuantity(2*mem, resource.BinarySI),
		},
	}
	if gpus > 0 {
		r.Limits[GPUResource] = *resource.NewQuantity(int64(gpus), resource.DecimalSI)
	}
	return r
}

// sizeOf is the parameter count and method of a job: the catalog's count for its base model, and
// the method the hyperparameters resolve to. A base model outside the catalog (imported under a
// name of its own) is sized as the smallest: its pod gets the minimum requests.
func sizeOf(spec job.Spec) (int64, string) {
	var params int64
	if m, ok := catalog.Lookup(spec.BaseModel); ok {
		params = m.Parameters
	}
	method := "full"
	if hp, err := finetune.ResolveHyperParameters(params, spec.HyperParameters); err == nil {
		method = hp.Method
	}
	return params, method
}

// JobFor is the Kubernetes Job that runs one AutoML job.
func JobFor(spec job.Spec, s Settings) *batchv1.Job {
	params, method := sizeOf(spec)
	labels := map[string]string{
		labelName: "lathe", labelComponent: "job", labelManagedBy: "lathe",
		LabelJob: strings.ToLower(spec.Name),
	}
	annotations := map[string]string{AnnotationJobName: spec.Name, "lathe.dev/job-arn": spec.ARN,
		"lathe.dev/base-model": spec.BaseModel, "lathe.dev/parameters": strconv.FormatInt(params, 10), "lathe.dev/method": method}
	args := []string{"worker", "--job", spec.Name, "--data-dir", DataDir}
	if s.S3Endpoint != "" {
		args = append(args, "--s3-endpoint", s.S3Endpoint)
	}
	if s.ModelsBucket != "" {
		args = append(args, "--models-bucket", s.ModelsBucket)
	}
	c := corev1.Container{
		Name: ContainerName, Image: s.Image, Command: []string{"lathe"}, Args: args,
		Env:          append([]corev1.EnvVar(nil), s.Env...),
		Resources:    Resources(params, method, s.GPUs),
		VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: DataDir}},
	}
	if s.Secret != "" {
		c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: s.Secret}}}}
	}
	ttl := s.TTLAfterFinished
	if ttl == 0 {
		ttl = 24 * 3600
	}
	backoff := int32(BackoffLimit)
	automount := false
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: JobName(spec.Name), Namespace: s.Namespace, Labels: labels, Annotations: annotations},
		Spec: batchv1.JobSpec{
			BackoffLimit:            &backoff,
			TTLSecondsAfterFinished: &ttl,
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				// The job's outcome (Failed) is written: running it again would fail again.
				{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					ContainerName: ptr(ContainerName), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{ExitJobFailed}}},
				// A drained node or a preemption is not the job's fault: it resumes on a new pod
				// without using up the backoff limit.
				{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
					{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
			}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					ServiceAccountName:           s.ServiceAccount,
					AutomountServiceAccountToken: &automount, // the worker never calls the Kubernetes API
					NodeSelector:                 s.NodeSelector,
					Tolerations:                  s.Tolerations,
					Containers:                   []corev1.Container{c},
					Volumes:                      []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// ParseNodeSelector reads --kube-node-selector: k=v pairs separated by commas.
func ParseNodeSelector(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--kube-node-selector: %q is not key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// ParseTolerations reads --kube-tolerations: comma-separated key[=value]:Effect or key:Effect, as
// kubectl taint writes taints ("nvidia.com/gpu:NoSchedule", "dedicated=training:NoSchedule"); an
// empty effect ("key=value:" or "key") tolerates every effect. A key with no value tolerates the
// taint whatever its value (operator Exists).
func ParseTolerations(s string) ([]corev1.Toleration, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []corev1.Toleration
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		kv, effect, _ := strings.Cut(item, ":")
		t := corev1.Toleration{Effect: corev1.TaintEffect(effect)}
		switch t.Effect {
		case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			return nil, fmt.Errorf("--kube-tolerations: %q: the effect must be NoSchedule, PreferNoSchedule or NoExecute, got %q", item, effect)
		}
		k, v, hasValue := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("--kube-tolerations: %q has no key (key[=value][:Effect])", item)
		}
		t.Key = k
		if hasValue {
			t.Operator, t.Value = corev1.TolerationOpEqual, v
		} else {
			t.Operator = corev1.TolerationOpExists
		}
		out = append(out, t)
	}
	return out, nil
}
