package endpoint

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lathe-ml/lathe/internal/store"
)

// Fleet places an API node's endpoints on `lathe worker`s (lathe serve --workers 0): every
// instance of a production variant is a replica in the shared store, placed by the API node on a live
// worker (spreading an endpoint's replicas over workers), loaded and served there, and reached through
// the API node, which routes each call to the ready replica with the fewest calls in flight and tries
// another when one fails before answering. The replicas of a worker whose heartbeat lapsed are placed
// again on the live ones. Every API node (and every worker, which deploys the endpoints of the jobs
// it runs) reconciles from the same store, so an endpoint created through one is routed by all; an
// UpdateEndpoint rolls one replica at a time; a call to a replica carries a bearer derived from the
// fleet's secret in the store (replicaToken), which the worker's listener requires.
type Fleet struct {
	Replicas store.Replicas
	Workers  store.Workers
	// WorkerTimeout is how old a worker's last heartbeat may be before it is taken for dead; default
	// 30 s. It must exceed the workers' heartbeat interval (their --lease / 3).
	WorkerTimeout time.Duration
	// Interval is how often placement and readiness are checked; default 1 s.
	Interval time.Duration
	// Client reaches the workers' replica listeners; default a client without an overall timeout
	// (a generation takes as long as it takes; the caller's context bounds it).
	Client *http.Client
	// SelfPlaced says that no API node places replicas: the processes that serve them claim them
	// (the pods of an endpoint's Kubernetes Deployments, `lathe worker --endpoint`, see Claimer),
	// so that a replica never lands on a job's pod or on another endpoint's. Routing, readiness and
	// rolling updates are as without it.
	SelfPlaced bool
}

// replicaRoute is a ready replica the router may send calls to.
type replicaRoute struct {
	id, variant, addr, worker string
}

// fleetState is the API node's view of the endpoints and their replicas, refreshed by every
// reconcile from the shared store, so that an endpoint created or updated through another API node
// is routed here too.
type fleetState struct {
	endpoints   map[string]remoteEndpoint  // by endpoint key: the endpoints that serve (InService, Updating)
	ready       map[string][]replicaRoute  // by endpoint key: Ready replicas on live workers
	inFlight    map[string]*atomic.Int64   // by replica id: calls this node has in flight there
	suspect     map[string]time.Time       // by id@worker: failed a call; skipped until then
	byEndpoint  map[string][]store.Replica // by endpoint key: every replica
	liveWorkers map[string]bool
	secret      []byte // the fleet's replica secret: the bearer of each call derives from it
	// servedAt: when this node put an endpoint into service itself (startLoad), so that a reconcile
	// that read the rows before that (the endpoint still Creating) does not drop it from endpoints
	// (a call right after DescribeEndpoint said InService would be answered "not found").
	servedAt map[string]time.Time
}

// remoteEndpoint is an endpoint served by replicas, as the store has it.
type remoteEndpoint struct {
	name       string // as created: InvokeEndpoint needs this exact case
	deployment deployment
}

// replicaToken is the bearer a replica's listener takes: an HMAC of the replica's ID under the
// fleet's secret, which only processes that read the shared store know. A worker's listener thus
// serves the API nodes of its fleet and no one else who can reach its port.
func replicaToken(secret []byte, id string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("lathe-replica\x00" + id))
	return hex.EncodeToString(m.Sum(nil))
}

func (f *Fleet) defaults() {
	if f.WorkerTimeout <= 0 {
		f.WorkerTimeout = 30 * time.Second
	}
	if f.Interval <= 0 {
		f.Interval = time.Second
	}
	if f.Client == nil {
		f.Client = &http.Client{}
	}
}

// deploymentReplicas lists the replicas a deployment needs: InstanceCount per variant. An ID ends
// with a digest of what the replica serves, so that an update's replicas sit beside the old ones
// until they are ready, and an unchanged variant keeps its replicas.
func deploymentReplicas(key, name string, dep deployment) ([]store.Replica, error) {
	var rs []store.Replica
	for _, v := range dep.Variants {
		n := max(v.InstanceCount, 1)
		// What a replica serves leaves out its variant's share of the calls and how many replicas
		// there are: changing those (UpdateEndpointWeightsAndCapacities) keeps the replicas.
		v.Weight, v.InstanceCount = 0, 0
		spec, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(spec)
		for i := range n {
			rs = append(rs, store.Replica{ID: fmt.Sprintf("%s/%s/%d-%x", key, v.Name, i, sum[:4]), Endpoint: name, Variant: v.Name, Spec: spec})
		}
	}
	return rs, nil
}

