package rules

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/google/nftables/expr"
)

// FuzzParseNFQInfoV3: the xt_NFQ_info_v3 parser never panics, and whatever it
// accepts re-encodes to the same leading 6 bytes with zero padding.
func FuzzParseNFQInfoV3(f *testing.F) {
	f.Add([]byte{})
	f.Add(nfqInfoV3{QueueNum: 7463, QueuesTotal: 1, Flags: 1}.marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		i, err := parseNFQInfoV3(b)
		if err != nil {
			return
		}
		m := i.marshal()
		if len(m) != nfqInfoV3PaddedLen || !bytes.Equal(m[:6], b[:6]) || m[6] != 0 || m[7] != 0 {
			t.Fatalf("parse(%x) = %+v, re-encoded %x", b, i, m)
		}
	})
}

// FuzzPolicyJSON: decoding a policy entry never panics; an entry that decodes
// and validates encodes and decodes back to itself.
func FuzzPolicyJSON(f *testing.F) {
	f.Add([]byte(`{"port":443,"side":"local","mode":"opportunistic"}`))
	f.Add([]byte(`{"port":443,"side":"local","mode":"required","options":["appaware","noresume"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Policy
		if err := json.Unmarshal(b, &p); err != nil {
			return
		}
		if p.Validate() != nil {
			return
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("marshal valid %+v: %v", p, err)
		}
		var back Policy
		if err := json.Unmarshal(out, &back); err != nil || back != p {
			t.Fatalf("round trip %s -> %+v, %v; want %+v", out, back, err, p)
		}
	})
}

// FuzzBuild: Build never panics, refuses only invalid input, and what it
// builds has the mark, guard and policy rules in both chains, every queueing
// rule ending in a queue expression (or, with flow balancing, a jump to the
// select chain), and with several queues and no fanout two queue maps of one
// chain per queue.
func FuzzBuild(f *testing.F) {
	f.Add(uint16(443), uint8(1), uint8(0), "", uint16(443), uint8(2), uint8(1), "2001:db8::/32", uint16(7463), uint16(1), false, uint32(0x7463), true)
	f.Add(uint16(443), uint8(3), uint8(1), "", uint16(22), uint8(1), uint8(3), "10.0.0.0/8", uint16(100), uint16(4), false, uint32(0x7463), false)
	f.Add(uint16(8443), uint8(2), uint8(2), "", uint16(25), uint8(3), uint8(1), "", uint16(100), uint16(4), true, uint32(0x7463), false)
	f.Fuzz(func(t *testing.T, p1 uint16, s1, m1 uint8, pfx1 string, p2 uint16, s2, m2 uint8, pfx2 string,
		qnum, qcount uint16, fanout bool, mark uint32, native bool) {
		mk := func(port uint16, s, m uint8, pfx string) Policy {
			p := Policy{Port: port, Side: Side(s), Mode: Mode(m)}
			if pr, err := netip.ParsePrefix(pfx); err == nil {
				p.Prefix = pr
			}
			return p
		}
		policies := []Policy{mk(p1, s1, m1, pfx1), mk(p2, s2, m2, pfx2)}
		cfg := Config{QueueNum: qnum, QueueCount: qcount, CPUFanout: fanout, Mark: mark, PeerMark: mark + 1,
			Bypass: BypassPolicy{Opportunistic: true}}
		kind := QueueCompat
		if native {
			kind = QueueNative
		}
		rs, err := Build(cfg, policies, kind)
		if err != nil {
			if cfg.Validate() == nil {
				if _, nerr := Normalize(policies); nerr == nil {
					t.Fatalf("Build refused a valid config and policies: %v", err)
				}
			}
			return
		}
		norm, _ := Normalize(policies)
		sides, queued := 0, 2 // the two guard rules queue
		for _, p := range norm {
			for _, s := range []Side{SideLocal, SideRemote} {
				if p.Side&s != 0 {
					sides++
					if p.Mode != ModeExclude {
						queued++
					}
				}
			}
		}
		if len(rs.Chains) != 2 {
			t.Fatalf("%d chains", len(rs.Chains))
		}
		flow := cfg.queueCount() > 1 && !fanout
		if flow != (len(rs.Maps) == 2) {
			t.Fatalf("%d queues, fanout %v: %d queue maps", cfg.queueCount(), fanout, len(rs.Maps))
		}
		for _, m := range rs.Maps {
			if len(m.Chains) != int(cfg.queueCount()) {
				t.Fatalf("map %s: %d chains for %d queues", m.Name, len(m.Chains), cfg.queueCount())
			}
		}
		for ci, c := range rs.Chains {
			marks := 2 - ci // output lets both marks through, input only the local one
			if len(c.Rules) != marks+2+sides {
				t.Fatalf("chain %s: %d rules, want %d", c.Name, len(c.Rules), marks+2+sides)
			}
			q := 0
			for i, r := range c.Rules {
				switch last := r.Exprs[len(r.Exprs)-1].(type) {
				case *expr.Queue, *expr.Target:
					q++
				case *expr.Verdict:
					if last.Kind == expr.VerdictJump {
						q++
					} else if last.Kind != expr.VerdictAccept {
						t.Fatalf("rule %d: verdict %+v", i, last)
					}
				default:
					t.Fatalf("rule %d ends with %T", i, last)
				}
				if i < marks && q > 0 {
					t.Fatal("mark rule queues")
				}
			}
			if q != queued {
				t.Fatalf("chain %s: %d queue rules, want %d", c.Name, q, queued)
			}
		}
	})
}

// FuzzParsePrefix: ParsePrefix never panics; what it accepts is a valid,
// masked prefix that is not IPv4-mapped, and its String form parses back to
// itself.
func FuzzParsePrefix(f *testing.F) {
	f.Add("10.0.0.0/8")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix(s)
		if err != nil {
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() {
			t.Fatalf("ParsePrefix(%q) accepted %v", s, p)
		}
		back, err := ParsePrefix(p.String())
		if err != nil || back != p {
			t.Fatalf("ParsePrefix(%q) = %v; its String parses to %v, %v", s, p, back, err)
		}
	})
}
