package endpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/endpoint/runtime"
	"github.com/lathe-ml/lathe/internal/endpoint/serving"
)

// Endpoint statuses Lathe goes through.
const (
	StatusCreating  = "Creating"
	StatusInService = "InService"
	StatusUpdating  = "Updating"
	StatusFailed    = "Failed"
)

// deployment is what an endpoint serves, copied from its config and models when it was created or
// updated: deleting the config or a model afterwards does not change a running endpoint.
type deployment struct {
	Variants []variantSpec `json:"variants"`
}

type variantSpec struct {
	Name          string            `json:"name"`
	ModelName     string            `json:"model_name"`
	Weight        float64           `json:"weight"`
	InstanceType  string            `json:"instance_type,omitempty"`
	InstanceCount int64             `json:"instance_count"`
	Image         string            `json:"image,omitempty"`
	Source        string            `json:"source,omitempty"` // s3:// model data; empty for a base model
	Environment   map[string]string `json:"environment,omitempty"`
}

// liveEndpoint is an endpoint's in-memory side: its loaded variants (nil until it is InService) and
// the load in progress.
type liveEndpoint struct {
	name     string // as created: InvokeEndpoint needs this exact case
	variants []liveVariant
	seq      int                // bumped by every load; a load that finds another seq was superseded
	cancel   context.CancelFunc // stops the load in progress
}

type liveVariant struct {
	name   string
	weight float64
	engine *serving.Engine
}

func (le *liveEndpoint) close() {
	if le.cancel != nil {
		le.cancel()
	}
	for _, v := range le.variants {
		v.engine.Close()
	}
	le.variants = nil
}

func (s *Service) endpointNotFound(name string) error {
	return awserr.Validation("Could not find endpoint %q.", s.arn("endpoint", name))
}

// deploymentFor copies a config's variants and their models.
func (s *Service) deploymentFor(ctx context.Context, configName string) (deployment, error) {
	cr, err := s.db.get(ctx, "endpoint_configs", strings.ToLower(configName))
	if errors.Is(err, errNotFound) {
		return deployment{}, s.configNotFound(configName)
	}
	if err != nil {
		return deployment{}, err
	}
	var cfg createConfigRequest
	if err := json.Unmarshal(cr.Spec, &cfg); err != nil {
		return deployment{}, fmt.Errorf("endpoint config %s: %w", configName, err)
	}
	var dep deployment
	for _, pv := range cfg.ProductionVariants {
		mr, err := s.db.get(ctx, "models", strings.ToLower(*pv.ModelName))
		if errors.Is(err, errNotFound) {
			return deployment{}, s.modelNotFound(*pv.ModelName)
		}
		if err != nil {
			return deployment{}, err
		}
		var m createModelRequest
		if err := json.Unmarshal(mr.Spec, &m); err != nil {
			return deployment{}, fmt.Errorf("model %s: %w", mr.Name, err)
		}
		c, err := m.servedContainer()
		if err != nil {
			return deployment{}, awserr.Validation("Model %s: %v", mr.Name, err)
		}
		v := variantSpec{Name: *pv.VariantName, ModelName: mr.Name, Weight: 1, InstanceCount: 1,
			Source: c.source(), Environment: c.Environment}
		if pv.InitialVariantWeight != nil {
			v.Weight = *pv.InitialVariantWeight
		}
		if pv.InitialInstanceCount != nil {
			v.InstanceCount = *pv.InitialInstanceCount
		}
		if pv.InstanceType != nil {
			v.InstanceType = *pv.InstanceType
		}
		if c.Image != nil {
			v.Image = *c.Image
		}
		dep.Variants = append(dep.Variants, v)
	}
	return dep, nil
}

type createEndpointRequest struct {
	EndpointName       *string `json:"EndpointName"`
	EndpointConfigName *string `json:"EndpointConfigName"`
	Tags               []tag   `json:"Tags"`
}