// placeDeployment records the deployment's replicas and waits until every one is Ready (an error
// when one failed to load). An update rolls: one new replica is added, and once it is Ready (and the
// other API nodes have had a reconcile round to see it) one old replica goes, then the next; so the
// endpoint never serves with fewer ready replicas than before, and a replica that goes is one every
// router already has an alternative to. Replicas of a variant the update leaves unchanged stay.
func (s *Service) placeDeployment(ctx context.Context, key string, row endpointRow, update bool) error {
	rs, err := deploymentReplicas(key, row.Name, row.Deployment)
	if err != nil {
		return err
	}
	f := s.cfg.Fleet
	var old []store.Replica // the replicas serving now, as the store has them
	if update {
		all, err := f.Replicas.ListReplicas(ctx)
		if err != nil {
			return err
		}
		for _, r := range all {
			if strings.HasPrefix(r.ID, key+"/") {
				old = append(old, r)
			}
		}
	}
	if len(old) == 0 {
		if err := f.Replicas.SetReplicas(ctx, key, rs); err != nil {
			return err
		}
		return s.waitReplicas(ctx, key, rs)
	}
	has := func(set []store.Replica, id string) bool {
		return slices.ContainsFunc(set, func(r store.Replica) bool { return r.ID == id })
	}
	var fresh, stale []store.Replica
	for _, r := range rs {
		if !has(old, r.ID) {
			fresh = append(fresh, r)
		}
	}
	for _, o := range old {
		if !has(rs, o.ID) {
			stale = append(stale, o)
		}
	}
	cur := slices.Clone(old)
	retire := func(o store.Replica) error {
		// Every router has seen the replica that replaces it by now: this node stops sending to o
		// at once, the others at their next round; a call that still reaches o after its worker
		// unloaded it is answered 503 and retried on another replica.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * f.Interval):
		}
		s.dropRoute(key, o.ID)
		cur = slices.DeleteFunc(cur, func(r store.Replica) bool { return r.ID == o.ID })
		return f.Replicas.SetReplicas(ctx, key, cur)
	}
	for i, n := range fresh {
		cur = append(cur, n)
		if err := f.Replicas.SetReplicas(ctx, key, cur); err != nil {
			return err
		}
		if err := s.waitReplicas(ctx, key, []store.Replica{n}); err != nil {
			return err
		}
		s.log.Info("endpoint update: new replica ready", "endpoint", row.Name, "replica", n.ID, "step", i+1, "of", len(fresh))
		if len(stale) > 0 {
			// The old replica that goes is one on the new one's worker when there is one, so the
			// endpoint stays spread over the workers as it rolls.
			j := 0
			if all, err := f.Replicas.ListReplicas(ctx); err == nil {
				where := map[string]string{}
				for _, r := range all {
					where[r.ID] = r.Worker
				}
				if k := slices.IndexFunc(stale, func(o store.Replica) bool { return where[o.ID] == where[n.ID] }); k >= 0 {
					j = k
				}
			}
			o := stale[j]
			stale = slices.Delete(stale, j, j+1)
			if err := retire(o); err != nil {
				return err
			}
		}
	}
	for _, o := range stale {
		if err := retire(o); err != nil {
			return err
		}
	}
	return s.waitReplicas(ctx, key, rs)
}

// holdUpdate keeps an update's claim on its endpoint while it rolls: it refreshes the row's
// LastModifiedTime every half --worker-timeout, so that no reconcile takes the update for abandoned
// (abandonUpdate), and cancels the returned context when the endpoint is no longer Updating (another
// node rolled it back, or it was deleted), so that this update stops placing replicas.
func (s *Service) holdUpdate(ctx context.Context, key string) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.cfg.Fleet.WorkerTimeout / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			e, err := s.db.getEndpoint(ctx, key)
			if err == nil {
				e.Modified = s.now()
				err = s.db.updateEndpointIf(ctx, key, e, StatusUpdating)
			}
			if errors.Is(err, errNotFound) {
				s.log.Warn("endpoint update taken over or deleted by another process; stopping it", "endpoint", key)
				cancel()
				return
			}
		}
	}()
	return ctx, func() { cancel(); <-done }
}

