package engine

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/eno"
	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// TestScriptShortResumeOfferIsFresh: RFC 8548 §3.5 has a passive opener
// treat a TEP suboption with v = 1 but fewer than 9 data bytes (less than a
// resumption half) as a fresh offer of that TEP. The server holds a cached
// secret, and the client's SYN offers resumption of it: with the whole half
// (and a nonce), the SYN-ACK accepts the resumption (v = 1); cut to 8 bytes
// or fewer, the SYN-ACK answers the TEP fresh (v = 0, no data) and the
// secret stays in the cache, unused.
func TestScriptShortResumeOfferIsFresh(t *testing.T) {
	cache := crypto.NewCache(16, func() time.Time { return time.Unix(1_700_000_000, 0) }, 0)
	s := newScript(t, Config{}, Config{Cache: cache})
	secret := bytes.Repeat([]byte{0x5a}, crypto.KeyLen)
	if _, err := cache.Put(crypto.CacheEntry{Secret: secret, TEP: crypto.TEPX25519, AEAD: crypto.AES128GCM,
		WasA: false, Peer: s.cli.Addr()}); err != nil {
		t.Fatal(err)
	}
	_, clientHalf := crypto.ResumeHalves(secret, false)
	nonce := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	offer := append(append([]byte(nil), clientHalf[:]...), nonce...)

	for i, tc := range []struct {
		name   string
		data   []byte
		resume bool
	}{
		// Fresh answers first: they must leave the secret in the cache
		// for the last case to take.
		{"no data", offer[:0], false},
		{"4 bytes", offer[:4], false},
		{"8 bytes", offer[:8], false},
		{"half and nonce", offer, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.cli = netip.AddrPortFrom(s.cli.Addr(), uint16(41000+i))
			// MSS, then ENO: kind, length, the TEP byte with v = 1, data
			// (last suboption: no length byte needed).
			opts := append([]byte{2, 4, 0x05, 0xb4, packet.OptENO, byte(3 + len(tc.data)), crypto.TEPX25519 | 0x80}, tc.data...)
			for len(opts)%4 != 0 {
				opts = append(opts, 1) // NOP
			}
			isn := cISN.Add(seq.Size(i * 100000))
			if r := s.inB(s.cliSeg(isn, 0, packet.FlagSYN, opts, nil)); r.Verdict == Drop {
				t.Fatalf("SYN dropped")
			}
			r := s.outB(s.srvSeg(sISN, isn.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil))
			raw, n, err := eno.FindENO(view(t, r.Packet).TCP.Options())
			if err != nil || n != 1 {
				t.Fatalf("SYN-ACK: %d ENO options, %v", n, err)
			}
			ans, err := eno.ParseSYN(raw)
			if err != nil {
				t.Fatalf("SYN-ACK ENO %x: %v", raw, err)
			}
			if len(ans.Subs) != 1 || ans.Subs[0].ID != crypto.TEPX25519 {
				t.Fatalf("SYN-ACK answers %+v, want TEP %#x", ans.Subs, crypto.TEPX25519)
			}
			if got := ans.Subs[0].V; got != tc.resume {
				t.Errorf("SYN-ACK TEP v = %v (data %x), want %v", got, ans.Subs[0].Data, tc.resume)
			}
			if want := map[bool]int{false: 1, true: 0}[tc.resume]; cache.Len() != want {
				t.Errorf("cache holds %d secrets after the answer, want %d", cache.Len(), want)
			}
		})
	}
}
