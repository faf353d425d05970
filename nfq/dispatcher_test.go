package nfq

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/nfq/nfqtest"
)

func TestVerdicts(t *testing.T) {
	replacement := []byte{0x45, 1, 2, 3}
	tests := []struct {
		name    string
		res     engine.Result
		verdict int
		packet  []byte
	}{
		{"accept", engine.Result{Verdict: engine.Accept}, nfqueue.NfAccept, nil},
		{"drop", engine.Result{Verdict: engine.Drop}, nfqueue.NfDrop, nil},
		{"replace", engine.Result{Verdict: engine.Replace, Packet: replacement}, nfqueue.NfAccept, replacement},
		{"replace without packet is dropped", engine.Result{Verdict: engine.Replace}, nfqueue.NfDrop, nil},
		{"unknown verdict is dropped", engine.Result{Verdict: 77}, nfqueue.NfDrop, nil},
		{"replacement too long for a verdict is dropped",
			engine.Result{Verdict: engine.Replace, Packet: make([]byte, engine.MaxPacket+1)}, nfqueue.NfDrop, nil},
		{"replacement of exactly MaxPacket bytes passes",
			engine.Result{Verdict: engine.Replace, Packet: make([]byte, engine.MaxPacket)}, nfqueue.NfAccept, make([]byte, engine.MaxPacket)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 1, script{process: func(*fakeEngine, []byte, engine.Dir) engine.Result { return tt.res }})
			pkt := tcpPkt(t, "10.0.0.1:1000", "10.0.0.2:80", 1, []byte("hi"))
			h.queues[0].Packet(42, HookLocalOut, pkt)
			v := h.verdict(0)
			if v.ID != 42 || v.Verdict != tt.verdict || !bytes.Equal(v.Packet, tt.packet) {
				t.Fatalf("verdict = %+v, want id 42 verdict %d packet %x", v, tt.verdict, tt.packet)
			}
			c := h.nextCall()
			if !bytes.Equal(c.pkt, pkt) || c.dir != engine.Outbound {
				t.Fatalf("engine saw %x dir %v, want %x outbound", c.pkt, c.dir, pkt)
			}
			if len(tt.res.Packet) > engine.MaxPacket {
				h.waitStats(func(s Stats) bool { return s.Oversized == 1 })
			}
		})
	}
}

func TestDirectionFromHook(t *testing.T) {
	h := newHarness(t, 1, script{})
	pkt := tcpPkt(t, "10.0.0.1:1000", "10.0.0.2:80", 1, nil)
	h.queues[0].Packet(1, HookLocalOut, pkt)
	h.queues[0].Packet(2, HookLocalIn, pkt)
	h.queues[0].Packet(3, HookForward, pkt)
	h.queues[0].Packet(4, HookPreRouting, pkt)
	for _, want := range []engine.Dir{engine.Outbound, engine.Inbound} {
		if c := h.nextCall(); c.dir != want {
			t.Errorf("dir = %v, want %v", c.dir, want)
		}
	}
	got := map[uint32]int{}
	for range 4 {
		v := h.verdict(0)
		got[v.ID] = v.Verdict
	}
	for id := uint32(1); id <= 4; id++ {
		if got[id] != nfqueue.NfAccept {
			t.Errorf("packet %d: verdict %d, want accept", id, got[id])
		}
	}
	s := h.waitStats(func(s Stats) bool { return s.UnknownHook == 2 })
	if s.PacketsOut != 1 || s.PacketsIn != 1 {
		t.Errorf("stats %+v: want 1 out, 1 in", s)
	}
	if n := len(h.rec.all()); n != 2 {
		t.Errorf("engine saw %d packets, want 2 (unknown hooks bypass it)", n)
	}
}

