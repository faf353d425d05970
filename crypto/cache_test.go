package crypto

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

var (
	peer1 = netip.MustParseAddr("192.0.2.1")
	peer2 = netip.MustParseAddr("2001:db8::2")
)

func entry(seed byte, wasA bool, peer netip.Addr) CacheEntry {
	return CacheEntry{Secret: seqBytes(seed, 32), Index: 1, TEP: TEPX25519, AEAD: AES128GCM, WasA: wasA, Peer: peer}
}

func TestCachePassiveAndActive(t *testing.T) {
	c := NewCache(10, nil, 0)
	// This host was B originally: the peer (A) sends resume[0:9].
	e := entry(1, false, peer1)
	chain, err := c.Put(e)
	if err != nil || chain == 0 {
		t.Fatalf("Put: %v %v", chain, err)
	}
	rid := ResumeID(e.Secret)
	if _, ok := c.TakeByHalf(TEPX25519, rid[9:]); ok {
		t.Fatal("found by our own half")
	}
	if _, ok := c.TakeByHalf(TEPX448, rid[:9]); ok {
		t.Fatal("found with the wrong TEP")
	}
	if _, ok := c.TakeByHalf(TEPX25519, rid[:8]); ok {
		t.Fatal("found by a short half")
	}
	got, ok := c.TakeByHalf(TEPX25519, rid[:9])
	if !ok || !bytes.Equal(got.Secret, e.Secret) || got.Chain != chain || got.WasA || got.AEAD != AES128GCM {
		t.Fatalf("TakeByHalf = %+v %v", got, ok)
	}
	if !bytes.Equal(got.MyHalf[:], rid[9:]) || !bytes.Equal(got.PeerHalf[:], rid[:9]) {
		t.Fatal("halves wrong")
	}
	if _, ok := c.TakeByHalf(TEPX25519, rid[:9]); ok || c.Len() != 0 {
		t.Fatal("entry not consumed")
	}

	// Active: newest entry for the peer with an acceptable TEP.
	a1 := entry(2, true, peer1)
	a2 := entry(3, true, peer1)
	a2.TEP = TEPX448
	a3 := entry(4, true, peer2)
	for _, e := range []CacheEntry{a1, a2, a3} {
		if _, err := c.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok := c.TakeForPeer(peer1, []uint8{TEPX25519}); !ok || !bytes.Equal(got.Secret, a1.Secret) {
		t.Fatal("TakeForPeer with TEP filter")
	}
	if got, ok := c.TakeForPeer(peer1, nil); !ok || !bytes.Equal(got.Secret, a2.Secret) {
		t.Fatal("TakeForPeer any TEP")
	}
	if _, ok := c.TakeForPeer(peer1, nil); ok {
		t.Fatal("consumed entries found again")
	}
	// The peer2 entry is also reachable by its half: the peer was B, so it sends resume[9:18].
	rid3 := ResumeID(a3.Secret)
	if _, ok := c.TakeByHalf(TEPX25519, rid3[9:]); !ok {
		t.Fatal("active entry not reachable by half")
	}
	if _, ok := c.TakeForPeer(peer2, nil); ok {
		t.Fatal("entry taken by half still reachable by peer")
	}
}

func TestCacheZeroesSecrets(t *testing.T) {
	c := NewCache(1, nil, 0)
	c.Put(entry(1, true, peer1))
	inner := c.order.Front().Value.(*cacheItem).e.Secret
	got, _ := c.TakeForPeer(peer1, nil)
	if !bytes.Equal(inner, make([]byte, 32)) {
		t.Fatal("used secret not overwritten")
	}
	if bytes.Equal(got.Secret, make([]byte, 32)) {
		t.Fatal("returned copy was zeroed")
	}
	c.Put(entry(2, true, peer1))
	inner = c.order.Front().Value.(*cacheItem).e.Secret
	c.Put(entry(3, true, peer1)) // evicts the first
	if !bytes.Equal(inner, make([]byte, 32)) || c.Len() != 1 {
		t.Fatal("evicted secret not overwritten")
	}
	// Put copies: the caller's slice may be cleared afterwards.
	src := seqBytes(9, 32)
	c.Put(CacheEntry{Secret: src, TEP: TEPX25519, AEAD: AES128GCM, WasA: true, Peer: peer2})
	clear(src)
	if got, ok := c.TakeForPeer(peer2, nil); !ok || !bytes.Equal(got.Secret, seqBytes(9, 32)) {
		t.Fatal("Put did not copy the secret")
	}
}

func TestCacheEvictionOldestFirst(t *testing.T) {
	c := NewCache(3, nil, 0)
	for i := range 5 {
		c.Put(entry(byte(i*40), true, netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})))
	}
	if c.Len() != 3 {
		t.Fatalf("Len = %d", c.Len())
	}
	for i := range 5 {
		_, ok := c.TakeForPeer(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), nil)
		if ok != (i >= 2) {
			t.Fatalf("entry %d present=%v", i, ok)
		}
	}
}

