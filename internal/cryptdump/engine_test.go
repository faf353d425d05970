package cryptdump

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/engine/enginetest"
	"github.com/tcpcryptd/tcpcrypt/internal/pcapio"
)

// engineMiddle seats an engine.Engine in the enginetest harness (as the
// engine package's own tests do): held packets are kept by token and
// emitted when released.
type engineMiddle struct {
	mu   sync.Mutex
	e    *engine.Engine
	now  time.Time
	held map[engine.Token]heldPkt
}

type heldPkt struct {
	dir engine.Dir
	pkt []byte
}

func newEngineMiddle(t *testing.T, cfg engine.Config) *engineMiddle {
	t.Helper()
	m := &engineMiddle{held: map[engine.Token]heldPkt{}}
	cfg.Now = func() time.Time { return m.now }
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.e = e
	return m
}

func (m *engineMiddle) Process(dir enginetest.Dir, pkt []byte, now time.Time) (toWire, toLocal [][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.After(m.now) {
		m.now = now
	}
	d := engine.Outbound
	if dir == enginetest.Inbound {
		d = engine.Inbound
	}
	r := m.e.Process(pkt, d)
	switch r.Verdict {
	case engine.Accept:
		toWire, toLocal = emit(d, pkt, toWire, toLocal)
	case engine.Replace:
		toWire, toLocal = emit(d, r.Packet, toWire, toLocal)
	case engine.Hold:
		m.held[r.Token] = heldPkt{d, pkt}
	}
	return m.rest(r, toWire, toLocal)
}

func (m *engineMiddle) Tick(now time.Time) (toWire, toLocal [][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.After(m.now) {
		m.now = now
	}
	return m.rest(m.e.Tick(m.now), nil, nil)
}

func (m *engineMiddle) NextDeadline() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.e.NextDeadline()
}

func (m *engineMiddle) rest(r engine.Result, toWire, toLocal [][]byte) ([][]byte, [][]byte) {
	toWire = append(toWire, r.ToPeer...)
	toLocal = append(toLocal, r.ToLocal...)
	for _, rel := range r.Released {
		h, ok := m.held[rel.Token]
		if !ok {
			continue
		}
		delete(m.held, rel.Token)
		switch rel.Verdict {
		case engine.Accept:
			toWire, toLocal = emit(h.dir, h.pkt, toWire, toLocal)
		case engine.Replace:
			toWire, toLocal = emit(h.dir, rel.Packet, toWire, toLocal)
		}
	}
	return toWire, toLocal
}

func emit(d engine.Dir, pkt []byte, toWire, toLocal [][]byte) ([][]byte, [][]byte) {
	if d == engine.Outbound {
		return append(toWire, pkt), toLocal
	}
	return toWire, append(toLocal, pkt)
}

// keyLogBuf collects key-log lines in tcpcryptd's format.
type keyLogBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (k *keyLogBuf) log(kind engine.KeyLogKind, a, b []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	label := "TCPCRYPT_ES"
	if kind == engine.KeyLogSS {
		label = "TCPCRYPT_SS"
	}
	fmt.Fprintf(&k.b, "%s %x %x\n", label, a, b)
}

func (k *keyLogBuf) String() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.b.String()
}

// setup describes a test run through two engines.
type setup struct {
	wire       enginetest.Config
	cfgA, cfgB engine.Config
}