// TestOneEnginePerQueue sends interleaved segments of many flows, both
// directions and on two queues, and checks that each queue's segments go to
// that queue's engine, every flow's in order.
func TestOneEnginePerQueue(t *testing.T) {
	const flows, perFlow = 64, 20
	h := newHarness(t, 2, script{})
	var id uint32
	for n := range perFlow {
		for f := range flows {
			local := fmt.Sprintf("10.0.%d.1:%d", f%3, 1000+f)
			remote := "[2001:db8::1]:443"
			if f%2 == 0 {
				local = fmt.Sprintf("[2001:db8::%x]:%d", f, 1000+f)
			} else {
				remote = "10.9.9.9:443"
			}
			var pkt []byte
			hook := HookLocalOut
			if n%2 == 0 {
				pkt = tcpPkt(t, local, remote, uint32(f<<16|n), nil)
			} else {
				pkt = tcpPkt(t, remote, local, uint32(f<<16|n), nil)
				hook = HookLocalIn
			}
			id++
			h.queues[f%2].Packet(id, hook, pkt)
		}
	}
	h.waitStats(func(s Stats) bool { return s.Accepted == flows*perFlow })
	calls := h.rec.all()
	workerOf := map[int]int{}
	next := map[int]int{}
	used := map[int]bool{}
	for _, c := range calls {
		s := seqOf(c.pkt)
		f, n := int(s>>16), int(s&0xffff)
		if c.worker != f%2 {
			t.Fatalf("flow %d of queue %d processed by engine %d", f, f%2, c.worker)
		}
		if w, ok := workerOf[f]; ok && w != c.worker {
			t.Fatalf("flow %d on engines %d and %d", f, w, c.worker)
		}
		workerOf[f] = c.worker
		used[c.worker] = true
		if n != next[f] {
			t.Fatalf("flow %d: segment %d processed when %d was due", f, n, next[f])
		}
		next[f]++
		wantDir := engine.Outbound
		if n%2 == 1 {
			wantDir = engine.Inbound
		}
		if c.dir != wantDir {
			t.Fatalf("flow %d segment %d: dir %v", f, n, c.dir)
		}
	}
	if len(used) != 2 {
		t.Errorf("flows of two queues on %d engine(s)", len(used))
	}
}