func TestCacheTTL(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	c := NewCache(10, clk.now, time.Minute)
	c.Put(entry(1, true, peer1))
	clk.t = clk.t.Add(30 * time.Second)
	c.Put(entry(2, true, peer2))
	clk.t = clk.t.Add(31 * time.Second)
	if _, ok := c.TakeForPeer(peer1, nil); ok {
		t.Fatal("expired entry returned")
	}
	if c.Len() != 1 {
		t.Fatalf("Len = %d after expiry", c.Len())
	}
	clk.t = clk.t.Add(time.Minute)
	if n := c.Expire(); n != 1 || c.Len() != 0 {
		t.Fatalf("Expire = %d, Len %d", n, c.Len())
	}
}

func TestCacheChainsAndFlush(t *testing.T) {
	c := NewCache(10, nil, 0)
	ss1 := seqBytes(1, 32)
	chain, _ := c.Put(CacheEntry{Secret: ss1, Index: 1, TEP: TEPX25519, AEAD: AES128GCM, WasA: true, Peer: peer1})
	// ss[2] of the same chain replaces ss[1].
	ss2 := NextSecret(ss1)
	if ch, _ := c.Put(CacheEntry{Secret: ss2, Index: 2, TEP: TEPX25519, AEAD: AES128GCM, WasA: true, Peer: peer1, Chain: chain}); ch != chain {
		t.Fatal("chain id changed")
	}
	if c.Len() != 1 {
		t.Fatalf("Len = %d, want 1 per chain", c.Len())
	}
	// A lower index for the chain is ignored.
	c.Put(CacheEntry{Secret: ss1, Index: 1, TEP: TEPX25519, AEAD: AES128GCM, WasA: true, Peer: peer1, Chain: chain})
	other, _ := c.Put(entry(50, false, peer1))
	if other == chain {
		t.Fatal("new chain reused an id")
	}
	if n := c.Flush(chain); n != 1 {
		t.Fatalf("Flush = %d", n)
	}
	if n := c.Flush(chain); n != 0 {
		t.Fatalf("second Flush = %d", n)
	}
	got, ok := c.TakeForPeer(peer1, nil)
	if !ok || got.Chain != other {
		t.Fatal("flush removed the wrong chain")
	}
	c.Put(entry(60, true, peer2))
	c.Clear()
	if c.Len() != 0 {
		t.Fatal("Clear")
	}
}

func TestCachePutErrors(t *testing.T) {
	c := NewCache(0, nil, 0) // size rounded up to 1
	bad := []struct {
		e    CacheEntry
		want error
	}{
		{CacheEntry{Secret: make([]byte, 31), TEP: TEPX25519, AEAD: AES128GCM}, ErrBadSecret},
		{CacheEntry{Secret: make([]byte, 32), TEP: 0x20, AEAD: AES128GCM}, ErrUnsupportedTEP},
		{CacheEntry{Secret: make([]byte, 32), TEP: TEPX25519, AEAD: 7}, ErrUnsupportedAEAD},
	}
	for _, b := range bad {
		if _, err := c.Put(b.e); !errors.Is(err, b.want) {
			t.Errorf("Put: %v, want %v", err, b.want)
		}
	}
	c.Put(entry(1, true, peer1))
	c.Put(entry(2, true, peer2))
	if c.Len() != 1 {
		t.Fatalf("size 0 cache holds %d", c.Len())
	}
}
