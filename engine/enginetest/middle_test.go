package enginetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// checkingMiddle passes packets through and records any concurrent entry.
type checkingMiddle struct {
	in        atomic.Int32
	overlaps  atomic.Int32
	processed atomic.Int64
	ticks     atomic.Int64
	deadlines atomic.Int64
}

func (m *checkingMiddle) enter() {
	if m.in.Add(1) != 1 {
		m.overlaps.Add(1)
	}
	runtime.Gosched() // widen the window for a concurrent caller
}

func (m *checkingMiddle) leave() { m.in.Add(-1) }

func (m *checkingMiddle) Process(dir Dir, pkt []byte, now time.Time) (toWire, toLocal [][]byte) {
	m.enter()
	defer m.leave()
	m.processed.Add(1)
	return PassThrough{}.Process(dir, pkt, now)
}

func (m *checkingMiddle) Tick(time.Time) (toWire, toLocal [][]byte) {
	m.enter()
	defer m.leave()
	m.ticks.Add(1)
	return nil, nil
}

func (m *checkingMiddle) NextDeadline() time.Time {
	m.deadlines.Add(1)
	return time.Now().Add(500 * time.Microsecond)
}

func TestMiddleSerialised(t *testing.T) {
	CheckLeaks(t)
	ma, mb := &checkingMiddle{}, &checkingMiddle{}
	p := NewForTest(t, Config{MTU: 1500, A: HostConfig{Middle: ma}, B: HostConfig{Middle: mb}})
	if err := p.Bulk(testCtx(t), true, 443, 1<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*checkingMiddle{"A": ma, "B": mb} {
		if m.overlaps.Load() != 0 {
			t.Errorf("%s: %d concurrent calls into the Middle", name, m.overlaps.Load())
		}
		if m.processed.Load() < 1000 || m.ticks.Load() == 0 || m.deadlines.Load() == 0 {
			t.Errorf("%s: processed %d, ticks %d, deadlines %d", name, m.processed.Load(), m.ticks.Load(), m.deadlines.Load())
		}
	}
}

// refuser answers outbound SYNs to port 9 itself with a RST to the local
// stack (the way the engine aborts toward its own host), and forwards all
// else.
type refuser struct{ PassThrough }

func (r refuser) Process(dir Dir, pkt []byte, now time.Time) (toWire, toLocal [][]byte) {
	s, ok := parseSeg(pkt)
	if !ok || dir != Outbound || s.tcp().DestinationPort() != 9 || s.flags() != header.TCPFlagSyn {
		return r.PassThrough.Process(dir, pkt, now)
	}
	rst := bytes.Clone(s.b[:s.hdrLen()])
	v := seg{b: rst, v6: s.v6, ipLen: s.ipLen, tcpLen: s.tcpLen}
	src, dst := v.addrs()
	tmp := bytes.Clone(src)
	copy(src, dst)
	copy(dst, tmp)
	tcp := v.tcp()
	sp, dp := tcp.SourcePort(), tcp.DestinationPort()
	tcp.SetSourcePort(dp)
	tcp.SetDestinationPort(sp)
	tcp.SetAckNumber(s.seq() + 1)
	tcp.SetSequenceNumber(0)
	tcp.SetFlags(uint8(header.TCPFlagRst | header.TCPFlagAck))
	v.fixLengthsAndChecksums()
	return nil, [][]byte{rst}
}

func TestMiddleToLocal(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(ipName(v6), func(t *testing.T) {
			CheckLeaks(t)
			p := NewForTest(t, Config{A: HostConfig{Middle: refuser{}}, CaptureLimit: 100})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := p.Dial(ctx, v6, 9)
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded; want refused by the Middle's RST")
			}
			if ctx.Err() != nil {
				t.Fatalf("dial timed out instead of being refused: %v", err)
			}
			if s := p.Stats(); s.A.SYNOut == 0 {
				t.Errorf("A sent no SYN: %+v", s.A)
			}
			scanCapture(p, func(c Captured, s seg) {
				t.Errorf("TCP segment on the wire (%s, port %d); the Middle should have kept it local", c.Dir, s.tcp().DestinationPort())
			})
		})
	}
}