func (s *Service) createEndpoint(ctx context.Context, body []byte) (any, error) {
	var req createEndpointRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	v := &violations{}
	v.str("endpointName", req.EndpointName, true, 63, patEndpoint, nil)
	v.str("endpointConfigName", req.EndpointConfigName, true, 63, patEndpoint, nil)
	v.tags(req.Tags)
	if err := v.Err(); err != nil {
		return nil, err
	}
	arn, err := s.CreateEndpoint(ctx, *req.EndpointName, *req.EndpointConfigName)
	if err != nil {
		return nil, err
	}
	if err := s.addTags(ctx, arn, req.Tags); err != nil {
		return nil, err
	}
	return map[string]any{"EndpointArn": arn}, nil
}

// CreateEndpoint records a new endpoint (Creating) and starts loading its models; it returns the ARN.
func (s *Service) CreateEndpoint(ctx context.Context, name, configName string) (string, error) {
	dep, err := s.deploymentFor(ctx, configName)
	if err != nil {
		return "", err
	}
	key, arn, now := strings.ToLower(name), s.arn("endpoint", name), s.now()
	cr, _ := s.db.get(ctx, "endpoint_configs", strings.ToLower(configName))
	s.mu.Lock()
	defer s.mu.Unlock()
	row := endpointRow{Name: name, ARN: arn, ConfigName: cr.Name, Status: StatusCreating, Created: now, Modified: now, Deployment: dep}
	if err := s.db.insertEndpoint(ctx, key, row); err != nil {
		if errors.Is(err, errExists) {
			return "", awserr.Validation("Cannot create already existing endpoint %q.", arn)
		}
		return "", err
	}
	le := &liveEndpoint{name: name}
	s.live[key] = le
	s.startLoad(key, le, row, false)
	return arn, nil
}

// startLoad loads row's deployment in the background and then records the outcome: InService, or
// Failed (a create) / InService with the old variants and a FailureReason (an update). s.mu is held.
func (s *Service) startLoad(key string, le *liveEndpoint, row endpointRow, update bool) {
	if le.cancel != nil {
		le.cancel()
	}
	le.seq++
	seq := le.seq
	ctx, cancel := context.WithCancel(s.ctx)
	le.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		var variants []liveVariant
		var loadErr error
		if s.cfg.Fleet != nil {
			pctx, stop := ctx, func() {}
			if update {
				pctx, stop = s.holdUpdate(ctx, key)
			}
			loadErr = s.placeDeployment(pctx, key, row, update)
			stop()
		} else {
			variants, loadErr = s.loadDeployment(ctx, key, row.Deployment)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.live[key] != le || le.seq != seq || ctx.Err() != nil {
			for _, v := range variants { // deleted or superseded meanwhile
				v.engine.Close()
			}
			return
		}
		if s.cfg.Fleet != nil {
			// The endpoint is the fleet's: another API node may have deleted it (and someone
			// created another under its name) meanwhile; that one is not this load's to touch.
			cur, err := s.db.getEndpoint(ctx, key)
			if errors.Is(err, errNotFound) || err == nil && cur.Created.UnixMilli() != row.Created.UnixMilli() { // the store keeps ms
				le.cancel = nil
				s.log.Info("endpoint deleted through another API node while it was loading", "endpoint", row.Name)
				return
			}
			if err == nil && cur.Status != row.Status {
				// Another process finishing the same create got there first; its outcome stands.
				le.cancel = nil
				return
			}
		}
		le.cancel = nil
		row.Modified = s.now()
		switch {
		case loadErr == nil && s.cfg.Fleet != nil:
			// This node routes to it at once; the others at their next reconcile.
			s.fleet.endpoints[key] = remoteEndpoint{name: row.Name, deployment: row.Deployment}
			row.Status, row.Failure = StatusInService, ""
		case loadErr == nil:
			old := le.variants
			le.variants = variants
			for _, v := range old {
				go v.engine.Drain() // requests already on the old model finish there
			}
			row.Status, row.Failure = StatusInService, ""
		case update:
			// The update is rolled back: the old variants keep serving and the row keeps the old
			// deployment, with the reason.
			prev, err := s.db.getEndpoint(ctx, key)
			if err == nil {
				row.ConfigName, row.Deployment = prev.ConfigName, prev.Deployment
			}
			if s.cfg.Fleet != nil { // the old replicas serve again
				if rs, err := deploymentReplicas(key, row.Name, row.Deployment); err == nil {
					err = s.cfg.Fleet.Replicas.SetReplicas(ctx, key, rs)
					if err != nil {
						s.log.Error("restore endpoint replicas", "endpoint", row.Name, "err", err)
					}
				}
			}
			row.Status, row.Failure = StatusInService, "Updating the endpoint failed, so it was rolled back: "+loadErr.Error()
			s.log.Warn("endpoint update failed", "endpoint", row.Name, "err", loadErr)
		default:
			row.Status, row.Failure = StatusFailed, loadErr.Error()
			s.log.Warn("endpoint failed", "endpoint", row.Name, "err", loadErr)
			if s.cfg.Fleet != nil { // the workers unload the replicas that did load
				if err := s.cfg.Fleet.Replicas.SetReplicas(ctx, key, nil); err != nil {
					s.log.Error("remove the replicas of a failed endpoint", "endpoint", row.Name, "err", err)
				}
			}
		}
		if err := s.db.updateEndpoint(ctx, key, row); err != nil {
			s.log.Error("record endpoint status", "endpoint", row.Name, "err", err)
		}
		if loadErr == nil && s.cfg.Fleet != nil {
			// A reconcile that began before this (s.mu is held) may have read the row still
			// Creating: it keeps the endpoint in this node's view (fleetState.servedAt).
			if s.fleet.servedAt == nil {
				s.fleet.servedAt = map[string]time.Time{}
			}
			s.fleet.servedAt[key] = time.Now()
		}
		if loadErr == nil {
			s.log.Info("endpoint in service", "endpoint", row.Name, "variants", len(variants))
		}
	}()
}