// run makes two engine hosts, runs f on the pair and returns the wire
// capture as a pcap file (LINKTYPE_RAW) and both key logs concatenated.
func runPair(t *testing.T, s setup, f func(ctx context.Context, p *enginetest.Pair)) (pcap []byte, keylog string) {
	t.Helper()
	var kl keyLogBuf
	s.cfgA.KeyLog, s.cfgB.KeyLog = kl.log, kl.log
	s.wire.A.Middle = newEngineMiddle(t, s.cfgA)
	s.wire.B.Middle = newEngineMiddle(t, s.cfgB)
	if s.wire.CaptureLimit == 0 {
		s.wire.CaptureLimit = 200000
	}
	p := enginetest.NewForTest(t, s.wire)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f(ctx, p)
	p.Close()
	caps, total := p.Capture()
	if total != uint64(len(caps)) {
		t.Fatalf("capture ring overflowed: %d of %d packets kept", len(caps), total)
	}
	var buf bytes.Buffer
	w, err := pcapio.NewWriter(&buf, pcapio.LinkRaw, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range caps {
		if err := w.WritePacket(c.Time, c.Pkt); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes(), kl.String()
}

// analyze runs the dumper on a capture and key log.
func analyze(t *testing.T, pcap []byte, keylog string) []Report {
	t.Helper()
	keys := NewKeyLog()
	if err := keys.Read(strings.NewReader(keylog), "keylog", func(s string) { t.Errorf("key log: %s", s) }); err != nil {
		t.Fatal(err)
	}
	c := NewCapture()
	if err := c.ReadCapture(bytes.NewReader(pcap)); err != nil {
		t.Fatal(err)
	}
	reps, err := c.Analyze(keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	return reps
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkBulk asserts that r verified a Bulk transfer of nAB/nBA bytes.
func checkBulk(t *testing.T, r Report, nAB, nBA int) {
	t.Helper()
	if !r.Encrypted || len(r.Violations) > 0 {
		t.Fatalf("connection %s -> %s: encrypted %v (%s), violations %q", r.Client, r.Server, r.Encrypted, r.Plain, r.Violations)
	}
	if r.BytesAToB != uint64(nAB) || r.BytesBToA != uint64(nBA) {
		t.Errorf("bytes %d / %d, want %d / %d", r.BytesAToB, r.BytesBToA, nAB, nBA)
	}
	if want := sum(enginetest.RandomBytes(1, nAB)); r.SHA256AToB != want {
		t.Errorf("sha256 A->B %s, want %s", r.SHA256AToB, want)
	}
	if want := sum(enginetest.RandomBytes(2, nBA)); r.SHA256BToA != want {
		t.Errorf("sha256 B->A %s, want %s", r.SHA256BToA, want)
	}
	if !r.FINpAToB || !r.FINpBToA {
		t.Errorf("FINp A->B %v, B->A %v; want both", r.FINpAToB, r.FINpBToA)
	}
	if len(r.SessionID) != 2*crypto.SessionIDLen || r.TEP != "TCPCRYPT_ECDHE_Curve25519" || r.AEAD == "" {
		t.Errorf("session id %q, TEP %q, AEAD %q", r.SessionID, r.TEP, r.AEAD)
	}
}

// TestVerifiesEngineTraffic: a capture of two engines, over a clean wire
// and over one that loses, reorders, duplicates and resplits segments,
// verifies, with the SHA-256 of the plaintext each side sent.
func TestVerifiesEngineTraffic(t *testing.T) {
	for _, tc := range []struct {
		name string
		imp  enginetest.Impairment
		v6   bool
	}{
		{name: "clean"},
		{name: "clean-v6", v6: true},
		{name: "impaired", imp: enginetest.Impairment{LossPct: 3, ReorderPct: 5, DupPct: 3, SplitPct: 10, CoalescePct: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const nAB, nBA = 200000, 70000
			wire := enginetest.Config{MTU: 1500, AToB: tc.imp, BToA: tc.imp}
			wire.A.MinRTO, wire.B.MinRTO = 20*time.Millisecond, 20*time.Millisecond
			pcap, kl := runPair(t, setup{wire: wire}, func(ctx context.Context, p *enginetest.Pair) {
				if err := p.Bulk(ctx, tc.v6, 443, nAB, nBA); err != nil {
					t.Fatal(err)
				}
			})
			reps := analyze(t, pcap, kl)
			if len(reps) != 1 {
				t.Fatalf("%d connections, want 1: %+v", len(reps), reps)
			}
			checkBulk(t, reps[0], nAB, nBA)
			if reps[0].Resumed {
				t.Error("fresh connection reported as resumed")
			}
		})
	}
}

// TestRekeysAndResumption: rekeys every 16 KiB are followed; the second and
// third connections resume, and verify with the secrets of the key log.
func TestRekeysAndResumption(t *testing.T) {
	clock := func() time.Time { return time.Unix(0, 0) }
	cfgA := engine.Config{Cache: crypto.NewCache(16, clock, 0), RekeyBytes: 16 << 10}
	cfgB := engine.Config{Cache: crypto.NewCache(16, clock, 0), RekeyBytes: 16 << 10}
	const nAB, nBA = 100000, 50000
	pcap, kl := runPair(t, setup{wire: enginetest.Config{MTU: 1500}, cfgA: cfgA, cfgB: cfgB}, func(ctx context.Context, p *enginetest.Pair) {
		for i := range 3 {
			if err := p.Bulk(ctx, false, uint16(443+i), nAB, nBA); err != nil {
				t.Fatal(err)
			}
		}
	})
	reps := analyze(t, pcap, kl)
	if len(reps) != 3 {
		t.Fatalf("%d connections, want 3", len(reps))
	}
	ids := map[string]bool{}
	for i, r := range reps {
		checkBulk(t, r, nAB, nBA)
		if r.Resumed != (i > 0) {
			t.Errorf("connection %d: resumed %v", i, r.Resumed)
		}
		if r.RekeysAToB == 0 || r.RekeysBToA == 0 {
			t.Errorf("connection %d: rekeys %d / %d, want some each way", i, r.RekeysAToB, r.RekeysBToA)
		}
		if ids[r.SessionID] {
			t.Errorf("session id %s twice", r.SessionID)
		}
		ids[r.SessionID] = true
		if !strings.Contains(kl, r.SessionID) {
			t.Errorf("connection %d: session id %s is not the one the engines logged", i, r.SessionID)
		}
	}
}

// TestTampered: a flipped ciphertext bit is an authentication violation; a
// segment dropped from the capture is a gap; a key log without the secret
// verifies nothing and says so.
func TestTampered(t *testing.T) {
	const nAB, nBA = 60000, 20000
	pcap, kl := runPair(t, setup{wire: enginetest.Config{MTU: 1500}}, func(ctx context.Context, p *enginetest.Pair) {
		if err := p.Bulk(ctx, false, 443, nAB, nBA); err != nil {
			t.Fatal(err)
		}
	})
	pkts := readAll(t, pcap)
	// A data segment from A to B (port 443 is B's), from the 10th on, whose
	// bytes no other captured segment carries (a retransmission would make
	// up for the dropped copy, and the tool would rightly not complain).
	idx := -1
	for i, n := 0, 0; i < len(pkts) && idx < 0; i++ {
		if pl := payloadOf(pkts[i]); len(pl) > 100 && dstPort(pkts[i]) == 443 {
			if n++; n >= 10 && !carriedElsewhere(pkts, i) {
				idx = i
			}
		}
	}
	if idx < 0 {
		t.Fatal("no data segment carried only once")
	}

	flipped := clonePkts(pkts)
	payloadOf(flipped[idx])[50] ^= 0x04
	// Any retransmission of those bytes would now differ; leave them so
	// both findings show.
	r := one(t, analyze(t, writeAll(t, flipped), kl))
	if !hasViolation(r, "fails authentication") {
		t.Errorf("flipped bit: violations %q", r.Violations)
	}
	if r.BytesAToB >= nAB {
		t.Errorf("flipped bit: %d bytes A->B verified", r.BytesAToB)
	}

	dropped := slices.Delete(clonePkts(pkts), idx, idx+1)
	r = one(t, analyze(t, writeAll(t, dropped), kl))
	if !hasViolation(r, "gap in the capture") {
		t.Errorf("dropped segment: violations %q", r.Violations)
	}

	// The capture stops halfway: whatever verified so far is reported, and
	// so is the missing end.
	r = one(t, analyze(t, writeAll(t, pkts[:len(pkts)/2]), kl))
	if !hasViolation(r, "capture ends before this direction closed") || r.BytesAToB == 0 || r.BytesAToB >= nAB {
		t.Errorf("half a capture: %d bytes A->B, violations %q", r.BytesAToB, r.Violations)
	}

	r = one(t, analyze(t, pcap, ""))
	if !hasViolation(r, "no TCPCRYPT_ES line") || r.BytesAToB != 0 {
		t.Errorf("no keys: violations %q, %d bytes", r.Violations, r.BytesAToB)
	}

	// The untouched capture still verifies.
	checkBulk(t, one(t, analyze(t, pcap, kl)), nAB, nBA)
}

func one(t *testing.T, reps []Report) Report {
	t.Helper()
	if len(reps) != 1 {
		t.Fatalf("%d connections, want 1", len(reps))
	}
	return reps[0]
}

func hasViolation(r Report, sub string) bool {
	for _, v := range r.Violations {
		if strings.Contains(v, sub) {
			return true
		}
	}
	return false
}

type rec struct {
	t   time.Time
	pkt []byte
}

func readAll(t *testing.T, pcap []byte) []rec {
	t.Helper()
	rd, err := pcapio.NewReader(bytes.NewReader(pcap))
	if err != nil {
		t.Fatal(err)
	}
	var out []rec
	for {
		p, err := rd.Next()
		if err != nil {
			break
		}
		out = append(out, rec{p.Time, slices.Clone(p.Data)})
	}
	return out
}

func clonePkts(in []rec) []rec {
	out := make([]rec, len(in))
	for i, r := range in {
		out[i] = rec{r.t, slices.Clone(r.pkt)}
	}
	return out
}

func writeAll(t *testing.T, pkts []rec) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapio.NewWriter(&buf, pcapio.LinkRaw, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		if err := w.WritePacket(p.t, p.pkt); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func payloadOf(r rec) []byte {
	pl, _ := enginetest.TCPPayload(r.pkt)
	return pl
}

func dstPort(r rec) uint16 {
	ihl := int(r.pkt[0]&0x0f) * 4
	if r.pkt[0]>>4 == 6 {
		ihl = 40
	}
	return uint16(r.pkt[ihl+2])<<8 | uint16(r.pkt[ihl+3])
}

var golden = flag.String("golden", "", "write a capture of two connections (fresh, then resumed, with rekeys) and its key log into this directory")

// TestWriteGolden makes the capture tcpcryptdump's command tests read
// (cmd/tcpcryptdump/testdata): go test -run TestWriteGolden -golden DIR.
func TestWriteGolden(t *testing.T) {
	if *golden == "" {
		t.Skip("no -golden directory")
	}
	clock := func() time.Time { return time.Unix(0, 0) }
	cfgA := engine.Config{Cache: crypto.NewCache(16, clock, 0), RekeyBytes: 8 << 10}
	cfgB := engine.Config{Cache: crypto.NewCache(16, clock, 0), RekeyBytes: 8 << 10}
	pcap, kl := runPair(t, setup{wire: enginetest.Config{MTU: 1500}, cfgA: cfgA, cfgB: cfgB}, func(ctx context.Context, p *enginetest.Pair) {
		for i := range 2 {
			if err := p.Bulk(ctx, false, uint16(443+i), 20000, 8000); err != nil {
				t.Fatal(err)
			}
		}
	})
	for i, r := range analyze(t, pcap, kl) {
		checkBulk(t, r, 20000, 8000)
		if r.Resumed != (i == 1) {
			t.Fatalf("connection %d resumed %v", i, r.Resumed)
		}
	}
	if err := os.WriteFile(filepath.Join(*golden, "two.pcap"), pcap, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*golden, "two.keylog"), []byte(kl), 0o644); err != nil {
		t.Fatal(err)
	}
}

// carriedElsewhere reports whether another captured segment in the same
// direction overlaps the sequence range of pkts[i].
func carriedElsewhere(pkts []rec, i int) bool {
	s0, n0 := seqOf(pkts[i]), uint32(len(payloadOf(pkts[i])))
	for j, p := range pkts {
		n := uint32(len(payloadOf(p)))
		if j == i || n == 0 || dstPort(p) != dstPort(pkts[i]) {
			continue
		}
		if d := seqOf(p) - s0; d < n0 || s0-seqOf(p) < n {
			return true
		}
	}
	return false
}

func seqOf(r rec) uint32 {
	ihl := int(r.pkt[0]&0x0f) * 4
	if r.pkt[0]>>4 == 6 {
		ihl = 40
	}
	return binary.BigEndian.Uint32(r.pkt[ihl+4:])
}

// TestRewrite: the rewritten capture of an impaired transfer carries the
// plaintext at consistent sequence numbers: reassembling each direction by
// sequence number gives exactly what was sent, every retransmission agrees,
// and no acknowledgment passes the other direction's plaintext (plus FIN).
func TestRewrite(t *testing.T) {
	const nAB, nBA = 150000, 40000
	imp := enginetest.Impairment{LossPct: 3, ReorderPct: 5, DupPct: 3, SplitPct: 10}
	wire := enginetest.Config{MTU: 1500, AToB: imp, BToA: imp}
	wire.A.MinRTO, wire.B.MinRTO = 20*time.Millisecond, 20*time.Millisecond
	pcap, kl := runPair(t, setup{wire: wire, cfgA: engine.Config{RekeyBytes: 32 << 10}}, func(ctx context.Context, p *enginetest.Pair) {
		if err := p.Bulk(ctx, false, 443, nAB, nBA); err != nil {
			t.Fatal(err)
		}
	})
	keys := NewKeyLog()
	if err := keys.Read(strings.NewReader(kl), "keylog", nil); err != nil {
		t.Fatal(err)
	}
	c := NewCapture()
	c.Keep = true
	if err := c.ReadCapture(bytes.NewReader(pcap)); err != nil {
		t.Fatal(err)
	}
	reps, err := c.Analyze(keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkBulk(t, one(t, reps), nAB, nBA)
	var out bytes.Buffer
	w, err := pcapio.NewWriter(&out, pcapio.LinkRaw, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Rewrite(w); err != nil {
		t.Fatal(err)
	}
	pkts := readAll(t, out.Bytes())
	if len(pkts) != len(readAll(t, pcap)) {
		t.Errorf("%d packets out of %d", len(pkts), len(readAll(t, pcap)))
	}
	// By destination port: 443 is A->B.
	isn := map[bool]uint32{}
	for _, p := range pkts {
		ihl := int(p.pkt[0]&0x0f) * 4
		if p.pkt[ihl+13]&0x02 != 0 {
			isn[dstPort(p) == 443] = seqOf(p)
		}
	}
	want := map[bool][]byte{true: enginetest.RandomBytes(1, nAB), false: enginetest.RandomBytes(2, nBA)}
	got := map[bool][]byte{true: make([]byte, nAB), false: make([]byte, nBA)}
	seen := map[bool]int{}
	for i, p := range pkts {
		ab := dstPort(p) == 443
		pl := payloadOf(p)
		off := int(seqOf(p) - isn[ab] - 1)
		if len(pl) > 0 {
			if off < 0 || off+len(pl) > len(want[ab]) {
				t.Fatalf("packet %d: %d bytes at plaintext offset %d of %d", i, len(pl), off, len(want[ab]))
			}
			if !bytes.Equal(pl, want[ab][off:off+len(pl)]) {
				t.Fatalf("packet %d: payload at offset %d is not the plaintext there", i, off)
			}
			copy(got[ab][off:], pl)
			seen[ab] += len(pl)
		}
		ihl := int(p.pkt[0]&0x0f) * 4
		if p.pkt[ihl+13]&0x10 != 0 && isn[!ab] != 0 {
			if a := binary.BigEndian.Uint32(p.pkt[ihl+8:]) - isn[!ab] - 1; int(a) > len(want[!ab])+1 {
				t.Fatalf("packet %d acknowledges plaintext offset %d of %d", i, a, len(want[!ab]))
			}
		}
	}
	for _, ab := range []bool{true, false} {
		if !bytes.Equal(got[ab], want[ab]) || seen[ab] < len(want[ab]) {
			t.Errorf("A->B %v: the rewritten payloads do not cover the plaintext (%d bytes seen)", ab, seen[ab])
		}
	}
}