// abandonUpdate rolls back an update whose process went away (its row has not moved for twice
// --worker-timeout, while holdUpdate refreshes it every half): the endpoint goes back to
// InService with the deployment its row still has, and its replicas are those of that deployment
// again (the old ones that still serve stay; the new ones go).
func (s *Service) abandonUpdate(ctx context.Context, key string, e endpointRow) {
	s.mu.Lock()
	le := s.live[key]
	busy := le != nil && le.cancel != nil
	s.mu.Unlock()
	if busy {
		return
	}
	e.Status, e.Modified = StatusInService, s.now()
	e.Failure = "The update of the endpoint was interrupted (the process that ran it stopped), so it was rolled back."
	if err := s.db.updateEndpointIf(ctx, key, e, StatusUpdating); err != nil {
		return // another node got there first, or the update moved on
	}
	s.log.Warn("endpoint update abandoned by its process: rolled back", "endpoint", e.Name)
	rs, err := deploymentReplicas(key, e.Name, e.Deployment)
	if err == nil {
		err = s.cfg.Fleet.Replicas.SetReplicas(ctx, key, rs)
	}
	if err != nil {
		s.log.Error("restore the replicas of an abandoned update", "endpoint", e.Name, "err", err)
	}
}

// scaleReplicas gives the endpoint the replicas its deployment counts now and waits until they
// are ready; the replicas it keeps serve throughout.
func (s *Service) scaleReplicas(ctx context.Context, key string, e endpointRow) error {
	rs, err := deploymentReplicas(key, e.Name, e.Deployment)
	if err != nil {
		return err
	}
	if err := s.cfg.Fleet.Replicas.SetReplicas(ctx, key, rs); err != nil {
		return err
	}
	return s.waitReplicas(ctx, key, rs)
}

// dropRoute takes a replica out of this node's routing table.
func (s *Service) dropRoute(key, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fleet.ready[key] = slices.DeleteFunc(slices.Clone(s.fleet.ready[key]), func(r replicaRoute) bool { return r.id == id })
}

var errReplicasGone = errors.New("the endpoint's replicas were removed by another API node (the endpoint was deleted)")

// waitReplicas waits until every replica of rs is Ready and the router knows them.
func (s *Service) waitReplicas(ctx context.Context, key string, rs []store.Replica) error {
	f := s.cfg.Fleet
	s.kickReconcile()
	tick := time.NewTicker(f.Interval / 4)
	defer tick.Stop()
	for {
		all, err := f.Replicas.ListReplicas(ctx)
		if err != nil {
			return err
		}
		ready, found := 0, 0
		for _, r := range all {
			if !strings.HasPrefix(r.ID, key+"/") || !slices.ContainsFunc(rs, func(x store.Replica) bool { return x.ID == r.ID }) {
				continue
			}
			found++
			switch r.State {
			case store.ReplicaReady:
				ready++
			case store.ReplicaFailed:
				if r.Worker == "" { // failed before any process took it (its Kubernetes pods cannot run)
					return fmt.Errorf("replica %s: %s", r.ID, r.Failure)
				}
				return fmt.Errorf("replica %s on worker %s: %s", r.ID, r.Worker, r.Failure)
			}
		}
		if found < len(rs) {
			// Another process took them away: the endpoint was deleted (or failed) through another
			// API node while this one waited.
			return errReplicasGone
		}
		if ready == len(rs) {
			s.kickReconcile()
			if s.routable(key, rs) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// routable reports whether the router's view has every replica of rs ready.
func (s *Service) routable(key string, rs []store.Replica) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		if !slices.ContainsFunc(s.fleet.ready[key], func(x replicaRoute) bool { return x.id == r.ID }) {
			return false
		}
	}
	return true
}

// kickReconcile asks the reconcile loop to run now (a new endpoint's replicas need placing).
func (s *Service) kickReconcile() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// runFleet places replicas and refreshes the router's view until the service closes.
func (s *Service) runFleet() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Fleet.Interval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(s.ctx, 10*s.cfg.Fleet.Interval)
		if err := s.reconcileOnce(ctx, time.Time{}); err != nil && s.ctx.Err() == nil {
			s.log.Warn("place endpoint replicas", "err", err)
		}
		cancel()
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
	}
}

