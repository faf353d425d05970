package crypto

import (
	"container/list"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// ChainID names the chain of session secrets derived from one ss[0]. The
// Cache assigns it; an engine keeps it with the connection so the
// application can flush the chain (RFC 8548 §3.5).
type ChainID uint64

// CacheEntry is one cached session secret ss[i] and what is needed to
// resume with it.
type CacheEntry struct {
	// Secret is ss[i], KeyLen bytes. Put copies it; the entry returned by
	// a Take is a fresh copy the caller owns and should clear after use.
	Secret []byte
	// Index is i, for information (the chain position).
	Index uint32
	// TEP is the TEP id of the original session (v bit clear).
	TEP uint8
	// AEAD is the AEAD of the original session. RFC 8548 has no cipher
	// negotiation on resumption; we resume with the original AEAD (our
	// reading).
	AEAD AEADID
	// WasA is this host's role in the ORIGINAL session of the chain: it
	// fixes the resumption half it sends and its traffic direction
	// (RFC 8548 §3.5, see Directions and ResumeHalves).
	WasA bool
	// Peer is the peer's address, used by an active opener's lookup.
	// RFC 8548 leaves the active opener's choice unspecified (tcpcrypt is
	// meant to be address independent, §1); keying by the peer address is
	// this implementation's choice.
	Peer netip.Addr
	// Chain is the chain id; 0 in Put starts a new chain.
	Chain ChainID

	// MyHalf and PeerHalf are set by the cache on the entries it returns:
	// the half of resume[i] this host sends and the half the peer sends.
	MyHalf, PeerHalf [ResumeHalfLen]byte
}

type cacheItem struct {
	e       CacheEntry
	expires time.Time // zero: never
}

// Cache is a bounded, in-memory cache of session secrets for resumption
// (RFC 8548 §3.5). Each chain holds at most one secret, the lowest unused
// ss[i]; every Take consumes its entry, so one ss[i] can key at most one
// connection, and a failed attempt uses up its i. After a Take (successful
// resumption or not) the caller computes NextSecret and Puts ss[i+1] with
// the same Chain, unless the application asked not to cache.
//
// Lookups: a PASSIVE opener finds a secret by the 9-byte half it received
// (TakeByHalf); an ACTIVE opener by the peer's address (TakeForPeer).
//
// Per-connection controls required by §3.5 map onto the API: "ignore
// resumption" = do not call a Take method (offer or answer a fresh
// exchange); "do not cache" = do not Put; "flush" = Flush(chain).
//
// Secrets are overwritten when used, evicted (oldest first when full),
// expired (TTL against the injected clock) or flushed, and are never
// written anywhere else (§3.5: SHOULD NOT reach non-volatile storage).
// A Cache is safe for concurrent use.
type Cache struct {
	mu        sync.Mutex
	max       int
	now       func() time.Time
	ttl       time.Duration
	order     *list.List // of *cacheItem, oldest at the front
	byHalf    map[[ResumeHalfLen]byte]*list.Element
	byChain   map[ChainID]*list.Element
	nextChain ChainID
}

// NewCache returns a cache holding at most size entries (at least 1), each
// living ttl (0: until evicted), measured with now (time.Now if nil).
func NewCache(size int, now func() time.Time, ttl time.Duration) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{
		max:     max(size, 1),
		now:     now,
		ttl:     ttl,
		order:   list.New(),
		byHalf:  make(map[[ResumeHalfLen]byte]*list.Element),
		byChain: make(map[ChainID]*list.Element),
	}
}