// reload starts loading every endpoint that was serving (or about to) when the server stopped.
// With replicas on workers the endpoints are the fleet's, not this node's: their replicas serve on,
// and only a create that its node did not finish (it stopped meanwhile) is driven on from here
// (placing the same replicas again changes nothing, so two nodes may both do it).
func (s *Service) reload(ctx context.Context) error {
	rows, err := s.db.listEndpoints(ctx)
	if err != nil {
		return err
	}
	placed := map[string]bool{} // endpoint keys with replicas in the store
	if s.cfg.Fleet != nil {
		all, err := s.cfg.Fleet.Replicas.ListReplicas(ctx)
		if err != nil {
			return err
		}
		for _, r := range all {
			k, _, _ := strings.Cut(r.ID, "/")
			placed[k] = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		key := strings.ToLower(r.Name)
		le := &liveEndpoint{name: r.Name}
		s.live[key] = le
		if s.cfg.Fleet != nil {
			switch {
			case r.Status == StatusCreating:
				s.startLoad(key, le, r, false)
			case r.Status == StatusInService && !placed[key]:
				// Served by a single node until now (a data dir that moved to --workers 0): its
				// instances become replicas, placed on the workers by the next reconcile.
				rs, err := deploymentReplicas(key, r.Name, r.Deployment)
				if err == nil {
					err = s.cfg.Fleet.Replicas.SetReplicas(ctx, key, rs)
				}
				if err != nil {
					return fmt.Errorf("place the replicas of endpoint %s: %w", r.Name, err)
				}
				s.log.Info("endpoint replicas placed for an endpoint served by one node until now", "endpoint", r.Name, "replicas", len(rs))
			}
			continue
		}
		if r.Status == StatusFailed {
			continue
		}
		r.Status, r.Failure, r.Modified = StatusCreating, "", s.now()
		if err := s.db.updateEndpoint(ctx, key, r); err != nil {
			return err
		}
		s.startLoad(key, le, r, false)
	}
	return nil
}

func (s *Service) endpointName(body []byte) (string, error) {
	var req nameRequest
	if err := decode(body, &req); err != nil {
		return "", err
	}
	v := &violations{}
	v.str("endpointName", req.EndpointName, true, 63, patEndpoint, nil)
	if err := v.Err(); err != nil {
		return "", err
	}
	return *req.EndpointName, nil
}

func (s *Service) describeEndpoint(ctx context.Context, body []byte) (any, error) {
	name, err := s.endpointName(body)
	if err != nil {
		return nil, err
	}
	return s.DescribeEndpoint(ctx, name)
}

// DescribeEndpoint is DescribeEndpoint's output for an endpoint (a ValidationException when missing).
func (s *Service) DescribeEndpoint(ctx context.Context, name string) (map[string]any, error) {
	e, err := s.db.getEndpoint(ctx, strings.ToLower(name))
	if errors.Is(err, errNotFound) {
		return nil, s.endpointNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	serving := e.Status == StatusInService || e.Status == StatusUpdating
	var current map[string]int64
	if s.cfg.Fleet != nil {
		current = s.currentInstances(strings.ToLower(name)) // the replicas that serve now
	}
	var variants []map[string]any
	for _, v := range e.Deployment.Variants {
		pv := map[string]any{"VariantName": v.Name, "DesiredWeight": v.Weight, "DesiredInstanceCount": v.InstanceCount}
		if serving {
			pv["CurrentWeight"], pv["CurrentInstanceCount"] = v.Weight, v.InstanceCount
			if current != nil {
				pv["CurrentInstanceCount"] = current[v.Name]
			}
			if v.Image != "" {
				pv["DeployedImages"] = []map[string]any{{"SpecifiedImage": v.Image, "ResolvedImage": v.Image, "ResolutionTime": unix(e.Modified)}}
			}
		}
		variants = append(variants, pv)
	}
	out := map[string]any{
		"EndpointName": e.Name, "EndpointArn": e.ARN, "EndpointConfigName": e.ConfigName,
		"ProductionVariants": variants, "EndpointStatus": e.Status,
		"CreationTime": unix(e.Created), "LastModifiedTime": unix(e.Modified),
	}
	if e.Failure != "" {
		out["FailureReason"] = e.Failure
	}
	return out, nil
}

func (s *Service) listEndpoints(ctx context.Context, body []byte) (any, error) {
	q, err := parseList(body, endpSortKeys, true)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.listEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	items := make([]listItem, len(rows))
	for i, r := range rows {
		items[i] = listItem{name: r.Name, created: r.Created, modified: r.Modified, status: r.Status, summary: map[string]any{
			"EndpointName": r.Name, "EndpointArn": r.ARN, "CreationTime": unix(r.Created),
			"LastModifiedTime": unix(r.Modified), "EndpointStatus": r.Status}}
	}
	page, next, err := q.apply(items)
	if err != nil {
		return nil, err
	}
	return listOutput("Endpoints", page, next), nil
}

func (s *Service) updateEndpoint(ctx context.Context, body []byte) (any, error) {
	var req createEndpointRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	v := &violations{}
	v.str("endpointName", req.EndpointName, true, 63, patEndpoint, nil)
	v.str("endpointConfigName", req.EndpointConfigName, true, 63, patEndpoint, nil)
	if err := v.Err(); err != nil {
		return nil, err
	}
	name, key := *req.EndpointName, strings.ToLower(*req.EndpointName)
	dep, err := s.deploymentFor(ctx, *req.EndpointConfigName)
	if err != nil {
		return nil, err
	}
	cr, _ := s.db.get(ctx, "endpoint_configs", strings.ToLower(*req.EndpointConfigName))
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.db.getEndpoint(ctx, key)
	if errors.Is(err, errNotFound) {
		return nil, s.endpointNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	if e.Status != StatusInService {
		return nil, awserr.Validation("Cannot update in-progress endpoint %q.", e.ARN)
	}
	le := s.live[key]
	if le == nil { // created through another API node of the fleet
		le = &liveEndpoint{name: e.Name}
		s.live[key] = le
	}
	e.Status, e.Failure, e.Modified = StatusUpdating, "", s.now()
	if err := s.db.updateEndpointIf(ctx, key, e, StatusInService); errors.Is(err, errNotFound) {
		// Another API node began an update (or deleted it) since the read above.
		return nil, awserr.Validation("Cannot update in-progress endpoint %q.", e.ARN)
	} else if err != nil {
		return nil, err
	}
	next := e
	next.ConfigName, next.Deployment = cr.Name, dep
	s.startLoad(key, le, next, true)
	return map[string]any{"EndpointArn": e.ARN}, nil
}

func (s *Service) deleteEndpoint(ctx context.Context, body []byte) (any, error) {
	name, err := s.endpointName(body)
	if err != nil {
		return nil, err
	}
	return nil, s.DeleteEndpoint(ctx, name)
}

// DeleteEndpoint removes an endpoint at once: its loads stop, its models unload (running requests
// end with an error) and its downloaded files go.
func (s *Service) DeleteEndpoint(ctx context.Context, name string) error {
	key := strings.ToLower(name)
	s.mu.Lock()
	err := s.db.remove(ctx, "endpoints", key)
	le := s.live[key]
	delete(s.live, key)
	delete(s.fleet.endpoints, key)
	delete(s.fleet.ready, key)
	delete(s.fleet.servedAt, key)
	s.mu.Unlock()
	if errors.Is(err, errNotFound) {
		return s.endpointNotFound(name)
	}
	if err != nil {
		return err
	}
	if le != nil {
		le.close()
	}
	if s.cfg.Fleet != nil {
		if err := s.cfg.Fleet.Replicas.SetReplicas(ctx, key, nil); err != nil {
			return err
		}
	}
	s.dropTags(ctx, s.arn("endpoint", name))
	if err := os.RemoveAll(s.endpointDir(key)); err != nil {
		s.log.Warn("remove endpoint files", "endpoint", name, "err", err)
	}
	return nil
}

func (s *Service) endpointDir(key string) string {
	return filepath.Join(s.cfg.DataDir, "endpoints", key)
}

// Route picks the loaded model that serves an InvokeEndpoint call (runtime.Router): the variant the
// caller targets, else one chosen at random by the variants' weights.
func (s *Service) Route(name, targetVariant string) (runtime.Target, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	le := s.live[strings.ToLower(name)]
	if le == nil || le.name != name || len(le.variants) == 0 {
		return runtime.Target{}, runtime.ErrEndpointNotFound
	}
	if targetVariant != "" {
		for _, v := range le.variants {
			if v.name == targetVariant {
				return runtime.Target{Engine: v.engine, Variant: v.name}, nil
			}
		}
		return runtime.Target{}, runtime.ErrVariantNotFound
	}
	total := 0.0
	for _, v := range le.variants {
		total += v.weight
	}
	pick := le.variants[0]
	if total > 0 {
		x := s.rand.Float64() * total
		for _, v := range le.variants {
			if x -= v.weight; x < 0 {
				pick = v
				break
			}
		}
	}
	return runtime.Target{Engine: pick.engine, Variant: pick.name}, nil
}

// InService lists the endpoints that serve requests now, by name as created (for /v1/models).
func (s *Service) InService() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	if s.cfg.Fleet != nil {
		for _, ep := range s.fleet.endpoints {
			names = append(names, ep.name)
		}
		return names
	}
	for _, le := range s.live {
		if len(le.variants) > 0 {
			names = append(names, le.name)
		}
	}
	return names
}
