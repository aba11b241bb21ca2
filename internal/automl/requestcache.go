package automl

import (
	"encoding/json"
	"sync"
)

// maxCachedRequests bounds the decoded-request cache: the jobs a team polls (running ones, the
// console's page) fit many times over; at about 4 KiB an entry it holds at most ~16 MiB.
const maxCachedRequests = 4096

// requestCache memoizes the decoding of stored request documents for DescribeAutoMLJobV2.
// Decoding a job's ~1 KiB request (two levels of custom unmarshalers, 80 allocations) was the
// largest part of a Describe's own CPU. It is keyed by the document's bytes, not the job's name: a
// stored request is written once, when the job is created, and a different document is a
// different key, so nothing is ever stale and nothing needs invalidating.
//
// The decoded values are shared by every caller: read them, never change them.
type requestCache struct {
	mu sync.Mutex
	m  map[string]*createRequest
}

// decode returns the request stored as raw, decoding it on a miss.
func (c *requestCache) decode(raw []byte) (*createRequest, error) {
	c.mu.Lock()
	req, ok := c.m[string(raw)] // no copy: the compiler looks up []byte keys in place
	c.mu.Unlock()
	if ok {
		return req, nil
	}
	req = new(createRequest)
	if err := json.Unmarshal(raw, req); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*createRequest)
	}
	if len(c.m) >= maxCachedRequests {
		// Evict one entry, an arbitrary one (map iteration starts at a random place): cheaper than
		// keeping a recency list on every hit, and a cache this size rarely fills.
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[string(raw)] = req
	return req, nil
}
