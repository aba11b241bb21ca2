package iam

import (
	"sync"

	"github.com/lathe-ml/lathe/internal/iam/policy"
)

// maxParsedPolicies bounds the parsed-policy cache; past it, the cache starts over.
const maxParsedPolicies = 1024

// parsedPolicies caches policy.Parse for the policies authorization evaluates on every request
// (inline, managed and session policies). It is keyed by the document's text, not by its owner or
// name: each request still reads the principal's current documents from the store, so a policy
// put, attached, detached, deleted or given a new default version is honoured from the next request
// on, in every process sharing the store, and only the parse of an unchanged document is saved.
// The parsed policies are shared: never change one.
var parsedPolicies = policyCache{m: make(map[policyKey]*policy.Policy)}

type policyKey struct {
	doc  string
	kind policy.Kind
}

type policyCache struct {
	mu sync.Mutex
	m  map[policyKey]*policy.Policy
}

// parsePolicy is policy.Parse, remembered for documents that parse.
func parsePolicy(doc string, kind policy.Kind) (*policy.Policy, error) {
	k := policyKey{doc, kind}
	parsedPolicies.mu.Lock()
	p, ok := parsedPolicies.m[k]
	parsedPolicies.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := policy.Parse([]byte(doc), kind)
	if err != nil {
		return nil, err
	}
	parsedPolicies.mu.Lock()
	if len(parsedPolicies.m) >= maxParsedPolicies {
		clear(parsedPolicies.m)
	}
	parsedPolicies.m[k] = p
	parsedPolicies.mu.Unlock()
	return p, nil
}
