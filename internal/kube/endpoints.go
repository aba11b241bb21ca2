package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lathe-ml/lathe/internal/store"
)

// annotationTemplate holds a digest of the pod template the executor wrote, so that a sweep
// updates a Deployment only when what it asks for changed (the API server fills defaults into the
// stored template, which would otherwise never compare equal).
const annotationTemplate = "lathe.dev/template-digest"

// UnschedulableGrace is how long an endpoint's pod may wait for a node before its replica is
// failed (a cluster autoscaler adds nodes in minutes).
var UnschedulableGrace = 5 * time.Minute

// failingWaits are the reasons a container waits for that do not go away by themselves.
var failingWaits = map[string]bool{
	"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImagePull": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true,
}

// endpointGroup is one variant of an endpoint as the store's replicas have it.
type endpointGroup struct {
	variant  Variant
	replicas []store.Replica
}

// sweepEndpoints brings the endpoints' Deployments and Services in line with the replicas the
// endpoint service recorded in the store (every API node, and a job's pod that deploys its model,
// records them; this executor turns them into pods):
//   - each variant with replicas has a Deployment of as many pods (its pods claim the replicas);
//     during a rolling update the old and new replicas are counted together, so the pod that loads
//     a new replica is there before the old one is retired;
//   - each endpoint with replicas has a Service;
//   - a Deployment or Service whose endpoint has no replicas any more (deleted, failed) goes;
//   - a variant whose pods cannot run (crash loop, image pull, no node, the Deployment's progress
//     deadline) has its replicas that do not serve yet marked Failed with Kubernetes' reason: the
//     endpoint's create or update then ends Failed (rolled back) with it.
func (e *Executor) sweepEndpoints(ctx context.Context) error {
	all, err := e.Replicas.ListReplicas(ctx)
	if err != nil {
		return fmt.Errorf("list endpoint replicas: %w", err)
	}
	groups := map[string]*endpointGroup{} // by Deployment name
	services := map[string]string{}       // Service name -> endpoint name
	for _, r := range all {
		v, err := ParseVariant(r.Endpoint, r.Spec)
		if err != nil {
			e.Logger.Warn("endpoint replica with an unreadable spec", "replica", r.ID, "err", err)
			continue
		}
		v.Name = r.Variant
		name := DeploymentName(r.Endpoint, r.Variant)
		g := groups[name]
		if g == nil {
			g = &endpointGroup{variant: v}
			groups[name] = g
		} else if v.parameters() > g.variant.parameters() {
			// An update's replicas beside the old ones: a pod may load either, so it is sized
			// for the larger model.
			g.variant = v
		}
		g.replicas = append(g.replicas, r)
		services[ServiceName(r.Endpoint)] = r.Endpoint
	}
	ns := e.Settings.Namespace
	selector := labelManagedBy + "=lathe," + labelComponent + "=endpoint"
	deps, err := e.Client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return fmt.Errorf("list Deployments in namespace %s: %w", ns, err)
	}
	svcs, err := e.Client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return fmt.Errorf("list Services in namespace %s: %w", ns, err)
	}
	var errs []error
	existing := map[string]*appsv1.Deployment{}
	for i := range deps.Items {
		d := &deps.Items[i]
		if _, ok := groups[d.Name]; !ok {
			if d.DeletionTimestamp == nil {
				errs = append(errs, e.deleteDeployment(ctx, d))
			}
			continue
		}
		existing[d.Name] = d
	}
	holders := map[string]bool{} // pods (by name: the worker id) that hold a replica
	for _, r := range all {
		if r.Worker != "" && r.State != store.ReplicaFailed {
			holders[r.Worker] = true
		}
	}
	pods, err := e.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list endpoint pods in namespace %s: %w", ns, err))...)
	}
	for name, g := range groups {
		g.variant.Replicas = int32(len(g.replicas))
		cur := existing[name]
		if e.markIdlePods(ctx, pods.Items, g.variant, holders) && cur != nil && cur.Spec.Replicas != nil && *cur.Spec.Replicas > g.variant.Replicas {
			// A scale-down waits for the next sweep, once the ReplicaSet controller has seen
			// which pods are idle: it must remove those, not one that serves.
			continue
		}
		d, err := e.applyDeployment(ctx, cur, g.variant)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pending := slices.ContainsFunc(g.replicas, func(r store.Replica) bool { return r.State == store.ReplicaPending })
		if !pending {
			continue // every replica serves (or failed already): its pods run
		}
		if why := e.variantFailure(ctx, d); why != "" {
			errs = append(errs, e.failPending(ctx, g, why))
		}
	}
	haveSvc := map[string]bool{}
	for i := range svcs.Items {
		s := &svcs.Items[i]
		if _, ok := services[s.Name]; ok {
			haveSvc[s.Name] = true
			continue
		}
		if s.DeletionTimestamp == nil {
			err := e.Client.CoreV1().Services(ns).Delete(ctx, s.Name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete Service %s/%s: %w", ns, s.Name, err))
				continue
			}
			e.Logger.Info("deleted the Service of a removed endpoint", "service", s.Name, "endpoint", s.Annotations[AnnotationEndpointName])
		}
	}
	for name, endpoint := range services {
		if haveSvc[name] {
			continue
		}
		_, err := e.Client.CoreV1().Services(ns).Create(ctx, ServiceFor(endpoint, e.Settings), metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			errs = append(errs, fmt.Errorf("create Service %s/%s of endpoint %s: %w", ns, name, endpoint, err))
			continue
		}
		e.Logger.Info("created the Service of an endpoint", "service", name, "endpoint", endpoint)
	}
	return errors.Join(errs...)
}

