package engine

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/engine/enginetest"
	"github.com/tcpcryptd/tcpcrypt/packet"
)

// stripENO returns pkt without its ENO options (a middlebox that removes
// unknown options).
func stripENO(pkt []byte) []byte {
	var p packet.Packet
	if packet.Parse(pkt, &p) != nil || packet.CountOption(p.TCP.Options(), packet.OptENO) == 0 {
		return pkt
	}
	var ob packet.OptionBuilder
	opts, err := editOptions(&ob, p.TCP.Options(), &optEdit{dropENO: true})
	if err != nil {
		return pkt
	}
	out, err := packet.Rebuild(nil, &p, opts, p.TCP.Payload())
	if err != nil {
		return pkt
	}
	return out
}

// TestScenarioOneSidedEngine: a host without an engine talks plain TCP to
// a host with one, and past the SYN the wire carries exactly what the
// stacks sent.
func TestScenarioOneSidedEngine(t *testing.T) {
	for _, engineOnA := range []bool{true, false} {
		for _, v6 := range []bool{false, true} {
			name := map[bool]string{true: "engine-on-client", false: "engine-on-server"}[engineOnA] + "/" + map[bool]string{false: "v4", true: "v6"}[v6]
			t.Run(name, func(t *testing.T) {
				cfg := Config{}
				ps := pairSetup{cfg: enginetest.Config{MTU: 1500}}
				if engineOnA {
					ps.engA = &cfg
				} else {
					ps.engB = &cfg
				}
				p, ma, mb := newPair(t, ps)
				if err := p.Bulk(scenarioCtx(t), v6, 443, 1<<20, 1<<20); err != nil {
					t.Fatal(err)
				}
				m := ma
				if !engineOnA {
					m = mb
				}
				c := m.counters()
				wantReplaced := uint64(0)
				if engineOnA {
					wantReplaced = 1 // the SYN, with our ENO offer
				}
				if c.Replaced < wantReplaced || c.Replaced > wantReplaced+2 || c.Dropped != 0 || c.InjectedToPeer != 0 || c.InjectedToLocal != 0 {
					t.Errorf("engine touched a plain connection: %s", ctrSummary(c))
				}
				if n := len(m.snapshot()); n != 0 {
					t.Errorf("%d flows still tracked after fallback", n)
				}
				leaked, payloads := leaks(p, bulkData(1<<20, 1<<20))
				if leaked == 0 || leaked < payloads/2 {
					t.Errorf("plain TCP expected on the wire: %d of %d payloads hold the data", leaked, payloads)
				}
			})
		}
	}
}

// TestScenarioENOStripped: a middlebox strips ENO in one direction; both
// ends fall back to plain TCP and the transfer still works.
func TestScenarioENOStripped(t *testing.T) {
	for _, dir := range []enginetest.WireDir{enginetest.AToB, enginetest.BToA} {
		t.Run(dir.String(), func(t *testing.T) {
			cfg := Config{}
			p, ma, mb := newPair(t, pairSetup{
				cfg: enginetest.Config{MTU: 1500, OnWire: func(d enginetest.WireDir, pkt []byte) []byte {
					if d == dir {
						return stripENO(pkt)
					}
					return pkt
				}},
				engA: &cfg, engB: &cfg,
			})
			if err := p.Bulk(scenarioCtx(t), false, 443, 256<<10, 256<<10); err != nil {
				t.Fatal(err)
			}
			ca, cb := ma.counters(), mb.counters()
			if ca.FlowsEncrypted+cb.FlowsEncrypted != 0 {
				t.Errorf("encrypted despite stripped ENO: A %s / B %s", ctrSummary(ca), ctrSummary(cb))
			}
			var fa, fb uint64
			for _, v := range ca.Fallbacks {
				fa += v
			}
			for _, v := range cb.Fallbacks {
				fb += v
			}
			if fa == 0 || (dir == enginetest.BToA && fb == 0) {
				t.Errorf("fallbacks A=%d B=%d: A %s / B %s", fa, fb, ctrSummary(ca), ctrSummary(cb))
			}
			if n := len(ma.snapshot()) + len(mb.snapshot()); n != 0 {
				t.Errorf("%d flows still tracked", n)
			}
		})
	}
}

