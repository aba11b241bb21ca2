package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/lathe-ml/lathe/internal/catalog"
)

// Labels and annotations of an endpoint's objects.
const (
	// LabelEndpoint holds the lower-cased endpoint name (names are unique case-insensitively).
	LabelEndpoint = "lathe.dev/endpoint"
	// LabelVariant holds the production variant's name.
	LabelVariant = "lathe.dev/variant"
	// AnnotationEndpointName holds the endpoint name as the user spelled it.
	AnnotationEndpointName = "lathe.dev/endpoint-name"
	// ReplicaContainer is the name of the container of an endpoint's pod.
	ReplicaContainer = "replica"
	// ReplicaPort is the port of a pod's replica listener (InvokeEndpoint from the API nodes, and
	// the readiness probe).
	ReplicaPort = 8080
	// Environment of an endpoint's pod, filled by Kubernetes from the pod itself: its name is the
	// process's worker id (so the executor can tell which pod holds which replica), its IP the
	// address the API nodes reach it at.
	EnvWorkerID         = "LATHE_WORKER_ID"
	EnvReplicaAdvertise = "LATHE_REPLICA_ADVERTISE"
)

// Variant is what the executor needs of one production variant of an endpoint: read from the
// replicas the endpoint service records in the store (their spec is package endpoint's variant
// spec, of which only these fields are read here).
type Variant struct {
	Endpoint string `json:"-"` // as created
	Name     string `json:"name"`
	Replicas int32  `json:"-"`
	Model    string `json:"model_name"`
	Source   string `json:"source"`
	// Environment: LATHE_BASE_MODEL sizes the pod from the catalog, LATHE_WEIGHTS_DTYPE bfloat16
	// halves its weights.
	Environment map[string]string `json:"environment"`
}

// ParseVariant reads a replica's spec.
func ParseVariant(endpoint string, spec []byte) (Variant, error) {
	var v Variant
	if err := json.Unmarshal(spec, &v); err != nil {
		return Variant{}, fmt.Errorf("endpoint %s: replica spec: %w", endpoint, err)
	}
	v.Endpoint = endpoint
	return v, nil
}

// shortName is "lathe-" + parts joined by "-", cut to fit a DNS label with a digest of the full
// parts at the end (lower-casing or cutting could make two names one).
func shortName(parts ...string) string {
	full := strings.Join(parts, "/")
	sum := sha256.Sum256([]byte(full))
	body := strings.ToLower(strings.Join(parts, "-"))
	if len(body) > 46 {
		body = strings.TrimRight(body[:46], "-")
	}
	return "lathe-" + body + "-" + hex.EncodeToString(sum[:4])
}

// DeploymentName is the name of the Deployment of an endpoint's variant.
func DeploymentName(endpoint, variant string) string {
	return shortName(strings.ToLower(endpoint), variant)
}

// ServiceName is the name of an endpoint's Service.
func ServiceName(endpoint string) string { return shortName(strings.ToLower(endpoint)) }

// ServingResources are the requests and limits of an endpoint's pod: its weights (4 bytes a
// parameter, 2 in bfloat16) x 1.25 (KV caches of a batch, activations, tokenizer) + 512 MiB for the
// process, the limit twice that; a core per 250M parameters, 1 to 16, no CPU limit; gpus > 0 adds
// the nvidia.com/gpu limit.
func ServingResources(params int64, weights string, gpus int) corev1.ResourceRequirements {
	perParam := 4.0
	if weights == "bfloat16" {
		perParam = 2
	}
	return podResources(params, perParam*float64(params), gpus)
}

// parameters is the variant's model size: the catalog's count for its base model, the served one
// or the one it was fine-tuned from when its environment names it; 0 (the least resources) for a
// model the catalog does not know.
func (v Variant) parameters() int64 {
	if m, ok := catalog.Lookup(v.Environment["LATHE_BASE_MODEL"]); ok {
		return m.Parameters
	}
	if m, ok := catalog.Lookup(v.Model); ok {
		return m.Parameters
	}
	return 0
}