// annotationDeletionCost is the ReplicaSet controller's pod deletion cost: of a Deployment's pods,
// a scale-down removes those of lower cost first.
const annotationDeletionCost = "controller.kubernetes.io/pod-deletion-cost"

// markIdlePods gives the variant's pods that hold a replica a high deletion cost and the others
// (left without one by a scale-down or a rolling update) a low one, so that scaling the Deployment
// down removes an idle pod rather than one that serves (its readiness probe says so too, but only a
// few seconds later). It reports whether it changed any pod.
func (e *Executor) markIdlePods(ctx context.Context, pods []corev1.Pod, v Variant, holders map[string]bool) bool {
	changed := false
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil || p.Labels[LabelEndpoint] != strings.ToLower(v.Endpoint) || p.Labels[LabelVariant] != v.Name {
			continue
		}
		cost := "-100"
		if holders[p.Name] {
			cost = "100"
		}
		if p.Annotations[annotationDeletionCost] == cost {
			continue
		}
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, annotationDeletionCost, cost)
		_, err := e.Client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		if err != nil {
			if !apierrors.IsNotFound(err) {
				e.Logger.Warn("mark an endpoint pod's deletion cost", "pod", p.Name, "err", err)
			}
			continue
		}
		changed = true
	}
	return changed
}