// reconcileOnce runs a reconcile unless one began after since (a router that found its view stale
// waits for the reconcile in progress rather than starting another).
func (s *Service) reconcileOnce(ctx context.Context, since time.Time) error {
	s.reconcileMu.Lock()
	defer s.reconcileMu.Unlock()
	if !since.IsZero() && s.reconciled.After(since) {
		return nil
	}
	s.reconciled = time.Now()
	return s.reconcile(ctx)
}

// reconcile places unplaced replicas and those of dead workers on the live worker holding the
// fewest replicas of the same endpoint (then the fewest in all), and refreshes the router's view.
func (s *Service) reconcile(ctx context.Context) error {
	f := s.cfg.Fleet
	began := time.Now()
	workers, err := f.Workers.ListWorkers(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	live := map[string]bool{}
	var liveIDs []string
	for _, w := range workers {
		if now.Sub(w.LastHeartbeat) < f.WorkerTimeout {
			live[w.ID] = true
			liveIDs = append(liveIDs, w.ID)
		}
	}
	slices.Sort(liveIDs)
	all, err := f.Replicas.ListReplicas(ctx)
	if err != nil {
		return err
	}
	rows, err := s.db.listEndpoints(ctx)
	if err != nil {
		return err
	}
	endpoints := map[string]remoteEndpoint{}
	for _, e := range rows {
		if e.Status == StatusInService || e.Status == StatusUpdating {
			endpoints[strings.ToLower(e.Name)] = remoteEndpoint{name: e.Name, deployment: e.Deployment}
		}
	}
	total := map[string]int{}
	perEndpoint := map[string]int{} // worker + "\x00" + endpoint key
	endpointKey := func(r store.Replica) string { k, _, _ := strings.Cut(r.ID, "/"); return k }
	// perSpec counts the replicas serving the same variant spec: an update's new replicas spread
	// over the workers by it first, as the old ones did, rather than pile up where old ones that are
	// about to go sit.
	perSpec := map[string]int{} // worker + "\x00" + endpoint key + "\x00" + spec
	specKey := func(w string, r store.Replica) string { return w + "\x00" + endpointKey(r) + "\x00" + string(r.Spec) }
	for _, r := range all {
		if live[r.Worker] {
			total[r.Worker]++
			perEndpoint[r.Worker+"\x00"+endpointKey(r)]++
			perSpec[specKey(r.Worker, r)]++
		}
	}
	for i, r := range all {
		if live[r.Worker] || len(liveIDs) == 0 || f.SelfPlaced {
			continue
		}
		// The live worker with the fewest replicas of the same spec, then of the endpoint, then in all.
		score := func(w string) []int {
			return []int{perSpec[specKey(w, r)], perEndpoint[w+"\x00"+endpointKey(r)], total[w]}
		}
		best := ""
		for _, w := range liveIDs {
			if best == "" || slices.Compare(score(w), score(best)) < 0 {
				best = w
			}
		}
		ok, err := f.Replicas.PlaceReplica(ctx, r.ID, r.Worker, best)
		if err != nil {
			return err
		}
		if !ok {
			continue // another API node placed it meanwhile; the next round sees where
		}
		if r.Worker != "" {
			s.log.Warn("worker lost: endpoint replica placed again", "replica", r.ID, "from", r.Worker, "to", best)
		} else {
			s.log.Info("endpoint replica placed", "replica", r.ID, "worker", best)
		}
		total[best]++
		perEndpoint[best+"\x00"+endpointKey(r)]++
		perSpec[specKey(best, r)]++
		all[i].Worker, all[i].State, all[i].Addr = best, store.ReplicaPending, ""
	}
	inService := map[string]bool{}
	for _, e := range rows {
		inService[strings.ToLower(e.Name)] = e.Status == StatusInService
	}
	if !f.SelfPlaced {
		s.rebalance(ctx, all, live, liveIDs, perEndpoint, endpointKey, inService)
	}
	ready := map[string][]replicaRoute{}
	byEndpoint := map[string][]store.Replica{}
	for _, r := range all {
		k := endpointKey(r)
		byEndpoint[k] = append(byEndpoint[k], r)
		if r.State == store.ReplicaReady && live[r.Worker] && r.Addr != "" {
			ready[k] = append(ready[k], replicaRoute{id: r.ID, variant: r.Variant, addr: r.Addr, worker: r.Worker})
		}
	}
	s.mu.Lock()
	for k, at := range s.fleet.servedAt {
		if at.Before(began) {
			delete(s.fleet.servedAt, k) // the rows read here have it
		} else if old, ok := s.fleet.endpoints[k]; ok {
			if _, seen := endpoints[k]; !seen {
				endpoints[k] = old
			}
		}
	}
	s.fleet.ready, s.fleet.byEndpoint, s.fleet.liveWorkers, s.fleet.endpoints = ready, byEndpoint, live, endpoints
	for id, until := range s.fleet.suspect {
		if now.After(until) {
			delete(s.fleet.suspect, id)
		}
	}
	s.mu.Unlock()
	// A create whose process went away (an API node or a job's worker that died before the endpoint
	// was InService) is finished from here. Placing the same replicas again changes nothing, so
	// another process still at it does no harm.
	for _, e := range rows {
		switch {
		case e.Status == StatusCreating && now.Sub(e.Modified) > 2*f.WorkerTimeout:
			s.driveCreate(strings.ToLower(e.Name), e)
		case e.Status == StatusUpdating && now.Sub(e.Modified) > 2*f.WorkerTimeout:
			s.abandonUpdate(ctx, strings.ToLower(e.Name), e)
		}
	}
	return nil
}

// rebalance spreads an endpoint whose replicas share a worker while another live worker holds none
// of them (they were placed when fewer workers were live): one replica moves per round, and only
// while the endpoint is InService (not in the middle of a create or a rolling update) with every
// replica Ready, so that the others serve while it loads again.
func (s *Service) rebalance(ctx context.Context, all []store.Replica, live map[string]bool, liveIDs []string,
	perEndpoint map[string]int, endpointKey func(store.Replica) string, inService map[string]bool) {
	settled := map[string]bool{}
	for _, r := range all {
		k := endpointKey(r)
		if _, seen := settled[k]; !seen {
			settled[k] = inService[k]
		}
		if r.State != store.ReplicaReady || !live[r.Worker] {
			settled[k] = false
		}
	}
	moved := map[string]bool{}
	for i, r := range all {
		k := endpointKey(r)
		if !settled[k] || moved[k] || perEndpoint[r.Worker+"\x00"+k] < 2 {
			continue
		}
		idle := ""
		for _, w := range liveIDs {
			if perEndpoint[w+"\x00"+k] == 0 {
				idle = w
				break
			}
		}
		if idle == "" {
			continue
		}
		ok, err := s.cfg.Fleet.Replicas.PlaceReplica(ctx, r.ID, r.Worker, idle)
		if err != nil {
			s.log.Warn("spread endpoint replicas", "replica", r.ID, "err", err)
			return
		}
		if !ok {
			// Another process moved a replica of this endpoint since this round read them: its
			// view is stale, so this round moves no other (it would spread the endpoint twice).
			moved[k] = true
			continue
		}
		s.log.Info("endpoint replica moved to spread the endpoint over workers", "replica", r.ID, "from", r.Worker, "to", idle)
		moved[k] = true
		perEndpoint[r.Worker+"\x00"+k]--
		perEndpoint[idle+"\x00"+k]++
		all[i].Worker, all[i].State, all[i].Addr = idle, store.ReplicaPending, ""
	}
}

// currentInstances is how many replicas of each variant of an endpoint serve now.
func (s *Service) currentInstances(key string) map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int64{}
	for _, r := range s.fleet.ready[key] {
		out[r.variant]++
	}
	return out
}

