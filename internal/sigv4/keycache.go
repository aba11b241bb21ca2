package sigv4

import "sync"

// maxCachedKeys bounds the signing-key cache: one entry per access key, day, region and service
// in use, so a few per client; past the bound it starts over.
const maxCachedKeys = 1024

// signingKeys caches derived signing keys. Deriving one is four HMAC-SHA256s (16 SHA-256 blocks),
// and every request of a day signed with one key for one region and service derives the same one.
// The secret is part of the cache key, so a key whose secret changes (rotated, deleted and made
// again) derives afresh from its first request on: a cached entry is only ever reused for the
// very secret it was made from. The derived keys are shared: never change one.
var signingKeys = keyCache{m: make(map[keyCacheKey][]byte)}

type keyCacheKey struct{ secret, date, region, service string }

type keyCache struct {
	mu sync.Mutex
	m  map[keyCacheKey][]byte
}

// cachedSigningKey is SigningKey, remembered.
func cachedSigningKey(secret, date, region, service string) []byte {
	k := keyCacheKey{secret, date, region, service}
	signingKeys.mu.Lock()
	key, ok := signingKeys.m[k]
	signingKeys.mu.Unlock()
	if ok {
		return key
	}
	key = SigningKey(secret, date, region, service)
	signingKeys.mu.Lock()
	if len(signingKeys.m) >= maxCachedKeys {
		clear(signingKeys.m) // yesterday's keys go with the rest; today's are derived again once
	}
	signingKeys.m[k] = key
	signingKeys.mu.Unlock()
	return key
}