func TestHoldThenRelease(t *testing.T) {
	newPkt := []byte{0x45, 0xee}
	h := newHarness(t, 1, script{process: func(e *fakeEngine, pkt []byte, dir engine.Dir) engine.Result {
		switch seqOf(pkt) {
		case 1:
			return engine.Result{Verdict: engine.Hold, Token: 7}
		case 2:
			return engine.Result{Verdict: engine.Hold, Token: 8}
		case 3: // settles both, then itself
			return engine.Result{Verdict: engine.Accept, Released: []engine.Release{
				{Token: 7, Verdict: engine.Replace, Packet: newPkt},
				{Token: 8, Verdict: engine.Drop},
			}}
		}
		return engine.Result{Verdict: engine.Accept}
	}})
	for i := uint32(1); i <= 3; i++ {
		h.queues[0].Packet(100+i, HookLocalOut, tcpPkt(t, "10.0.0.1:1000", "10.0.0.2:80", i, []byte("x")))
	}
	want := []nfqtest.Verdict{
		{ID: 101, Verdict: nfqueue.NfAccept, Packet: newPkt},
		{ID: 102, Verdict: nfqueue.NfDrop},
		{ID: 103, Verdict: nfqueue.NfAccept},
	}
	for i, w := range want {
		v := h.verdict(0)
		if v.ID != w.ID || v.Verdict != w.Verdict || !bytes.Equal(v.Packet, w.Packet) {
			t.Fatalf("verdict %d = %+v, want %+v", i, v, w)
		}
	}
	s := h.waitStats(func(s Stats) bool { return s.Released == 2 })
	if s.Held != 2 || s.HeldNow != 0 || s.Replaced != 1 || s.Dropped != 1 || s.Accepted != 1 || s.EngineBugs != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestTickAtDeadline holds a segment and releases it from Tick, which must
// run once the engine's deadline has passed, and not again without one.
func TestTickAtDeadline(t *testing.T) {
	const delay = 40 * time.Millisecond
	h := newHarness(t, 1, script{
		process: func(e *fakeEngine, pkt []byte, dir engine.Dir) engine.Result {
			e.deadline = time.Now().Add(delay)
			e.state["deadline"] = e.deadline
			return engine.Result{Verdict: engine.Hold, Token: 1}
		},
		tick: func(e *fakeEngine, now time.Time) engine.Result {
			e.deadline = time.Time{}
			return engine.Result{Released: []engine.Release{{Token: 1, Verdict: engine.Accept}}}
		},
	})
	h.queues[0].Packet(9, HookLocalIn, tcpPkt(t, "10.0.0.2:80", "10.0.0.1:1000", 1, []byte("x")))
	h.noVerdict(0, delay/2)
	if v := h.verdict(0); v.ID != 9 || v.Verdict != nfqueue.NfAccept {
		t.Fatalf("late verdict %+v", v)
	}
	var tick call
	for _, c := range h.rec.all() {
		if c.tick {
			tick = c
		}
	}
	proc := h.rec.all()[0]
	if tick.now.IsZero() || tick.now.Sub(proc.at) < delay {
		t.Fatalf("Tick(%v) ran %v after Process, want >= %v", tick.now, tick.now.Sub(proc.at), delay)
	}
	time.Sleep(3 * delay)
	if s := h.d.Stats(); s.Ticks != 1 {
		t.Errorf("Ticks = %d, want 1 (no deadline after the first)", s.Ticks)
	}
}

// TestStaleDeadline: an engine whose deadline does not move after Tick must
// not spin the worker.
func TestStaleDeadline(t *testing.T) {
	past := time.Now().Add(-time.Second)
	h := newHarness(t, 1, script{
		init: func(e *fakeEngine) { e.deadline = past },
		tick: func(e *fakeEngine, now time.Time) engine.Result { return engine.Result{} },
	})
	time.Sleep(50 * time.Millisecond)
	if n := h.d.Stats().Ticks; n < 2 || n > 100 {
		t.Errorf("Ticks = %d in 50ms with a stale deadline, want a few (1 ms re-arm)", n)
	}
}

func TestInjection(t *testing.T) {
	peer1, peer2, local := []byte{0x45, 1}, []byte{0x45, 2}, []byte{0x60, 3}
	h := newHarness(t, 1, script{
		process: func(e *fakeEngine, pkt []byte, dir engine.Dir) engine.Result {
			return engine.Result{Verdict: engine.Drop, ToPeer: [][]byte{peer1, peer2}, ToLocal: [][]byte{local}}
		},
	})
	h.queues[0].Packet(5, HookLocalIn, tcpPkt(t, "10.0.0.2:80", "10.0.0.1:1000", 1, nil))
	if v := h.verdict(0); v.ID != 5 || v.Verdict != nfqueue.NfDrop {
		t.Fatalf("verdict %+v", v)
	}
	for _, want := range [][]byte{peer1, peer2} {
		if got := <-h.inj.Peer(); !bytes.Equal(got, want) {
			t.Errorf("ToPeer %x, want %x", got, want)
		}
	}
	if got := <-h.inj.Local(); !bytes.Equal(got, local) {
		t.Errorf("ToLocal %x, want %x", got, local)
	}
	h.inj.SetError(errors.New("boom"))
	h.queues[0].Packet(6, HookLocalIn, tcpPkt(t, "10.0.0.2:80", "10.0.0.1:1000", 2, nil))
	s := h.waitStats(func(s Stats) bool { return s.InjectErrors == 3 })
	if s.InjectedToPeer != 2 || s.InjectedToLocal != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestShutdownDropsHeld: held segments get NF_DROP when Run ends.
func TestShutdownDropsHeld(t *testing.T) {
	h := newHarness(t, 2, script{process: func(e *fakeEngine, pkt []byte, dir engine.Dir) engine.Result {
		return engine.Result{Verdict: engine.Hold, Token: engine.Token(seqOf(pkt))}
	}})
	ids := map[uint32]bool{}
	for i := range uint32(6) {
		id := 1000 + i
		ids[id] = true
		h.queues[i%2].Packet(id, HookLocalOut, tcpPkt(t, fmt.Sprintf("10.0.0.1:%d", 2000+i), "10.0.0.2:80", i, []byte("p")))
	}
	h.waitStats(func(s Stats) bool { return s.HeldNow == 6 })
	h.noVerdict(0, 20*time.Millisecond)
	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for qi := range 2 {
		for {
			select {
			case v := <-h.queues[qi].Verdicts():
				if !ids[v.ID] || v.Verdict != nfqueue.NfDrop {
					t.Errorf("shutdown verdict %+v", v)
				}
				delete(ids, v.ID)
				continue
			default:
			}
			break
		}
	}
	if len(ids) != 0 {
		t.Errorf("held ids without a verdict: %v", ids)
	}
	if s := h.d.Stats(); s.ShutdownDrops != 6 || s.HeldNow != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestOddPackets: no panic, and the documented path for packets that are not
// well-formed TCP or arrive with odd attributes.
func TestOddPackets(t *testing.T) {
	h := newHarness(t, 1, script{process: func(e *fakeEngine, pkt []byte, dir engine.Dir) engine.Result {
		return engine.Result{Verdict: engine.Drop}
	}})
	good := tcpPkt(t, "10.0.0.1:1000", "10.0.0.2:80", 1, []byte("data"))
	icmp6 := make([]byte, 48)
	icmp6[0], icmp6[6] = 0x60, 58
	ext6 := make([]byte, 48)
	ext6[0], ext6[6] = 0x60, 0
	frag := append([]byte(nil), good...)
	frag[6] |= 0x20 // MF
	q := h.queues[0]
	tests := []struct {
		name    string
		id      uint32
		pkt     []byte
		verdict int
		engine  bool // handed to the queue's engine
	}{
		{"udp", 1, udp4(), nfqueue.NfAccept, false},
		{"icmpv6", 2, icmp6, nfqueue.NfAccept, false},
		{"empty", 3, []byte{}, nfqueue.NfDrop, true},
		{"truncated ipv4", 4, good[:10], nfqueue.NfDrop, true},
		{"truncated tcp", 5, good[:22], nfqueue.NfDrop, true},
		{"ipv6 ext header", 6, ext6, nfqueue.NfDrop, true},
		{"ipv4 fragment", 7, frag, nfqueue.NfDrop, true},
		{"version 5", 8, []byte{0x50, 0, 0, 0}, nfqueue.NfDrop, true},
	}
	for _, tt := range tests {
		q.Packet(tt.id, HookLocalOut, tt.pkt)
		v := h.verdict(0)
		if v.ID != tt.id || v.Verdict != tt.verdict {
			t.Errorf("%s: verdict %+v, want %d", tt.name, v, tt.verdict)
		}
		if tt.engine {
			if c := h.nextCall(); c.worker != 0 || !bytes.Equal(c.pkt, tt.pkt) {
				t.Errorf("%s: engine call on engine %d with %x", tt.name, c.worker, c.pkt)
			}
		}
	}
	// Messages without a packet header (no id: no verdict possible),
	// without a hook (0: PREROUTING, not ours), without a payload, and cut
	// short by the kernel (NFQA_CAP_LEN above the payload's length).
	id, hook := uint32(20), HookLocalOut
	q.Attribute(nfqueue.Attribute{Payload: &good})
	q.Attribute(nfqueue.Attribute{PacketID: &id, Payload: &good})
	id2 := uint32(21)
	q.Attribute(nfqueue.Attribute{PacketID: &id2, Hook: &hook})
	capLen := uint32(len(good) + 100)
	id3 := uint32(22)
	q.Attribute(nfqueue.Attribute{PacketID: &id3, Hook: &hook, Payload: &good, CapLen: &capLen})
	// Messages that do not parse, or are of a type no queue sends, and the
	// error reply to a verdict: counted, no verdict.
	q.Datagram([]byte{1, 2, 3})
	q.Datagram(append(nfqtest.EncodePacket(nfqueue.Attribute{PacketID: &id, Hook: &hook, Payload: &good})[:30], make([]byte, 8)...))
	q.Datagram(nfqtest.EncodeError(int32(unix.ENOENT)))
	for _, want := range []nfqtest.Verdict{{ID: 20, Verdict: nfqueue.NfAccept}, {ID: 21, Verdict: nfqueue.NfDrop}, {ID: 22, Verdict: nfqueue.NfDrop}} {
		if v := h.verdict(0); v.ID != want.ID || v.Verdict != want.Verdict {
			t.Errorf("verdict %+v, want %+v", v, want)
		}
	}
	s := h.waitStats(func(s Stats) bool { return s.RecvErrors == 1 })
	if s.NonTCP != 2 || s.ParseErrors != 7 || s.NoPacketID != 1 || s.UnknownHook != 1 || s.Truncated != 1 || s.BadMessages != 2 {
		t.Errorf("stats %+v", s)
	}
	h.noVerdict(0, 20*time.Millisecond)
}

// TestBatchedReceive: segments that wait while the engine is busy are read
// in one batch, each processed from its own receive buffer with its own
// bytes, and all get their verdicts.
func TestBatchedReceive(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, 1, script{process: func(e *fakeEngine, pkt []byte, dir engine.Dir) engine.Result {
		if _, ok := e.state["gated"]; !ok {
			e.state["gated"] = true
			<-gate // let more packets queue up meanwhile
		}
		return engine.Result{Verdict: engine.Accept}
	}})
	var pkts [][]byte
	for i := range uint32(5) {
		p := tcpPkt(t, "10.0.0.1:1000", "10.0.0.2:80", i, bytes.Repeat([]byte{byte(i)}, 100*int(i)))
		pkts = append(pkts, p)
		h.queues[0].Packet(i, HookLocalOut, p)
	}
	time.Sleep(20 * time.Millisecond)
	close(gate)
	for i, p := range pkts {
		if c := h.nextCall(); !bytes.Equal(c.pkt, p) {
			t.Fatalf("packet %d: engine saw %x, want %x", i, c.pkt, p)
		}
	}
	for i := range uint32(5) {
		if v := h.verdict(0); v.ID != i || v.Verdict != nfqueue.NfAccept {
			t.Errorf("verdict %+v, want %d accepted", v, i)
		}
	}
}

func TestEngineBugs(t *testing.T) {
	h := newHarness(t, 1, script{process: func(e *fakeEngine, pkt []byte, dir engine.Dir) engine.Result {
		switch seqOf(pkt) {
		case 1, 2: // the same token twice: the first segment must not leak
			return engine.Result{Verdict: engine.Hold, Token: 5}
		}
		return engine.Result{Verdict: engine.Accept, Released: []engine.Release{{Token: 99, Verdict: engine.Accept}, {Token: 5, Verdict: engine.Hold}}}
	}})
	for i := uint32(1); i <= 3; i++ {
		h.queues[0].Packet(i, HookLocalOut, tcpPkt(t, "10.0.0.1:1000", "10.0.0.2:80", i, nil))
	}
	for _, w := range []nfqtest.Verdict{{ID: 1, Verdict: nfqueue.NfDrop}, {ID: 2, Verdict: nfqueue.NfDrop}, {ID: 3, Verdict: nfqueue.NfAccept}} {
		if v := h.verdict(0); v.ID != w.ID || v.Verdict != w.Verdict {
			t.Errorf("verdict %+v, want %+v", v, w)
		}
	}
	if s := h.waitStats(func(s Stats) bool { return s.EngineBugs == 3 }); s.HeldNow != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestReceiveErrors(t *testing.T) {
	h := newHarness(t, 1, script{})
	q := h.queues[0]
	enobufs := &netlink.OpError{Op: "receive", Err: unix.ENOBUFS}
	q.Error(enobufs)
	q.Error(enobufs)
	q.Error(&netlink.OpError{Op: "receive", Err: unix.ENOENT})
	q.Packet(1, HookLocalOut, tcpPkt(t, "10.0.0.1:1000", "10.0.0.2:80", 1, nil))
	if v := h.verdict(0); v.ID != 1 {
		t.Fatalf("reader stopped after errors: %+v", v)
	}
	s := h.d.Stats()
	if s.ENOBUFS != 2 || s.RecvErrors != 1 {
		t.Errorf("stats %+v", s)
	}
	// A closed socket ends Run with ErrQueueClosed.
	q.Error(&netlink.OpError{Op: "receive", Err: net.ErrClosed})
	select {
	case err := <-h.done:
		h.done <- err // for stop
		if !errors.Is(err, ErrQueueClosed) {
			t.Fatalf("Run = %v, want ErrQueueClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Run did not stop on a closed queue")
	}
	if err := h.stop(); !errors.Is(err, ErrQueueClosed) {
		t.Fatalf("stop = %v", err)
	}
}

func TestInspect(t *testing.T) {
	h := newHarness(t, 3, script{})
	seen := map[int]bool{}
	err := h.d.Inspect(t.Context(), func(w int, e Engine) {
		if fe := e.(*fakeEngine); fe.worker != w {
			t.Errorf("queue %d got engine of %d", w, fe.worker)
		}
		seen[w] = true
	})
	if err != nil || len(seen) != 3 {
		t.Fatalf("Inspect = %v, saw %v", err, seen)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if err := h.d.Inspect(t.Context(), func(int, Engine) {}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Inspect after Run = %v, want ErrNotRunning", err)
	}
	if err := h.d.Run(t.Context()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
}

func TestNewErrors(t *testing.T) {
	eng := func(int) (Engine, error) { return &fakeEngine{rec: newRecorder()}, nil }
	q := []Queue{nfqtest.NewQueue(1)}
	inj := nfqtest.NewInjector(1)
	tests := []struct {
		name   string
		cfg    Config
		queues []Queue
		inj    Injector
	}{
		{"no engine", Config{}, q, inj},
		{"no queues", Config{NewEngine: eng}, nil, inj},
		{"no injector", Config{NewEngine: eng}, q, nil},
		{"same marks", Config{NewEngine: eng, Mark: 5, PeerMark: 5}, q, inj},
		{"queue overflow", Config{NewEngine: eng, QueueNum: 0xffff}, []Queue{nfqtest.NewQueue(1), nfqtest.NewQueue(1)}, inj},
		{"engine error", Config{NewEngine: func(int) (Engine, error) { return nil, errors.New("no") }}, q, inj},
		{"nil engine", Config{NewEngine: func(int) (Engine, error) { return nil, nil }}, q, inj},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg, tt.queues, tt.inj); err == nil {
			t.Errorf("%s: New succeeded", tt.name)
		}
	}
	d, err := New(Config{NewEngine: eng}, q, inj)
	if err != nil {
		t.Fatal(err)
	}
	if d.cfg.QueueCount != 1 || d.Engines() != 1 || d.cfg.MaxQueueLen != DefaultMaxQueueLen {
		t.Errorf("defaults: %d queues, %d engines, queue length %d", d.cfg.QueueCount, d.Engines(), d.cfg.MaxQueueLen)
	}
	if err := d.Close(); err != nil {
		t.Error(err)
	}
}

func TestParseQueueRange(t *testing.T) {
	tests := []struct {
		in           string
		first, count uint16
		ok           bool
	}{
		{"7463", 7463, 1, true},
		{"0", 0, 1, true},
		{"7463-7466", 7463, 4, true},
		{"10:12", 10, 3, true},
		{" 5 - 5 ", 5, 1, true},
		{"65535", 65535, 1, true},
		{"1-65535", 1, 65535, true},
		{"0-65535", 0, 0, false},
		{"65536", 0, 0, false},
		{"7-3", 0, 0, false},
		{"", 0, 0, false},
		{"a-b", 0, 0, false},
		{"1-", 0, 0, false},
		{"-1", 0, 0, false},
	}
	for _, tt := range tests {
		f, c, err := ParseQueueRange(tt.in)
		if tt.ok != (err == nil) || f != tt.first || c != tt.count {
			t.Errorf("ParseQueueRange(%q) = %d, %d, %v", tt.in, f, c, err)
		}
		if err != nil && !errors.Is(err, ErrQueueRange) {
			t.Errorf("ParseQueueRange(%q): error %v is not ErrQueueRange", tt.in, err)
		}
	}
}
