package kube

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestServingResources(t *testing.T) {
	for _, tc := range []struct {
		name          string
		params        int64
		weights       string
		gpus          int
		cpu, mem, lim string
	}{
		// 4 B x 260K x 1.25 = 1.24 MiB, + 512, rounded up to MiB.
		{"tiny float32", 260_000, "", 0, "1", "514Mi", "1028Mi"},
		// 4 B x 7B x 1.25 = 33378.6 MiB, + 512; 28 cores capped at 16.
		{"7B float32", 7_000_000_000, "float32", 1, "16", "33891Mi", "67782Mi"},
		// 2 B x 7B x 1.25 = 16689.3 MiB, + 512.
		{"7B bfloat16", 7_000_000_000, "bfloat16", 0, "16", "17202Mi", "34404Mi"},
		// 4 B x 1.7B x 1.25 = 8106.2 MiB, + 512; 6.8 -> 7 cores.
		{"1.7B", 1_700_000_000, "auto", 0, "7", "8619Mi", "17238Mi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkResources(t, ServingResources(tc.params, tc.weights, tc.gpus), tc.cpu, tc.mem, tc.lim, tc.gpus, "generation")
		})
	}
}

func TestDeploymentForRunsTheVariantsReplicas(t *testing.T) {
	s := Settings{Namespace: "ml", Image: "lathe:1", Secret: "lathe", S3Endpoint: "http://s3:9000", ModelsBucket: "models", GPUs: 1,
		ServiceAccount: "lathe-job", NodeSelector: map[string]string{"pool": "gpu"},
		Tolerations: []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists}},
		Env:         []corev1.EnvVar{{Name: "LATHE_REGION", Value: "eu-west-1"}}}
	spec := []byte(`{"name":"AllTraffic","model_name":"tuned","weight":0,"instance_count":0,"source":"s3://out/model.tar.gz",` +
		`"environment":{"LATHE_BASE_MODEL":"Mistral7B","LATHE_WEIGHTS_DTYPE":"bfloat16"}}`)
	v, err := ParseVariant("My-Endpoint", spec)
	if err != nil {
		t.Fatal(err)
	}
	v.Replicas = 3
	d := DeploymentFor(v, s)
	if d.Namespace != "ml" || d.Labels[LabelEndpoint] != "my-endpoint" || d.Labels[LabelVariant] != "AllTraffic" ||
		d.Annotations[AnnotationEndpointName] != "My-Endpoint" || d.Annotations["lathe.dev/model-data"] != "s3://out/model.tar.gz" {
		t.Fatalf("metadata %s/%s %v %v", d.Namespace, d.Name, d.Labels, d.Annotations)
	}
	if *d.Spec.Replicas != 3 {
		t.Errorf("replicas %d, want the variant's 3", *d.Spec.Replicas)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if ru == nil || ru.MaxUnavailable.IntValue() != 0 || ru.MaxSurge.IntValue() != 1 {
		t.Errorf("rolling update %+v, want a pod more before one less", ru)
	}
	// The selector picks the template's pods, and no other variant's.
	for k, want := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != want {
			t.Errorf("selector %s=%s does not match the template's %q", k, want, d.Spec.Template.Labels[k])
		}
	}
	if d.Spec.Selector.MatchLabels[LabelVariant] != "AllTraffic" {
		t.Errorf("selector %v does not name the variant", d.Spec.Selector.MatchLabels)
	}
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	wantArgs := []string{"worker", "--endpoint", "My-Endpoint", "--variant", "AllTraffic", "--data-dir", DataDir,
		"--replica-addr", "0.0.0.0:8080", "--s3-endpoint", "http://s3:9000", "--models-bucket", "models"}
	if c.Image != "lathe:1" || !slices.Equal(c.Command, []string{"lathe"}) || !slices.Equal(c.Args, wantArgs) {
		t.Errorf("container %s %v %v, want lathe:1 lathe %v", c.Image, c.Command, c.Args, wantArgs)
	}
	// Mistral7B (the catalog's 7.2B parameters) in bfloat16.
	if got := c.Resources.Requests.Memory().String(); got != "17679Mi" {
		t.Errorf("memory request %s, want 17679Mi (Mistral7B's weights in bfloat16)", got)
	}
	if got := c.Resources.Limits[GPUResource]; got.Value() != 1 {
		t.Errorf("gpu limit %s, want 1", got.String())
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if env["LATHE_REGION"].Value != "eu-west-1" {
		t.Errorf("env %v lacks the settings' LATHE_REGION", c.Env)
	}
	if f := env[EnvWorkerID].ValueFrom; f == nil || f.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("%s from %+v, want the pod's name", EnvWorkerID, f)
	}
	if f := env[EnvReplicaAdvertise].ValueFrom; f == nil || f.FieldRef.FieldPath != "status.podIP" {
		t.Errorf("%s from %+v, want the pod's IP", EnvReplicaAdvertise, f)
	}
	p := c.ReadinessProbe
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/_lathe/ready" || p.HTTPGet.Port.String() != "replica" ||
		len(c.Ports) != 1 || c.Ports[0].Name != "replica" || c.Ports[0].ContainerPort != ReplicaPort {
		t.Errorf("readiness probe %+v on ports %+v, want GET /_lathe/ready on the replica port", p, c.Ports)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != "lathe" {
		t.Errorf("envFrom %+v, want the lathe Secret", c.EnvFrom)
	}
	if pod.ServiceAccountName != "lathe-job" || *pod.AutomountServiceAccountToken || pod.NodeSelector["pool"] != "gpu" ||
		len(pod.Tolerations) != 1 || pod.RestartPolicy != "" {
		t.Errorf("pod spec: sa %s automount %v selector %v tolerations %v restart %q", pod.ServiceAccountName,
			*pod.AutomountServiceAccountToken, pod.NodeSelector, pod.Tolerations, pod.RestartPolicy)
	}

	svc := ServiceFor("My-Endpoint", s)
	if svc.Namespace != "ml" || svc.Spec.Selector[LabelEndpoint] != "my-endpoint" || svc.Spec.Selector[LabelVariant] != "" ||
		len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != ReplicaPort || svc.Spec.Ports[0].TargetPort.String() != "replica" {
		t.Errorf("service %s/%s selector %v ports %+v, want every pod of the endpoint on the replica port", svc.Namespace, svc.Name, svc.Spec.Selector, svc.Spec.Ports)
	}
	for k, want := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != want {
			t.Errorf("the Service's selector %s=%s misses the variant's pods (%q)", k, want, d.Spec.Template.Labels[k])
		}
	}
}

func TestObjectNamesAreDNSLabels(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, tc := range []struct{ endpoint, variant string }{
		{"e", "AllTraffic"}, {"My-Endpoint", "Variant-B"}, {long, strings.Repeat("Z", 63)}, {"9lives", "v1"},
	} {
		for _, name := range []string{DeploymentName(tc.endpoint, tc.variant), ServiceName(tc.endpoint)} {
			if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
				t.Errorf("%s/%s: name %q: %v", tc.endpoint, tc.variant, name, errs)
			}
		}
	}
	// Lower-casing and cutting do not make two endpoints' or variants' objects one.
	if DeploymentName("e", "A") == DeploymentName("e", "a") || ServiceName(long+"x") == ServiceName(long+"y") ||
		DeploymentName(long, "v1") == DeploymentName(long, "v2") {
		t.Error("two variants share a Deployment name")
	}
	if ServiceName("My-Endpoint") != ServiceName("my-endpoint") {
		t.Error("the Service name depends on the case of the endpoint name (endpoints are unique case-insensitively)")
	}
}