// dialPair opens one connection A->B.
func dialPair(t *testing.T, p *enginetest.Pair, v6 bool, port uint16) (a, b *enginetest.Conn) {
	t.Helper()
	ctx := scenarioCtx(t)
	ln, err := p.Listen(v6, port)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan *enginetest.Conn, 1)
	go func() {
		c, err := ln.AcceptConn(ctx)
		if err != nil {
			c = nil
		}
		ch <- c
	}()
	a, err = p.Dial(ctx, v6, port)
	if err != nil {
		t.Fatal(err)
	}
	b = <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// readAll reads until an error and returns what was read and the error.
func readAll(c *enginetest.Conn, deadline time.Duration) ([]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(deadline))
	var got []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, err
		}
	}
}

// TestScenarioTamper: one flipped ciphertext bit aborts the connection at
// both ends; the application gets an error, not EOF, and only bytes that
// verified (a prefix of what was sent).
func TestScenarioTamper(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v4", true: "v6"}[v6], func(t *testing.T) {
			var n atomic.Int64
			var tampered atomic.Bool
			cfg := Config{}
			p, ma, mb := newPair(t, pairSetup{
				cfg: enginetest.Config{MTU: 1500, OnWire: func(d enginetest.WireDir, pkt []byte) []byte {
					pl, ok := enginetest.TCPPayload(pkt)
					if d != enginetest.AToB || !ok || len(pl) < 200 || n.Add(1) != 100 {
						return pkt
					}
					pl[len(pl)/2] ^= 0x10
					enginetest.FixChecksums(pkt)
					tampered.Store(true)
					return pkt
				}},
				engA: &cfg, engB: &cfg,
			})
			a, b := dialPair(t, p, v6, 443)
			data := enginetest.RandomBytes(50, 4<<20)
			var wg sync.WaitGroup
			var werr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, werr = a.Write(data)
			}()
			got, err := readAll(b, 20*time.Second)
			wg.Wait()
			if !tampered.Load() {
				t.Fatal("nothing tampered")
			}
			if err == nil || errors.Is(err, io.EOF) || errors.Is(err, errTimeoutSentinel(err)) {
				t.Fatalf("B read ended with %v, want a reset", err)
			}
			if len(got) >= len(data) || !bytes.Equal(got, data[:len(got)]) {
				t.Fatalf("B read %d bytes, not a strict prefix of what A sent", len(got))
			}
			if werr == nil {
				if _, rerr := readAll(a, 5*time.Second); rerr == nil || errors.Is(rerr, io.EOF) {
					t.Errorf("A saw no reset: write ok, read %v", rerr)
				}
			}
			cb := mb.counters()
			if cb.Aborts[AbortAuth]+cb.Aborts[AbortMalformedFrame] != 1 {
				t.Errorf("B aborts: %s", ctrSummary(cb))
			}
			t.Logf("B read %d bytes before the abort; A: %s", len(got), ctrSummary(ma.counters()))
		})
	}
}

// errTimeoutSentinel returns err itself when it is a timeout, so that a
// timeout never counts as the expected reset.
func errTimeoutSentinel(err error) error {
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return err
	}
	return errNotTimeout
}

var errNotTimeout = errors.New("not a timeout")

// TestScenarioForgedFIN: a FIN set on a segment whose stream has no FINp
// frame aborts the connection instead of ending the stream: the reader gets
// an error, never EOF, and only verified data.
func TestScenarioForgedFIN(t *testing.T) {
	for _, pure := range []bool{false, true} {
		t.Run(map[bool]string{false: "on-data", true: "on-pure-ack"}[pure], func(t *testing.T) {
			var n atomic.Int64
			var forged atomic.Bool
			cfg := Config{}
			p, _, mb := newPair(t, pairSetup{
				cfg: enginetest.Config{MTU: 1500, OnWire: func(d enginetest.WireDir, pkt []byte) []byte {
					pl, ok := enginetest.TCPPayload(pkt)
					if d != enginetest.AToB || !ok || (len(pl) == 0) != pure || forged.Load() {
						return pkt
					}
					var pp packet.Packet
					if packet.Parse(pkt, &pp) != nil || pp.TCP.Flags()&^packet.FlagPSH != packet.FlagACK || n.Add(1) < 30 {
						return pkt
					}
					pp.TCP.SetFlags(pp.TCP.Flags() | packet.FlagFIN)
					enginetest.FixChecksums(pkt)
					forged.Store(true)
					return pkt
				}},
				engA: &cfg, engB: &cfg,
			})
			a, b := dialPair(t, p, false, 443)
			data := enginetest.RandomBytes(51, 4<<20)
			if pure {
				// B sends, so that A sends pure ACKs; the FIN is forged
				// on one of them on its way to B.
				go func() { _, _ = b.Write(data) }()
				go func() { _, _ = readAll(a, 20*time.Second) }()
			} else {
				go func() { _, _ = a.Write(data) }()
			}
			got, berr := readAll(b, 20*time.Second)
			if !forged.Load() {
				t.Fatal("no FIN forged")
			}
			c := mb.counters()
			if c.Aborts[AbortFINWithoutFINp] != 1 {
				t.Errorf("B: %s%s", ctrSummary(c), mb.dump())
			}
			if !bytes.Equal(got, data[:len(got)]) {
				t.Errorf("B read %d bytes that are not a prefix of what A sent", len(got))
			}
			if !pure && (errors.Is(berr, io.EOF) || berr == nil || errors.Is(berr, errTimeoutSentinel(berr))) {
				t.Errorf("B read ended with %v, want a reset (a forged FIN must not be an EOF)\nB: %s%s", berr, ctrSummary(mb.counters()), mb.dump())
			}
		})
	}
}

