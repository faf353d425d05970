package engine

import (
	"fmt"
	"github.com/tcpcryptd/tcpcrypt/packet"
	"sync"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/engine/enginetest"
)

// middle adapts an Engine to the harness's Middle: it keeps held packets
// by token and emits them when the engine releases them.
type middle struct {
	mu    sync.Mutex // the harness serialises per host; loopback shares one middle
	e     *Engine
	now   time.Time
	held  map[Token]heldAt
	trace [256]string // the last packets seen, for failure reports
	tn    int
	peak  int64 // highest Budget().Used() seen after a call
}

// record keeps a one-line summary of a packet and the engine's answer.
func (m *middle) record(d Dir, pkt []byte, r Result) {
	line := fmt.Sprintf("%s %v %s -> %v", m.now.Format("05.000"), d, summary(pkt), r.Verdict)
	if r.Verdict == Replace {
		line += " " + summary(r.Packet)
	}
	for _, b := range r.ToPeer {
		line += " | peer " + summary(b)
	}
	for _, b := range r.ToLocal {
		line += " | local " + summary(b)
	}
	m.trace[m.tn%len(m.trace)] = line
	m.tn++
}

func summary(b []byte) string {
	var p packet.Packet
	if packet.Parse(b, &p) != nil {
		return "?"
	}
	bl, n := packet.SACKBlocks(p.TCP.Options())
	s := fmt.Sprintf("[%d>%d f=%#x s=%d a=%d l=%d w=%d", p.SrcPort(), p.DstPort(), p.TCP.Flags(), p.TCP.Seq(), p.TCP.Ack(), len(p.Payload()), p.TCP.Window())
	if n > 0 {
		s += fmt.Sprintf(" sack=%v", bl[:n])
	}
	return s + "]"
}

// traceDump returns the recorded lines, oldest first.
func (m *middle) traceDump() string {
	s := ""
	for i := max(0, m.tn-len(m.trace)); i < m.tn; i++ {
		s += "\n    " + m.trace[i%len(m.trace)]
	}
	return s
}

type heldAt struct {
	dir Dir
	pkt []byte
}

// newMiddle returns an engine wrapped as a Middle, its clock driven by the
// harness.
func newMiddle(t testing.TB, cfg Config) *middle {
	t.Helper()
	m := &middle{held: make(map[Token]heldAt)}
	cfg.Now = func() time.Time { return m.now }
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.e = e
	return m
}

func (m *middle) Process(dir enginetest.Dir, pkt []byte, now time.Time) (toWire, toLocal [][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance(now)
	d := Outbound
	if dir == enginetest.Inbound {
		d = Inbound
	}
	r := m.e.Process(pkt, d)
	m.peak = max(m.peak, m.e.Budget().Used())
	m.record(d, pkt, r)
	switch r.Verdict {
	case Accept:
		toWire, toLocal = emit(d, pkt, toWire, toLocal)
	case Replace:
		toWire, toLocal = emitReplace(d, m.own(r.Packet), toWire, toLocal)
	case Hold:
		m.held[r.Token] = heldAt{dir: d, pkt: pkt}
	}
	return m.rest(r, toWire, toLocal)
}

func (m *middle) Tick(now time.Time) (toWire, toLocal [][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance(now)
	return m.rest(m.e.Tick(m.now), nil, nil)
}

func (m *middle) NextDeadline() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.e.NextDeadline()
}

// advance keeps the engine's clock monotonic across the two hosts' calls.
func (m *middle) advance(now time.Time) {
	if now.After(m.now) {
		m.now = now
	}
}

// own takes a packet the engine returned the way a caller that recycles
// does: a copy goes on, and the engine's buffer is poisoned and recycled at
// once, so that any packet or retransmission copy that still aliased it
// would show up as corrupted bytes in the scenario.
func (m *middle) own(b []byte) []byte {
	c := append([]byte(nil), b...)
	full := b[:cap(b)]
	for i := range full {
		full[i] = 0xa5
	}
	m.e.Recycle(b)
	return c
}

func (m *middle) rest(r Result, toWire, toLocal [][]byte) ([][]byte, [][]byte) {
	for _, b := range r.ToPeer {
		toWire = append(toWire, m.own(b))
	}
	for _, b := range r.ToLocal {
		toLocal = append(toLocal, m.own(b))
	}
	for _, rel := range r.Released {
		h, ok := m.held[rel.Token]
		if !ok {
			continue
		}
		delete(m.held, rel.Token)
		switch rel.Verdict {
		case Accept:
			toWire, toLocal = emit(h.dir, h.pkt, toWire, toLocal)
		case Replace:
			toWire, toLocal = emitReplace(h.dir, m.own(rel.Packet), toWire, toLocal)
		}
	}
	return toWire, toLocal
}

// emitReplace is emit for a Replace verdict, as Linux's NFQUEUE does it: a
// packet longer than a verdict can carry (nfqVerdictMax) never reaches the
// kernel, so it is lost.
func emitReplace(d Dir, pkt []byte, toWire, toLocal [][]byte) ([][]byte, [][]byte) {
	if len(pkt) > nfqVerdictMax {
		return toWire, toLocal
	}
	return emit(d, pkt, toWire, toLocal)
}

func emit(d Dir, pkt []byte, toWire, toLocal [][]byte) ([][]byte, [][]byte) {
	if d == Outbound {
		return append(toWire, pkt), toLocal
	}
	return toWire, append(toLocal, pkt)
}

// engine returns the middle's engine for inspection under its lock.
func (m *middle) snapshot() []FlowInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.e.Snapshot()
}

func (m *middle) counters() Counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.e.Counters()
}