var fleetInvocation = regexp.MustCompile(`^/endpoints/([^/]+)/(invocations|invocations-response-stream)$`)

// Runtime is the handler of InvokeEndpoint[WithResponseStream]: local (runtime.New on this service)
// when the endpoints are loaded here, else a router to the replicas on workers.
func (s *Service) Runtime(local http.Handler) http.Handler {
	if s.cfg.Fleet == nil {
		return local
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := fleetInvocation.FindStringSubmatch(r.URL.Path)
		if m == nil || r.Method != http.MethodPost {
			local.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			fleetError(w, http.StatusBadRequest, "ValidationError", "Could not read the request body: "+err.Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.proxy(w, r, m[1], r.Header.Get(headerTargetVariant), body, m[2] == "invocations-response-stream", local)
	})
}

// OpenAI is the handler of the OpenAI routes: local when the endpoints are loaded here; else the
// completions of an endpoint on workers go to its replicas (after the API key is checked), and
// the rest (the key's errors, /v1/models, unknown models) is answered by local.
func (s *Service) OpenAI(local http.Handler, apiKey string) http.Handler {
	if s.cfg.Fleet == nil {
		return local
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimSuffix(r.URL.Path, "/")
		auth, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if r.Method != http.MethodPost || (path != "/v1/completions" && path != "/v1/chat/completions") ||
			subtle.ConstantTimeCompare([]byte(strings.TrimSpace(auth)), []byte(apiKey)) != 1 {
			local.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		if err != nil || json.Unmarshal(body, &req) != nil || req.Model == "" {
			local.ServeHTTP(w, r) // answers bad bodies
			return
		}
		s.proxy(w, r, req.Model, "", body, req.Stream, local)
	})
}

// remote finds an endpoint served by replicas in this node's view, by its exact name.
func (s *Service) remote(name string) (remoteEndpoint, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, ok := s.fleet.endpoints[strings.ToLower(name)]
	return ep, ok && ep.name == name
}

// ReplicaHeader names the replica a routed call is for, so that the worker answers from that one.
const ReplicaHeader = "X-Lathe-Replica"

const headerTargetVariant = "X-Amzn-Sagemaker-Target-Variant"

// refreshSpacing bounds how often calls that found this node's view stale (an endpoint it does not
// know yet, or no replica that answered) make it read the store again.
const refreshSpacing = 100 * time.Millisecond

// proxy sends one call to a ready replica, trying the others in turn while they fail before
// answering (a dead worker's connection is refused or reset; an unloaded replica answers 503). When
// none answered, or the endpoint is not in this node's view (created through another API node a
// moment ago), the view is read again from the store and the call tried once more.
func (s *Service) proxy(w http.ResponseWriter, r *http.Request, name, target string, body []byte, stream bool, local http.Handler) {
	start := time.Now()
	for pass := range 2 {
		if pass == 1 {
			ctx, cancel := context.WithTimeout(r.Context(), 10*s.cfg.Fleet.Interval)
			err := s.reconcileOnce(ctx, start.Add(-refreshSpacing))
			cancel()
			if err != nil {
				s.log.Warn("refresh endpoint replicas", "endpoint", name, "err", err)
				break
			}
		}
		ep, ok := s.remote(name)
		if !ok {
			if pass == 1 {
				local.ServeHTTP(w, r) // answers as for a missing endpoint
				return
			}
			continue
		}
		if target != "" && !slices.ContainsFunc(ep.deployment.Variants, func(v variantSpec) bool { return v.Name == target }) {
			fleetError(w, http.StatusBadRequest, "ValidationError",
				fmt.Sprintf("Variant %s not found for endpoint %s of account %s.", target, name, s.cfg.AccountID))
			return
		}
		if s.tryReplicas(w, r, name, target, ep, body, stream) || r.Context().Err() != nil {
			return
		}
	}
	fleetError(w, http.StatusServiceUnavailable, "ServiceUnavailable",
		fmt.Sprintf("No instance of endpoint %s could take the request now; retry.", name))
}

// tryReplicas sends the call to the ready replicas of a variant in turn, least outstanding requests
// first, until one answers; false when none did.
func (s *Service) tryReplicas(w http.ResponseWriter, r *http.Request, name, target string, ep remoteEndpoint, body []byte, stream bool) bool {
	key := strings.ToLower(name)
	s.mu.Lock()
	variant := target
	if variant == "" {
		variant = s.pickVariant(ep.deployment, s.fleet.ready[key])
	}
	var cands []replicaRoute
	now := s.now()
	for _, rr := range s.fleet.ready[key] {
		if rr.variant == variant && !now.Before(s.fleet.suspect[rr.id+"@"+rr.worker]) {
			cands = append(cands, rr)
		}
	}
	inFlight := make([]*atomic.Int64, len(cands))
	for i, c := range cands {
		if s.fleet.inFlight[c.id] == nil {
			s.fleet.inFlight[c.id] = &atomic.Int64{}
		}
		inFlight[i] = s.fleet.inFlight[c.id]
	}
	s.mu.Unlock()
	// Least outstanding requests first; ties go to a random one, so that idle replicas share calls.
	order := s.shuffled(len(cands))
	slices.SortStableFunc(order, func(a, b int) int { return int(inFlight[a].Load() - inFlight[b].Load()) })
	for _, i := range order {
		c := cands[i]
		inFlight[i].Add(1)
		done, err := s.forward(w, r, c, body, stream)
		inFlight[i].Add(-1)
		if done {
			return true
		}
		if r.Context().Err() != nil {
			return false // the caller went away
		}
		s.log.Warn("endpoint replica failed before answering; trying another", "endpoint", name, "replica", c.id, "worker", c.worker, "err", err)
		s.mu.Lock()
		s.fleet.suspect[c.id+"@"+c.worker] = s.now().Add(s.cfg.Fleet.WorkerTimeout)
		s.mu.Unlock()
	}
	return false
}

// pickVariant chooses a variant with ready replicas by the variants' weights.
func (s *Service) pickVariant(dep deployment, ready []replicaRoute) string {
	var vs []variantSpec
	total := 0.0
	for _, v := range dep.Variants {
		if slices.ContainsFunc(ready, func(r replicaRoute) bool { return r.variant == v.Name }) {
			vs = append(vs, v)
			total += v.Weight
		}
	}
	if len(vs) == 0 {
		if len(ready) > 0 { // an update's new variants, before this endpoint's deployment is swapped
			return ready[0].variant
		}
		return ""
	}
	if total > 0 {
		x := s.rand.Float64() * total
		for _, v := range vs {
			if x -= v.Weight; x < 0 {
				return v.Name
			}
		}
	}
	return vs[0].Name
}

func (s *Service) shuffled(n int) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rand.Perm(n)
}