// TestScenarioLoopback: one engine is the Middle of both hosts, as on a
// machine talking to itself: each end is its own flow.
func TestScenarioLoopback(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v4", true: "v6"}[v6], func(t *testing.T) {
			cfg := Config{}
			p, m, _ := newPair(t, pairSetup{cfg: enginetest.Config{MTU: 1500}, engA: &cfg, loopback: true})
			if err := p.Bulk(scenarioCtx(t), v6, 443, 2<<20, 2<<20); err != nil {
				t.Fatal(err)
			}
			fl := m.snapshot()
			if len(fl) != 2 {
				t.Fatalf("%d flows, want 2 (one per end)", len(fl))
			}
			if fl[0].SessionID == nil || !bytes.Equal(fl[0].SessionID, fl[1].SessionID) {
				t.Errorf("session ids %x / %x", fl[0].SessionID, fl[1].SessionID)
			}
			if fl[0].Role == fl[1].Role {
				t.Errorf("both ends have role %v", fl[0].Role)
			}
			checkNoPlaintext(t, p, bulkData(2<<20, 2<<20))
		})
	}
}

// TestScenarioRequired: a Required policy against a peer without an
// engine aborts instead of talking plain TCP.
func TestScenarioRequired(t *testing.T) {
	cfg := Config{Policy: func(local, remote netip.AddrPort) Mode { return Required }}
	p, ma, _ := newPair(t, pairSetup{cfg: enginetest.Config{MTU: 1500}, engA: &cfg})
	ctx := scenarioCtx(t)
	ln, err := p.Listen(false, 443)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.AcceptConn(ctx); err == nil {
			c.Write([]byte("plaintext from the server"))
			c.Close()
		}
	}()
	c, err := p.Dial(ctx, false, 443)
	if err == nil {
		_, err = readAll(c, 5*time.Second)
		c.Close()
		if errors.Is(err, io.EOF) {
			t.Fatalf("connection worked in plaintext under Required")
		}
	}
	if got := ma.counters().Aborts[AbortRequired]; got != 1 {
		t.Errorf("required aborts = %d: %s", got, ctrSummary(ma.counters()))
	}
	if leaked, _ := leaks(p, indexPlaintext([]byte("plaintext from the server......."))); leaked != 0 {
		t.Errorf("server plaintext reached the wire")
	}
}

// TestScenarioZeroWindow: the receiving application stops reading, the
// window closes and the sender probes it; then reading resumes and every
// byte arrives intact.
func TestScenarioZeroWindow(t *testing.T) {
	cfg := Config{}
	p, ma, mb := newPair(t, pairSetup{
		cfg:  enginetest.Config{MTU: 1500, B: enginetest.HostConfig{RcvBuf: 16384}},
		engA: &cfg, engB: &cfg,
	})
	a, b := dialPair(t, p, false, 443)
	data := enginetest.RandomBytes(60, 1<<20)
	werr := make(chan error, 1)
	go func() {
		_, err := a.Write(data)
		if err == nil {
			err = a.CloseWrite()
		}
		werr <- err
	}()
	time.Sleep(1500 * time.Millisecond) // window closes; A's stack probes it
	got, err := readAll(b, 30*time.Second)
	if !errors.Is(err, io.EOF) || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v\nA: %s%s\nB: %s%s", len(got), err, ctrSummary(ma.counters()), ma.dump(), ctrSummary(mb.counters()), mb.dump())
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if checkSessions(t, ma, mb) != 1 {
		t.Error("no shared session id")
	}
	checkNoPlaintext(t, p, indexPlaintext(data))
}