func TestOnWire(t *testing.T) {
	CheckLeaks(t)
	const n = 256 << 10
	sent := RandomBytes(1, n) // what Bulk sends A->B
	var tampered, plain, seen atomic.Int32
	p := NewForTest(t, Config{MTU: 1500, OnWire: func(dir WireDir, pkt []byte) []byte {
		pl, ok := TCPPayload(pkt)
		if !ok || dir != AToB || len(pl) == 0 {
			return pkt
		}
		if seen.Add(1)%50 == 0 {
			return nil // drop
		}
		if bytes.Contains(sent, pl) {
			plain.Add(1)
		}
		if tampered.Load() < 3 {
			tampered.Add(1)
			pl[0] ^= 0x80 // the receiver must discard this (bad checksum)
		}
		return pkt
	}})
	if err := p.Bulk(testCtx(t), false, 443, n, n); err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	if s.AToB.OnWireDrop == 0 || tampered.Load() != 3 {
		t.Errorf("OnWire drops %d, tampered %d", s.AToB.OnWireDrop, tampered.Load())
	}
	// A pass-through pair carries plaintext: the check an engine test inverts.
	if plain.Load() == 0 {
		t.Error("no plaintext seen on a pass-through wire")
	}
}

// windowBumper changes the window of outbound packets, fixing checksums or not.
type windowBumper struct {
	PassThrough
	fix bool
}

func (w windowBumper) Process(dir Dir, pkt []byte, now time.Time) (toWire, toLocal [][]byte) {
	if s, ok := parseSeg(pkt); ok && dir == Outbound {
		s.tcp().SetWindowSize(s.tcp().WindowSize() - 1)
		if w.fix {
			FixChecksums(pkt)
		}
	}
	return w.PassThrough.Process(dir, pkt, now)
}

func TestGSOPartialChecksumModified(t *testing.T) {
	for _, fix := range []bool{false, true} {
		t.Run(map[bool]string{false: "unfixed", true: "fixed"}[fix], func(t *testing.T) {
			CheckLeaks(t)
			p := NewForTest(t, Config{A: HostConfig{GSO: true, GSOPartialChecksum: true, Middle: windowBumper{fix: fix}}})
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			c, err := p.Dial(ctx, false, 80)
			if c != nil {
				c.Close()
			}
			bad := p.Stats().A.BadChecksum
			if fix {
				// Nobody listens: a RST proves the SYN arrived intact.
				if err == nil || ctx.Err() != nil || bad != 0 {
					t.Errorf("dial err %v, ctx %v, bad checksums %d; want refused, 0", err, ctx.Err(), bad)
				}
			} else if err == nil || bad == 0 {
				t.Errorf("dial err %v, bad checksums %d; want failure and > 0", err, bad)
			}
		})
	}
}

func TestInjectWireAndPause(t *testing.T) {
	CheckLeaks(t)
	p := NewForTest(t, Config{CaptureLimit: 10})
	forged := make([]byte, 20)
	forged[0] = 0x45
	binary.BigEndian.PutUint16(forged[2:], 20)
	p.Pause()
	p.InjectWire(BToA, forged)
	time.Sleep(20 * time.Millisecond)
	if s := p.Stats(); s.BToA.Sent != 1 || s.BToA.Delivered != 0 {
		t.Fatalf("while paused: %+v", s.BToA)
	}
	p.Resume()
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().BToA.Delivered == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	caps, total := p.Capture()
	if total != 1 || len(caps) != 1 || caps[0].Dir != BToA || !bytes.Equal(caps[0].Pkt, forged) {
		t.Errorf("capture after resume: total %d, %+v", total, caps)
	}
}

func TestCaptureRing(t *testing.T) {
	c := captureRing{limit: 3, snap: 4}
	for i := 1; i <= 5; i++ {
		c.add(wireDirOf(i), make([]byte, i))
	}
	caps, total := c.snapshot()
	if total != 5 || len(caps) != 3 {
		t.Fatalf("total %d, kept %d", total, len(caps))
	}
	for i, cp := range caps {
		if want := i + 3; cp.Len != want || len(cp.Pkt) != min(want, 4) {
			t.Errorf("entry %d: Len %d, captured %d bytes; want %d, %d", i, cp.Len, len(cp.Pkt), want, min(want, 4))
		}
	}
	off := captureRing{}
	off.add(AToB, []byte{1})
	if caps, total := off.snapshot(); len(caps) != 0 || total != 0 {
		t.Error("capture with limit 0 kept packets")
	}
}

// wireDirOf alternates wire directions for test data.
func wireDirOf(i int) WireDir { return WireDir(i % 2) }