// forward sends the call to one replica. done is false when the replica failed before anything was
// written to the caller, so that another may take the call.
func (s *Service) forward(w http.ResponseWriter, r *http.Request, c replicaRoute, body []byte, stream bool) (done bool, err error) {
	u := "http://" + c.addr + r.URL.Path
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	for k, vs := range r.Header {
		if ck := http.CanonicalHeaderKey(k); ck == "Content-Type" || ck == "Accept" || strings.HasPrefix(ck, "X-Amzn-Sagemaker-") {
			req.Header[ck] = vs
		}
	}
	req.Header.Set(headerTargetVariant, c.variant)
	req.Header.Set(ReplicaHeader, c.id)
	req.Header.Set("Authorization", "Bearer "+replicaToken(s.fleet.secret, c.id)) // secret: set once, by New
	resp, err := s.cfg.Fleet.Client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return false, fmt.Errorf("replica answered %s", resp.Status)
	}
	// The first bytes (the whole answer, unless streaming) are read before anything is sent on: a
	// worker that dies before them leaves the call to another replica.
	var first []byte
	if stream {
		buf := make([]byte, 32<<10)
		n, err := io.ReadAtLeast(resp.Body, buf, 1)
		if err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty answer, complete
			return false, err
		}
		first = buf[:n]
	} else if first, err = io.ReadAll(resp.Body); err != nil {
		return false, err
	}
	for k, vs := range resp.Header {
		if ck := http.CanonicalHeaderKey(k); ck == "Content-Type" || ck == "Cache-Control" || strings.HasPrefix(ck, "X-Amzn-") {
			w.Header()[ck] = vs
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(first)
	if !stream {
		return true, nil
	}
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return true, nil
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.log.Warn("endpoint replica failed while streaming", "replica", c.id, "worker", c.worker, "err", err)
			}
			return true, nil
		}
	}
}

func fleetError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"ErrorCode": code, "Message": msg})
}