func endpointLabels(endpoint string) map[string]string {
	return map[string]string{labelName: "lathe", labelComponent: "endpoint", labelManagedBy: "lathe", LabelEndpoint: strings.ToLower(endpoint)}
}

// DeploymentFor is the Deployment that runs a variant's replicas: Replicas pods, each running
// `lathe worker --endpoint NAME --variant V`, which claims one of the variant's replicas in the
// store, loads its model and serves it on ReplicaPort; the pod is Ready once it serves.
func DeploymentFor(v Variant, s Settings) *appsv1.Deployment {
	params := v.parameters()
	labels := endpointLabels(v.Endpoint)
	labels[LabelVariant] = v.Name
	selector := map[string]string{labelComponent: "endpoint", LabelEndpoint: labels[LabelEndpoint], LabelVariant: v.Name}
	annotations := map[string]string{AnnotationEndpointName: v.Endpoint, "lathe.dev/model": v.Model,
		"lathe.dev/parameters": strconv.FormatInt(params, 10)}
	if v.Source != "" {
		annotations["lathe.dev/model-data"] = v.Source
	}
	args := []string{"worker", "--endpoint", v.Endpoint, "--variant", v.Name, "--data-dir", DataDir,
		"--replica-addr", fmt.Sprintf("0.0.0.0:%d", ReplicaPort)}
	if s.S3Endpoint != "" {
		args = append(args, "--s3-endpoint", s.S3Endpoint)
	}
	if s.ModelsBucket != "" {
		args = append(args, "--models-bucket", s.ModelsBucket)
	}
	env := append([]corev1.EnvVar(nil), s.Env...)
	env = append(env,
		corev1.EnvVar{Name: EnvWorkerID, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		corev1.EnvVar{Name: EnvReplicaAdvertise, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}})
	c := corev1.Container{
		Name: ReplicaContainer, Image: s.Image, Command: []string{"lathe"}, Args: args, Env: env,
		Ports:     []corev1.ContainerPort{{Name: "replica", ContainerPort: ReplicaPort, Protocol: corev1.ProtocolTCP}},
		Resources: ServingResources(params, v.Environment["LATHE_WEIGHTS_DTYPE"], s.GPUs),
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/_lathe/ready", Port: intstr.FromString("replica")}},
			PeriodSeconds: 2, FailureThreshold: 2,
		},
		VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: DataDir}},
	}
	if s.Secret != "" {
		c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: s.Secret}}}}
	}
	automount := false
	replicas := v.Replicas
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: DeploymentName(v.Endpoint, v.Name), Namespace: s.Namespace, Labels: labels, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			// A new pod must serve before an old one goes: the endpoint never has fewer
			// replicas serving during a rollout (a change of resources).
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr(intstr.FromInt32(0)), MaxSurge: ptr(intstr.FromInt32(1))}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName:           s.ServiceAccount,
					AutomountServiceAccountToken: &automount, // the pod talks to the store and S3 only
					NodeSelector:                 s.NodeSelector,
					Tolerations:                  s.Tolerations,
					Containers:                   []corev1.Container{c},
					Volumes:                      []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
}

// ServiceFor is the Service in front of every pod of an endpoint (all its variants): in-cluster
// callers and monitoring find the replicas by it. The API nodes route InvokeEndpoint to each
// replica's own address from the store, with the replica's token, as for replicas on workers.
func ServiceFor(endpoint string, s Settings) *corev1.Service {
	labels := endpointLabels(endpoint)
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName(endpoint), Namespace: s.Namespace, Labels: labels,
			Annotations: map[string]string{AnnotationEndpointName: endpoint}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{labelComponent: "endpoint", LabelEndpoint: labels[LabelEndpoint]},
			Ports:    []corev1.ServicePort{{Name: "replica", Port: ReplicaPort, TargetPort: intstr.FromString("replica"), Protocol: corev1.ProtocolTCP}},
		},
	}
}