// applyDeployment creates the variant's Deployment, or updates its replica count and pod template
// when they changed; it returns the Deployment as the cluster has it.
func (e *Executor) applyDeployment(ctx context.Context, cur *appsv1.Deployment, v Variant) (*appsv1.Deployment, error) {
	want := DeploymentFor(v, e.Settings)
	tmpl, _ := json.Marshal(want.Spec.Template)
	sum := sha256.Sum256(tmpl)
	want.Annotations[annotationTemplate] = hex.EncodeToString(sum[:8])
	api := e.Client.AppsV1().Deployments(e.Settings.Namespace)
	if cur == nil {
		d, err := api.Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return api.Get(ctx, want.Name, metav1.GetOptions{}) // another API node's
		}
		if err != nil {
			return nil, fmt.Errorf("create Deployment %s/%s of endpoint %s: %w", want.Namespace, want.Name, v.Endpoint, err)
		}
		res := want.Spec.Template.Spec.Containers[0].Resources
		e.Logger.Info("created the Deployment of an endpoint variant", "endpoint", v.Endpoint, "variant", v.Name, "deployment", d.Name,
			"replicas", v.Replicas, "cpu", res.Requests.Cpu().String(), "memory", res.Requests.Memory().String())
		return d, nil
	}
	if cur.DeletionTimestamp != nil {
		return cur, nil // being deleted (the endpoint went and came back): a later sweep creates it
	}
	scale := cur.Spec.Replicas == nil || *cur.Spec.Replicas != v.Replicas
	retemplate := cur.Annotations[annotationTemplate] != want.Annotations[annotationTemplate]
	if !scale && !retemplate {
		return cur, nil
	}
	next := cur.DeepCopy()
	next.Spec.Replicas = want.Spec.Replicas
	// Merged, not replaced: the Deployment controller keeps its revision in the annotations.
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	for k, v := range want.Annotations {
		next.Annotations[k] = v
	}
	if retemplate {
		next.Spec.Template = want.Spec.Template
	}
	d, err := api.Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		// A conflict is another API node's write: the next sweep reads it and decides again.
		return nil, fmt.Errorf("update Deployment %s/%s of endpoint %s: %w", cur.Namespace, cur.Name, v.Endpoint, err)
	}
	e.Logger.Info("updated the Deployment of an endpoint variant", "endpoint", v.Endpoint, "variant", v.Name, "deployment", d.Name,
		"replicas", v.Replicas, "template_changed", retemplate)
	return d, nil
}

func (e *Executor) deleteDeployment(ctx context.Context, d *appsv1.Deployment) error {
	bg := metav1.DeletePropagationBackground
	err := e.Client.AppsV1().Deployments(d.Namespace).Delete(ctx, d.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	e.Logger.Info("deleted the Deployment of a removed endpoint variant", "deployment", d.Name, "endpoint", d.Annotations[AnnotationEndpointName])
	return nil
}

// variantFailure says why a variant's pods cannot serve, "" while nothing says so: the
// Deployment's progress deadline ran out, or one of its pods waits for something that will not
// come (a crash loop, an image that cannot be pulled, a node that does not exist for longer than
// UnschedulableGrace).
func (e *Executor) variantFailure(ctx context.Context, d *appsv1.Deployment) string {
	where := fmt.Sprintf("Kubernetes Deployment %s/%s", d.Namespace, d.Name)
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			return fmt.Sprintf("%s: %s: %s", where, c.Reason, c.Message)
		}
	}
	sel := metav1.FormatLabelSelector(d.Spec.Selector)
	pods, err := e.Client.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return ""
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		if why := podProblem(p); why != "" {
			return fmt.Sprintf("%s: pod %s: %s", where, p.Name, why)
		}
	}
	return ""
}

// podProblem says what keeps a pod from ever serving, "" when nothing does.
func podProblem(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && failingWaits[w.Reason] {
			why := fmt.Sprintf("container %s %s", cs.Name, w.Reason)
			if t := cs.LastTerminationState.Terminated; t != nil {
				why += fmt.Sprintf(" (last exit %d, %s)", t.ExitCode, t.Reason)
			}
			if w.Message != "" {
				why += ": " + w.Message
			}
			return why
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable &&
			time.Since(c.LastTransitionTime.Time) > UnschedulableGrace {
			return fmt.Sprintf("no node can run it for %s: %s", time.Since(c.LastTransitionTime.Time).Round(time.Second), c.Message)
		}
	}
	return ""
}

// failPending marks the variant's replicas that do not serve yet Failed, with why; a replica that
// serves is left alone (its pod runs).
func (e *Executor) failPending(ctx context.Context, g *endpointGroup, why string) error {
	var errs []error
	for _, r := range g.replicas {
		if r.State != store.ReplicaPending {
			continue
		}
		ok, err := e.Replicas.ReportReplica(ctx, r.ID, r.Worker, store.ReplicaFailed, "", truncate(why, 900))
		if err != nil {
			errs = append(errs, fmt.Errorf("fail replica %s: %w", r.ID, err))
			continue
		}
		if ok {
			e.Logger.Warn("endpoint replica failed: its pods cannot run", "replica", r.ID, "endpoint", r.Endpoint, "reason", why)
		}
	}
	return errors.Join(errs...)
}
