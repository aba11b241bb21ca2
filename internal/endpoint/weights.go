package endpoint

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/coral"
)

type desiredWeightAndCapacity struct {
	VariantName          *string  `json:"VariantName"`
	DesiredWeight        *float64 `json:"DesiredWeight"`
	DesiredInstanceCount *int64   `json:"DesiredInstanceCount"`
}

type updateWeightsRequest struct {
	EndpointName                *string                    `json:"EndpointName"`
	DesiredWeightsAndCapacities []desiredWeightAndCapacity `json:"DesiredWeightsAndCapacities"`
}

// updateEndpointWeightsAndCapacities changes the traffic weights and instance counts of an
// InService endpoint's variants. The models stay loaded (an instance count is bookkeeping on one
// machine), so the endpoint goes Updating and back to InService as soon as the new weights route
// requests, as SageMaker's waiters expect.
func (s *Service) updateEndpointWeightsAndCapacities(ctx context.Context, body []byte) (any, error) {
	var req updateWeightsRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	v := &violations{}
	v.str("endpointName", req.EndpointName, true, 63, patEndpoint, nil)
	if req.DesiredWeightsAndCapacities == nil {
		v.Missing("desiredWeightsAndCapacities")
	} else {
		v.listLen("desiredWeightsAndCapacities", len(req.DesiredWeightsAndCapacities), 1, 10)
	}
	for i, d := range req.DesiredWeightsAndCapacities {
		p := fmt.Sprintf("desiredWeightsAndCapacities.%d.member", i+1)
		v.str(p+".variantName", d.VariantName, true, 63, patEndpoint, nil)
		if w := d.DesiredWeight; w != nil && *w < 0 {
			v.Add(p+".desiredWeight", coral.Quote(fmt.Sprint(*w)), "Member must have value greater than or equal to 0")
		}
		v.intRange(p+".desiredInstanceCount", d.DesiredInstanceCount, 0, 0)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	name, key := *req.EndpointName, strings.ToLower(*req.EndpointName)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.db.getEndpoint(ctx, key)
	if errors.Is(err, errNotFound) {
		return nil, s.endpointNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var missing []string
	for _, d := range req.DesiredWeightsAndCapacities {
		if d.DesiredWeight == nil && d.DesiredInstanceCount == nil {
			return nil, awserr.Validation("Variant %s: give a DesiredWeight, a DesiredInstanceCount or both.", *d.VariantName)
		}
		if seen[*d.VariantName] {
			return nil, awserr.Validation("Variant %s appears more than once in DesiredWeightsAndCapacities.", *d.VariantName)
		}
		seen[*d.VariantName] = true
		if variantIndex(e.Deployment, *d.VariantName) < 0 {
			missing = append(missing, *d.VariantName)
		}
	}
	if len(missing) > 0 {
		return nil, awserr.Validation("The variant(s) %q are not present in endpoint %q.", "["+strings.Join(missing, ", ")+"]", e.ARN)
	}
	if e.Status != StatusInService {
		return nil, awserr.Validation("Cannot update in-progress endpoint %q.", e.ARN)
	}
	for _, d := range req.DesiredWeightsAndCapacities {
		pv := &e.Deployment.Variants[variantIndex(e.Deployment, *d.VariantName)]
		if d.DesiredWeight != nil {
			pv.Weight = *d.DesiredWeight
		}
		if d.DesiredInstanceCount != nil {
			pv.InstanceCount = *d.DesiredInstanceCount
		}
	}
	e.Status, e.Modified = StatusUpdating, s.now()
	if err := s.db.updateEndpointIf(ctx, key, e, StatusInService); errors.Is(err, errNotFound) {
		return nil, awserr.Validation("Cannot update in-progress endpoint %q.", e.ARN) // another API node's update began first
	} else if err != nil {
		return nil, err
	}
	le := s.live[key]
	// Back to InService once the live variants route by the new weights; done after this call
	// returns, so a caller sees Updating first as on SageMaker.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var scaleErr error
		if s.cfg.Fleet != nil {
			// On workers, the instance counts are replicas: added ones load beside those that
			// serve on (a changed weight keeps a replica), removed ones go.
			ctx, stop := s.holdUpdate(s.ctx, key)
			scaleErr = s.scaleReplicas(ctx, key, e)
			stop()
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.live[key] != le || s.ctx.Err() != nil { // deleted meanwhile, or closing
			return
		}
		if scaleErr != nil {
			e.Failure = "Changing the instance counts failed: " + scaleErr.Error()
			s.log.Warn("endpoint capacity change failed", "endpoint", e.Name, "err", scaleErr)
		}
		if s.cfg.Fleet != nil {
			s.fleet.endpoints[key] = remoteEndpoint{name: e.Name, deployment: e.Deployment}
		}
		if le == nil { // an endpoint of the fleet, created through another API node: no local variants
			le = &liveEndpoint{}
		}
		for i := range le.variants {
			if k := variantIndex(e.Deployment, le.variants[i].name); k >= 0 {
				le.variants[i].weight = e.Deployment.Variants[k].Weight
			}
		}
		e.Status, e.Modified = StatusInService, s.now()
		if err := s.db.updateEndpoint(s.ctx, key, e); err != nil {
			s.log.Error("record endpoint status", "endpoint", e.Name, "err", err)
		}
	}()
	return map[string]any{"EndpointArn": e.ARN}, nil
}

// variantIndex is the index of the variant named name (exact case) in dep, or −1.
func variantIndex(dep deployment, name string) int {
	for i, v := range dep.Variants {
		if v.Name == name {
			return i
		}
	}
	return -1
}
