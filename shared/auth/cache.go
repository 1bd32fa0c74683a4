package auth

import (
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCacheEntries bounds the key cache. Negative entries are cached too
// (so a flood of bad keys does not become a flood of store reads), and the
// bound keeps such a flood from growing memory without limit.
const DefaultCacheEntries = 100_000

// Cache is a short-lived, bounded, in-process cache of key lookups, positive
// and negative. Its TTL is the worst-case delay before a change made on
// another instance (block, delete, expiry moved earlier) takes effect here;
// changes made through this instance's admin API invalidate at once.
//
// A nil *Cache caches nothing.
type Cache struct {
	ttl atomic.Int64 // nanoseconds; 0 disables
	// gen counts invalidations. A lookup notes it before reading the store
	// and stores its answer only if no invalidation happened meanwhile, so
	// a read that raced a revocation cannot re-cache the revoked key.
	gen atomic.Uint64

	mu      sync.Mutex
	entries map[string]cacheEntry
	max     int
}

type cacheEntry struct {
	res     *lookupResult
	expires time.Time
}

// NewCache returns a cache trusting entries for ttl, holding at most max
// entries (0: DefaultCacheEntries).
func NewCache(ttl time.Duration, max int) *Cache {
	if max <= 0 {
		max = DefaultCacheEntries
	}
	c := &Cache{entries: make(map[string]cacheEntry), max: max}
	c.SetTTL(ttl)
	return c
}

// SetTTL changes the TTL (on config reload). Entries already cached keep the
// expiry they were given, which is at most the old TTL.
func (c *Cache) SetTTL(ttl time.Duration) {
	if c != nil {
		c.ttl.Store(int64(ttl))
	}
}

func (c *Cache) get(token string, now time.Time) (*lookupResult, bool) {
	if c == nil || c.ttl.Load() <= 0 {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.entries[token]
	c.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.res, true
}

// generation returns the invalidation count to pass to put.
func (c *Cache) generation() uint64 {
	if c == nil {
		return 0
	}
	return c.gen.Load()
}

// put caches res unless an invalidation happened since generation gen.
func (c *Cache) put(token string, res *lookupResult, now time.Time, gen uint64) {
	if c == nil {
		return
	}
	ttl := time.Duration(c.ttl.Load())
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return // the store may have changed under this read
	}
	if len(c.entries) >= c.max {
		for t, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, t)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries) // a flood of distinct keys: start over
		}
	}
	c.entries[token] = cacheEntry{res: res, expires: now.Add(ttl)}
}

func (c *Cache) invalidate(tokens ...string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	if len(tokens) == 0 {
		clear(c.entries)
		return
	}
	for _, t := range tokens {
		delete(c.entries, t)
	}
}