// Put caches a copy of e.Secret (ss[i]) and returns its chain id (a new
// one when e.Chain is 0). An entry already held for the chain with a lower
// or equal index is replaced (and overwritten); a Put whose index is below
// the held one is ignored, so secrets are never offered out of order.
func (c *Cache) Put(e CacheEntry) (ChainID, error) {
	if len(e.Secret) != KeyLen {
		return 0, fmt.Errorf("tcpcrypt: cache put: secret of %d bytes: %w", len(e.Secret), ErrBadSecret)
	}
	if !SupportedTEP(e.TEP) {
		return 0, fmt.Errorf("tcpcrypt: cache put: TEP 0x%02x: %w", e.TEP, ErrUnsupportedTEP)
	}
	if !e.AEAD.Supported() {
		return 0, fmt.Errorf("tcpcrypt: cache put: %v: %w", e.AEAD, ErrUnsupportedAEAD)
	}
	e.Secret = slices.Clone(e.Secret)
	e.MyHalf, e.PeerHalf = ResumeHalves(e.Secret, e.WasA)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	if e.Chain == 0 {
		c.nextChain++
		e.Chain = c.nextChain
	}
	if el, ok := c.byChain[e.Chain]; ok {
		if el.Value.(*cacheItem).e.Index > e.Index {
			clear(e.Secret)
			return e.Chain, nil
		}
		c.removeLocked(el)
	}
	if el, ok := c.byHalf[e.PeerHalf]; ok { // a 72-bit collision; keep the newer
		c.removeLocked(el)
	}
	it := &cacheItem{e: e}
	if c.ttl > 0 {
		it.expires = c.now().Add(c.ttl)
	}
	el := c.order.PushBack(it)
	c.byHalf[e.PeerHalf] = el
	c.byChain[e.Chain] = el
	for c.order.Len() > c.max {
		c.removeLocked(c.order.Front())
	}
	return e.Chain, nil
}

// TakeByHalf is the passive opener's lookup (RFC 8548 §3.5): the entry
// whose peer half equals half, if its TEP equals tep (v bit clear). The
// entry is removed; the caller answers with e.MyHalf and its nonce. A TEP
// mismatch leaves the entry in place and reports false (the host MUST NOT
// accept that resumption).
func (c *Cache) TakeByHalf(tep uint8, half []byte) (CacheEntry, bool) {
	if len(half) != ResumeHalfLen {
		return CacheEntry{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	el, ok := c.byHalf[[ResumeHalfLen]byte(half)]
	if !ok || el.Value.(*cacheItem).e.TEP != tep {
		return CacheEntry{}, false
	}
	return c.takeLocked(el), true
}

// TakeForPeer is the active opener's lookup: the newest entry for peer
// whose TEP is in teps (any TEP when teps is nil). The entry is removed:
// proposing it uses up its index whether or not the peer accepts.
func (c *Cache) TakeForPeer(peer netip.Addr, teps []uint8) (CacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	for el := c.order.Back(); el != nil; el = el.Prev() {
		e := &el.Value.(*cacheItem).e
		if e.Peer == peer && (teps == nil || slices.Contains(teps, e.TEP)) {
			return c.takeLocked(el), true
		}
	}
	return CacheEntry{}, false
}

// Flush removes (and overwrites) the secret cached for chain, reporting
// how many entries went (0 or 1). After a flush the caller must not Put
// later secrets of that chain.
func (c *Cache) Flush(chain ChainID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byChain[chain]; ok {
		c.removeLocked(el)
		return 1
	}
	return 0
}

// Expire removes the entries whose TTL has passed and returns how many.
func (c *Cache) Expire() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.expireLocked()
}

// Len returns the number of cached secrets (expired ones included until
// the next call that expires).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// Clear removes and overwrites every cached secret.
func (c *Cache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.order.Len() > 0 {
		c.removeLocked(c.order.Front())
	}
}

// takeLocked removes el and returns its entry with a copy of the secret.
func (c *Cache) takeLocked(el *list.Element) CacheEntry {
	e := el.Value.(*cacheItem).e
	e.Secret = slices.Clone(e.Secret)
	c.removeLocked(el)
	return e
}

// removeLocked unlinks el from every index and overwrites its secret.
func (c *Cache) removeLocked(el *list.Element) {
	it := el.Value.(*cacheItem)
	c.order.Remove(el)
	if c.byHalf[it.e.PeerHalf] == el {
		delete(c.byHalf, it.e.PeerHalf)
	}
	if c.byChain[it.e.Chain] == el {
		delete(c.byChain, it.e.Chain)
	}
	clear(it.e.Secret)
	it.e.Secret = nil
}

// expireLocked drops entries past their TTL. Entries are kept in insertion
// order and share one TTL, so the expired ones are at the front.
func (c *Cache) expireLocked() int {
	if c.ttl <= 0 {
		return 0
	}
	now := c.now()
	n := 0
	for el := c.order.Front(); el != nil; el = c.order.Front() {
		if now.Before(el.Value.(*cacheItem).expires) {
			break
		}
		c.removeLocked(el)
		n++
	}
	return n
}
