package engine

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// FuzzSession drives two engines joined by a wire, after a real tcpcrypt
// handshake, with a sequence of operations decoded from the input: the two
// local stacks send data, ACKs, FINs and RSTs (in order, overlapping,
// with holes, retransmitted); the wire delivers, reorders, duplicates,
// splits, coalesces and tampers with the engines' segments in both
// directions; time advances and the engines' timers run.
//
// The handshakes (and so every key agreement) run once per process for each
// template (TEP x AEAD x IP version x starting point, chosen by the first
// input byte); every input starts from deep copies of the template's engines
// (cloneEngine), so the per-input path holds no public-key operation. A
// template starts either established or in the key exchange (Init2 on the
// wire, not yet delivered).
//
// After every engine call it checks: every packet emitted parses and has
// valid checksums and fits MaxPacket; flow, buffer and held bounds (those
// of checkInvariants); released tokens are ones the engine gave; every
// byte handed to a local stack is a byte the other local stack sent, at the
// offset it sent it (so no unauthenticated or tampered byte, and no
// ciphertext, reaches a local stack), and a FIN handed over is one the
// other stack sent; a data segment of the local stack on an encrypted flow
// never leaves in plaintext (never Accepted, never copied into the wire
// payload).
func FuzzSession(f *testing.F) {
	for _, s := range sessionSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		runSession(t, in)
	})
}

// Input layout: config byte, then operations until the input ends or
// fzMaxOps ran.
//
//	config: bits 0-1 TEP (X25519, P-256, X448, P-521), bits 2-3 AEAD,
//	        bit 4 IPv6, bits 5-6 RekeyBytes (0, 300, 5000, 1), bit 7 start
//	        in the key exchange: B has answered Init1, its Init2 is on the
//	        wire toward A (not delivered) and A has no keys yet (then only
//	        X25519 or P-256, bit 0)
//	op:     bit 0 side (0 client, 1 server), bits 1-7 kind (mod opKinds)
const (
	opSend    = iota // len, mode/flags, arg: the local stack sends data (or FIN/URG)
	opAck            // wnd, mode, arg: the local stack sends a pure ACK
	opRST            // arg: the local stack resets
	opDeliver        // the next segment on the wire toward the peer arrives
	opMutate         // pick, kind, a, b: an old or pending wire segment arrives altered
	opTime           // dt: the clock advances; both engines' timers run
	opFlush          // both wires drain; the stacks ACK what they received
	opSYN            // the local stack resends its SYN (client) or SYN-ACK (server)
	opDrop           // the next wire segment is lost
	opKinds
)

const (
	fzMaxOps   = 200
	fzWireKeep = 48 // wire segments kept per direction for replays
	fzMaxFlush = 24 // rounds of opFlush
	// fzSendBudget bounds the payload bytes of one input's sends, and with
	// them the time an input takes (the fuzzer minimizes every input that
	// finds new coverage, with thousands of runs of it).
	fzSendBudget = 256 << 10
)

var fzTEPs = [4]uint8{crypto.TEPX25519, crypto.TEPP256, crypto.TEPX448, crypto.TEPP521}
var fzAEADs = [4]crypto.AEADID{crypto.AES128GCM, crypto.ChaCha20Poly1305, crypto.AES256GCM, crypto.AES128GCM}
var fzRekey = [4]uint64{0, 300, 5000, 1}

// sessionTemplate is a pair of engines after a handshake (or in the key
// exchange).
type sessionTemplate struct {
	a, b     *Engine
	now      time.Time
	cli, srv netip.AddrPort
	wireB    [][]byte // segments of B's engine on the wire, not yet delivered
}

var (
	templateMu sync.Mutex
	templates  = map[int]*sessionTemplate{}
)

// processTemplate is the key of FuzzProcess's template (fuzzConfig as is).
const processTemplate = 0x100

// template returns the established engines for config byte cfg (its bits
// 0-4), making them on first use.
func template(t *testing.T, cfg byte) *sessionTemplate {
	key := int(cfg & 0x9f)
	if key&0x80 != 0 {
		// The key exchange templates run A's key agreement per input:
		// X25519 or P-256 only (P-521 and X448 cost up to 100 ms each with
		// coverage instrumentation).
		key &^= 0x02
	}
	return cachedTemplate(t, key)
}

func cachedTemplate(t *testing.T, key int) *sessionTemplate {
	templateMu.Lock()
	defer templateMu.Unlock()
	if tp := templates[key]; tp != nil {
		return tp
	}
	tp := makeTemplate(t, key)
	templates[key] = tp
	return tp
}

// makeTemplate runs the handshake for config byte cfg, or with fuzzConfig
// unchanged for processTemplate.
func makeTemplate(t *testing.T, cfg int) *sessionTemplate {
	c := fuzzConfig()
	if cfg != processTemplate {
		c.TEPs = []uint8{fzTEPs[cfg&3]}
		c.AEADs = []crypto.AEADID{fzAEADs[cfg>>2&3]}
	}
	s := newScript(t, c, c)
	if cfg&0x10 != 0 && cfg != processTemplate {
		s.v6()
	}
	if cfg&0x80 != 0 && cfg != processTemplate {
		init2 := s.handshakeUntilInit2()
		return &sessionTemplate{a: s.a, b: s.b, now: s.now, cli: s.cli, srv: s.srv, wireB: [][]byte{init2}}
	}
	s.handshake()
	if fi := s.a.Snapshot(); len(fi) != 1 || fi[0].State != StateEstablished {
		t.Fatalf("client after the handshake of template %#x: %+v", cfg, fi)
	}
	return &sessionTemplate{a: s.a, b: s.b, now: s.now, cli: s.cli, srv: s.srv}
}

// fzStack is one local TCP stack as the fuzzer plays it, with its engine.
type fzStack struct {
	name      string
	e         *Engine
	src, dst  netip.AddrPort // the stack's endpoint and the peer's
	isn       seq.Value      // this stack's ISN
	peerISN   seq.Value
	pat       int             // which fzPat its stream is
	sent      uint64          // P bytes of this stack's stream it ever sent
	fins      map[uint64]bool // offsets at which it sent a FIN
	rcvd      uint64          // the peer's bytes received in order
	rcvFin    bool
	ackedRcvd uint64   // rcvd at its last ACK
	engAck    uint64   // the last P ack the engine gave this stack
	wire      [][]byte // what its engine sent toward the peer, oldest first
	next      int      // first wire segment not yet delivered
	held      map[Token]heldAt
	flow      *flow // the session's flow in e
	ts        uint32
}

type session struct {
	t    *testing.T
	now  time.Time
	st   [2]*fzStack
	in   []byte
	sent int // payload bytes the stacks sent, against fzSendBudget
}

func (s *session) byte() byte {
	if len(s.in) == 0 {
		return 0
	}
	b := s.in[0]
	s.in = s.in[1:]
	return b
}

// The plaintext of a stack's stream: byte o is fzPat[salt][o % fzPatLen].
// The period is no power of two, and long, so a byte moved to another
// offset almost never still matches; the table makes filling and checking
// segments memmove and memequal, not per-byte (instrumented) loops.
const fzPatLen = 1<<20 - 3

var fzPat = func() (p [2][]byte) {
	for k := range p {
		p[k] = make([]byte, fzPatLen)
		for o := range p[k] {
			p[k][o] = byte((uint64(o)*2654435761)>>11) ^ byte(o) ^ byte(0x5a+k*0x69)
		}
	}
	return p
}()

// fillPat writes the stream bytes at offset off of pattern k into b.
func fillPat(k int, b []byte, off uint64) {
	for len(b) > 0 {
		i := int(off % fzPatLen)
		n := copy(b, fzPat[k][i:])
		b, off = b[n:], off+uint64(n)
	}
}

// matchPat reports whether b holds the stream bytes at offset off of
// pattern k.
func matchPat(k int, b []byte, off uint64) bool {
	for len(b) > 0 {
		i := int(off % fzPatLen)
		n := min(len(b), fzPatLen-i)
		if !bytes.Equal(b[:n], fzPat[k][i:i+n]) {
			return false
		}
		b, off = b[n:], off+uint64(n)
	}
	return true
}

func runSession(t *testing.T, in []byte) *session {
	s := newSession(t, in)
	if s == nil {
		return nil
	}
	s.finish()
	return s
}

// finish runs the operations, drains the wires and lets the flows linger
// out.
func (s *session) finish() {
	s.run()
	s.flush()
	s.now = s.now.Add(45 * time.Second)
	s.tick()
}

// newSession starts a session from copies of the template engines for the
// input's config byte.
func newSession(t *testing.T, in []byte) *session {
	if len(in) == 0 {
		return nil
	}
	return sessionOn(t, in, template(t, in[0]), true)
}

// sessionOn starts a session on the engines of tp: copies of them, or
// (copy false, for tests of cloneEngine) the engines themselves.
func sessionOn(t *testing.T, in []byte, tp *sessionTemplate, copy bool) *session {
	cfg := in[0]
	s := &session{t: t, now: tp.now, in: in[1:]}
	clock := func() time.Time { return s.now }
	a, b := tp.a, tp.b
	if copy {
		a = cloneEngine(tp.a, clock, newRand(3))
		b = cloneEngine(tp.b, clock, newRand(4))
	} else {
		a.cfg.Now, a.cfg.Rand = clock, newRand(3)
		b.cfg.Now, b.cfg.Rand = clock, newRand(4)
	}
	for _, e := range []*Engine{a, b} {
		e.cfg.RekeyBytes = fzRekey[cfg>>5&3]
		// A new connection (a SYN after the session's flow died) agrees
		// on X25519, whatever the template's TEP, to keep slow key
		// agreements off the per-input path.
		e.cfg.TEPs = []uint8{crypto.TEPX25519}
		e.enoCfg.TEPs = []uint8{crypto.TEPX25519}
	}
	s.st[0] = &fzStack{name: "client", e: a, src: tp.cli, dst: tp.srv, isn: cISN, peerISN: sISN, pat: 0,
		fins: map[uint64]bool{}, held: map[Token]heldAt{}}
	s.st[1] = &fzStack{name: "server", e: b, src: tp.srv, dst: tp.cli, isn: sISN, peerISN: cISN, pat: 1,
		fins: map[uint64]bool{}, held: map[Token]heldAt{}}
	for _, b := range tp.wireB {
		s.st[1].wire = append(s.st[1].wire, bytes.Clone(b))
	}
	for _, x := range s.st {
		x.flow = x.e.tab.flows[flowKey{local: x.src, remote: x.dst}]
		if x.flow == nil {
			t.Fatalf("%s: no flow in the template", x.name)
		}
	}
	return s
}

// run decodes and applies the operations.
func (s *session) run() {
	for n := 0; n < fzMaxOps && len(s.in) > 0; n++ {
		op := s.byte()
		x := s.st[op&1]
		y := s.st[1-op&1]
		switch int(op>>1) % opKinds {
		case opSend:
			s.send(x)
		case opAck:
			s.pureAck(x)
		case opRST:
			s.rst(x)
		case opDeliver:
			if x.next < len(x.wire) {
				x.next++
				s.deliver(y, x.wire[x.next-1])
			}
		case opMutate:
			s.mutate(x, y)
		case opTime:
			s.advance()
		case opFlush:
			s.flush()
		case opSYN:
			s.syn(x)
		case opDrop:
			if x.next < len(x.wire) {
				x.next++
			}
		}
	}
}

// fzTrace logs every engine call of FuzzSession (ENGINE_FUZZ_TRACE=1), to
// read what a failing input does.
var fzTrace = os.Getenv("ENGINE_FUZZ_TRACE") == "1"

func (s *session) logf(format string, args ...any) {
	if fzTrace {
		s.t.Logf(format, args...)
	}
}

func resultSummary(r Result) string {
	out := r.Verdict.String()
	if r.Verdict == Replace {
		out += " " + summary(r.Packet)
	}
	for _, b := range r.ToPeer {
		out += " | peer " + summary(b)
	}
	for _, b := range r.ToLocal {
		out += " | local " + summary(b)
	}
	for _, rel := range r.Released {
		out += fmt.Sprintf(" | released %d %v", rel.Token, rel.Verdict)
	}
	return out
}

func (s *session) fatalf(format string, args ...any) {
	s.t.Fatalf(format, args...)
}

// segment builds a segment of stack x.
func (s *session) segment(x *fzStack, off int64, ack seq.Value, flags uint8, wnd uint16, urg uint16, extra []byte, payload []byte) []byte {
	var ob packet.OptionBuilder
	x.ts++
	var ts [8]byte
	putU32(ts[:], x.ts)
	putU32(ts[4:], 1)
	_ = ob.Add(packet.OptTimestamps, ts[:])
	if len(extra) > 0 {
		_ = ob.Add(packet.OptSACK, extra)
	}
	b, err := packet.Build(nil, &packet.Fields{Src: x.src, Dst: x.dst, Seq: seqAt(x.isn, off), Ack: ack,
		Flags: flags, Window: wnd, Urgent: urg, Options: ob.Bytes(), Payload: payload})
	if err != nil {
		s.fatalf("build: %v", err)
	}
	return b
}

// ackValue is the stack's cumulative ack of the peer's stream.
func (x *fzStack) ackValue() seq.Value {
	v := seqAt(x.peerISN, int64(x.rcvd))
	if x.rcvFin {
		v = v.Add(1)
	}
	return v
}

func (s *session) send(x *fzStack) {
	lc, mode, arg := s.byte(), s.byte(), s.byte()
	n := int(lc)
	switch {
	case lc >= 240:
		n = min(int(lc-239)*4096, 65000)
	case lc >= 128:
		n = int(lc-128) * 61
	}
	n = min(n, fzSendBudget-s.sent)
	s.sent += n
	var off int64
	switch mode & 7 {
	case 0:
		off = int64(x.sent)
	case 1:
		off = int64(x.sent) - int64(n)
	case 2:
		off = int64(x.sent) - int64(n/2)
	case 3:
		off = int64(x.sent) + int64(arg) + 1 // a hole before it
	case 4:
		off = int64(x.engAck)
	case 5:
		off = int64(x.engAck) - 1 // a keep-alive with a garbage byte
	case 6:
		off = int64(arg) * 97
	case 7:
		off = int64(x.sent) - int64(arg)*13
	}
	off = max(off, 0)
	flags := packet.FlagACK
	if mode&8 != 0 {
		flags |= packet.FlagFIN
	}
	if mode&16 != 0 {
		flags |= packet.FlagPSH
	}
	var urg uint16
	if mode&32 != 0 {
		flags |= packet.FlagURG
		urg = uint16(arg) + 1
	}
	if mode&64 != 0 {
		flags &^= packet.FlagACK
	}
	ack := x.ackValue()
	if mode&128 != 0 {
		ack = ack.Add(seq.Size(int32(int8(arg)) * 50))
	}
	payload := make([]byte, n)
	fillPat(x.pat, payload, uint64(off))
	pkt := s.segment(x, off, ack, flags, 1000, urg, nil, payload)
	x.sent = max(x.sent, uint64(off)+uint64(n))
	if flags&packet.FlagFIN != 0 {
		x.fins[uint64(off)+uint64(n)] = true
	}
	s.outbound(x, pkt, payload)
}

func (s *session) pureAck(x *fzStack) {
	wnd, mode, arg := s.byte(), s.byte(), s.byte()
	ack := x.ackValue()
	switch mode & 3 {
	case 1:
		ack = ack.Add(seq.Size(int32(int8(arg))))
	case 2:
		ack = seqAt(x.peerISN, int64(arg)*211)
	}
	var sack []byte
	if mode&4 != 0 {
		sack = make([]byte, 8)
		putU32(sack, uint32(ack.Add(seq.Size(arg)*7)))
		putU32(sack[4:], uint32(ack.Add(seq.Size(arg)*7+seq.Size(mode>>3)*33)))
	}
	off := int64(x.sent)
	if mode&0x80 != 0 {
		off-- // a keep-alive
	}
	s.outbound(x, s.segment(x, off, ack, packet.FlagACK, uint16(wnd)<<4, 0, sack, nil), nil)
	x.ackedRcvd = x.rcvd
}

func (s *session) rst(x *fzStack) {
	arg := s.byte()
	off := int64(x.sent) + int64(int8(arg))
	flags := packet.FlagRST
	if arg&1 != 0 {
		flags |= packet.FlagACK
	}
	s.outbound(x, s.segment(x, off, x.ackValue(), flags, 0, 0, nil, nil), nil)
}

func (s *session) syn(x *fzStack) {
	if x.name == "client" {
		s.outbound(x, s.segment(x, -1, 0, packet.FlagSYN, 1000, 0, nil, nil), nil)
		return
	}
	s.outbound(x, s.segment(x, -1, seqAt(x.peerISN, -1).Add(1), packet.FlagSYN|packet.FlagACK, 2000, 0, nil, nil), nil)
}

// original reports whether x's engine tracks the flow of the session the
// template set up (not a new connection a SYN started after the old flow was
// forgotten), and its state: the checks apply to that flow only.
func (x *fzStack) original() (State, bool) {
	f := x.e.tab.flows[flowKey{local: x.src, remote: x.dst}]
	if f == nil {
		return 0, false
	}
	return f.state, f == x.flow
}

// outbound hands the segment of x's local stack to its engine. payload is
// the plaintext it carries.
func (s *session) outbound(x *fzStack, pkt, payload []byte) {
	st, ok := x.original()
	r := x.e.Process(pkt, Outbound)
	if fzTrace {
		s.logf("%s out %s -> %s", x.name, summary(pkt), resultSummary(r))
	}
	s.check(x, r)
	r = owned(x.e, r)
	_, after := x.original()
	orig := after || ok && !st.dead()
	if orig && len(payload) > 0 {
		if r.Verdict == Accept {
			s.fatalf("%s: %d plaintext bytes passed to the wire (state %v)", x.name, len(payload), st)
		}
		if r.Verdict == Replace && len(payload) >= 16 {
			var p packet.Packet
			if packet.Parse(r.Packet, &p) == nil && bytes.Contains(p.Payload(), payload[:16]) {
				s.fatalf("%s: plaintext in the wire payload", x.name)
			}
		}
	}
	switch r.Verdict {
	case Accept:
		s.toWire(x, pkt)
	case Replace:
		s.toWire(x, r.Packet)
	case Hold:
		x.held[r.Token] = heldAt{dir: Outbound, pkt: bytes.Clone(pkt)}
	}
	s.rest(x, r, orig)
}

// deliver hands a wire segment to y's engine as inbound.
func (s *session) deliver(y *fzStack, pkt []byte) {
	if pkt == nil {
		return
	}
	st, ok := y.original()
	r := y.e.Process(pkt, Inbound)
	if fzTrace {
		s.logf("%s in %s -> %s", y.name, summary(pkt), resultSummary(r))
	}
	s.check(y, r)
	r = owned(y.e, r)
	_, after := y.original()
	// A SYN with a new ISN on a dead flow starts a new connection: its
	// packets are not the session's.
	orig := after || ok && !st.dead()
	switch r.Verdict {
	case Accept:
		s.toLocal(y, pkt, orig)
	case Replace:
		s.toLocal(y, r.Packet, orig)
	case Hold:
		y.held[r.Token] = heldAt{dir: Inbound, pkt: bytes.Clone(pkt)}
	}
	s.rest(y, r, orig)
}

// owned returns r with copies of its packets, and poisons and recycles the
// engine's (as the daemon recycles them once sent): a retransmission copy
// or later packet that still aliased a recycled buffer would show as
// corrupted bytes on the wire or at the stacks.
func owned(e *Engine, r Result) Result {
	own := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		c := bytes.Clone(b)
		full := b[:cap(b)]
		for i := range full {
			full[i] = 0x5a
		}
		e.Recycle(b)
		return c
	}
	if r.Verdict == Replace {
		r.Packet = own(r.Packet)
	}
	peer, local := make([][]byte, len(r.ToPeer)), make([][]byte, len(r.ToLocal))
	for i, b := range r.ToPeer {
		peer[i] = own(b)
	}
	for i, b := range r.ToLocal {
		local[i] = own(b)
	}
	r.ToPeer, r.ToLocal = peer, local
	for i := range r.Released {
		if r.Released[i].Verdict == Replace {
			r.Released[i].Packet = own(r.Released[i].Packet)
		}
	}
	return r
}

// rest routes a Result's injected and released packets; orig says
// whether the session's flow was tracked before or after the call.
func (s *session) rest(x *fzStack, r Result, orig bool) {
	for _, b := range r.ToPeer {
		s.toWire(x, b)
	}
	for _, b := range r.ToLocal {
		s.toLocal(x, b, orig)
	}
	for _, rel := range r.Released {
		h, ok := x.held[rel.Token]
		if !ok {
			s.fatalf("%s: released unknown token %d", x.name, rel.Token)
		}
		delete(x.held, rel.Token)
		pkt := h.pkt
		switch rel.Verdict {
		case Drop:
			continue
		case Replace:
			pkt = rel.Packet
		case Accept:
			var p packet.Packet
			if orig && h.dir == Outbound && packet.Parse(pkt, &p) == nil && len(p.Payload()) > 0 {
				s.fatalf("%s: a held data segment was released in plaintext", x.name)
			}
		}
		if h.dir == Outbound {
			s.toWire(x, pkt)
		} else {
			s.toLocal(x, pkt, orig)
		}
	}
}

// check verifies the bounds and the packets of a Result (checkInvariants,
// without its t.Helper, which costs more than the check on this path).
func (s *session) check(x *fzStack, r Result) {
	e := x.e
	if n := e.NumFlows(); n > fuzzMaxFlows {
		s.fatalf("%s: %d flows, cap %d", x.name, n, fuzzMaxFlows)
	}
	if b, lim := e.BufferedBytes(), fuzzMaxFlows*fzPerFlow; b > lim {
		s.fatalf("%s: %d bytes buffered, bound %d", x.name, b, lim)
	}
	if h := e.HeldBytes(); h > e.cfg.MaxHeldTotal {
		s.fatalf("%s: %d bytes held", x.name, h)
	}
	if r.Verdict == Hold && r.Token == 0 {
		s.fatalf("%s: hold without a token", x.name)
	}
	if r.Verdict == Replace {
		s.wellFormed(x, r.Packet)
	}
	for _, b := range r.ToPeer {
		s.wellFormed(x, b)
	}
	for _, b := range r.ToLocal {
		s.wellFormed(x, b)
	}
	for _, rel := range r.Released {
		if rel.Verdict == Replace {
			s.wellFormed(x, rel.Packet)
		}
	}
}

// fzPerFlow bounds the stream buffers of one flow under fuzzConfig, as
// checkInvariants does.
const fzPerFlow = 2*minFlowBuffer + sendBufferFactor*minFlowBuffer + 8<<10 + 2*maxPacket

func (s *session) wellFormed(x *fzStack, b []byte) {
	var p packet.Packet
	if err := packet.Parse(b, &p); err != nil {
		s.fatalf("%s: engine emitted a packet that does not parse: %v", x.name, err)
	}
	if len(b) > MaxPacket {
		s.fatalf("%s: engine emitted a packet of %d bytes", x.name, len(b))
	}
	if !p.VerifyTCPChecksum() || !p.VerifyIPChecksum() {
		s.fatalf("%s: engine emitted a packet with a bad checksum: %s", x.name, summary(b))
	}
}

func (s *session) toWire(x *fzStack, pkt []byte) {
	x.wire = append(x.wire, pkt)
	if len(x.wire) > fzWireKeep {
		d := len(x.wire) - fzWireKeep
		x.wire = append(x.wire[:0], x.wire[d:]...)
		x.next = max(0, x.next-d)
	}
}

// toLocal checks a packet handed to x's local stack and lets the stack
// take it. orig says whether it belongs to the session's flow; other
// packets (of a later plain connection on the same ports) are not checked.
func (s *session) toLocal(x *fzStack, pkt []byte, orig bool) {
	var p packet.Packet
	if err := packet.Parse(pkt, &p); err != nil {
		s.fatalf("%s: packet to the local stack does not parse: %v", x.name, err)
	}
	if !orig || p.SrcAddrPort() != x.dst || p.DstAddrPort() != x.src {
		return // not this connection
	}
	y := s.peerOf(x)
	fl := p.TCP.Flags()
	if fl&packet.FlagRST != 0 {
		return
	}
	o := int64(int32(p.TCP.Seq().Diff(seqAt(x.peerISN, 0))))
	data := p.Payload()
	if fl&packet.FlagSYN != 0 {
		if len(data) > 0 {
			s.fatalf("%s: SYN with %d bytes to the local stack", x.name, len(data))
		}
		return
	}
	if len(data) > 0 {
		if o < 0 || uint64(o)+uint64(len(data)) > y.sent {
			s.fatalf("%s: local stack got %d bytes at offset %d; the peer sent %d", x.name, len(data), o, y.sent)
		}
		if !matchPat(y.pat, data, uint64(o)) {
			s.fatalf("%s: local stack got %d bytes at offset %d that the peer never sent there", x.name, len(data), o)
		}
	}
	end := uint64(max(o, 0)) + uint64(len(data))
	if fl&packet.FlagFIN != 0 && !y.fins[end] {
		s.fatalf("%s: local stack got a FIN at offset %d; the peer sent FINs at %v", x.name, end, y.fins)
	}
	if o >= 0 && uint64(o) <= x.rcvd && end > x.rcvd {
		x.rcvd = end
	}
	if fl&packet.FlagFIN != 0 && end == x.rcvd {
		x.rcvFin = true
	}
	if fl&packet.FlagACK != 0 {
		if a := int64(int32(p.TCP.Ack().Diff(seqAt(x.isn, 0)))); a >= 0 {
			x.engAck = uint64(a)
		}
	}
}

func (s *session) peerOf(x *fzStack) *fzStack {
	if x == s.st[0] {
		return s.st[1]
	}
	return s.st[0]
}

// advance moves the clock by a quadratic step (0 .. ~65 s; 255: past the
// idle timeout) and runs both engines' timers.
func (s *session) advance() {
	b := s.byte()
	d := time.Duration(b) * time.Duration(b) * time.Millisecond
	if b == 255 {
		d = defaultIdle + time.Second
	}
	s.now = s.now.Add(d)
	s.tick()
}

func (s *session) tick() {
	for _, x := range s.st {
		_, ok := x.original()
		r := x.e.Tick(s.now)
		if fzTrace {
			s.logf("%s tick %s -> %s", x.name, s.now.Format("04:05.000"), resultSummary(r))
		}
		s.check(x, r)
		r = owned(x.e, r)
		_, after := x.original()
		s.rest(x, r, ok || after)
	}
}

// flush delivers every pending wire segment both ways, and lets each stack
// ACK what it newly received, for a bounded number of rounds.
func (s *session) flush() {
	for round := 0; round < fzMaxFlush; round++ {
		moved := false
		for i, x := range s.st {
			y := s.st[1-i]
			for x.next < len(x.wire) {
				x.next++
				s.deliver(y, x.wire[x.next-1])
				moved = true
			}
		}
		for _, x := range s.st {
			if x.rcvd != x.ackedRcvd || x.rcvFin {
				x.ackedRcvd = x.rcvd
				before := len(x.wire)
				s.outbound(x, s.segment(x, int64(x.sent), x.ackValue(), packet.FlagACK, 1000, 0, nil, nil), nil)
				moved = moved || len(x.wire) > before && !x.rcvFin
			}
		}
		if !moved {
			return
		}
	}
}

// mutate delivers to y an altered copy of one of x's wire segments.
func (s *session) mutate(x, y *fzStack) {
	pick, kind, a, b := s.byte(), s.byte(), s.byte(), s.byte()
	if len(x.wire) == 0 {
		return
	}
	// Pending segments first, then the most recent delivered ones.
	i := x.next + int(pick)
	if i >= len(x.wire) {
		i = len(x.wire) - 1 - (int(pick) % len(x.wire))
	}
	if i == x.next {
		x.next++
	}
	var p packet.Packet
	orig := bytes.Clone(x.wire[i])
	if packet.Parse(orig, &p) != nil {
		s.deliver(y, orig)
		return
	}
	payload := bytes.Clone(p.Payload())
	opts := bytes.Clone(p.TCP.Options())
	scale := [4]seq.Size{1, 21, 1400, 1 << 31}[b&3]
	switch kind % 12 {
	case 0: // flip a bit of the payload (or the header)
		if len(payload) > 0 {
			payload[(int(a)<<8|int(b))%len(payload)] ^= 1 << (b >> 5)
		} else {
			p.TCP[int(a)%packet.TCPHeaderLen] ^= 1 << (b >> 5)
		}
	case 1: // truncate
		if len(payload) > 0 {
			payload = payload[:(int(a)<<8|int(b))%len(payload)]
		}
	case 2:
		p.TCP.SetSeq(p.TCP.Seq().Add(seq.Size(int32(int8(a))) * scale))
	case 3:
		p.TCP.SetAck(p.TCP.Ack().Add(seq.Size(int32(int8(a))) * scale))
	case 4:
		p.TCP.SetFlags(p.TCP.Flags() ^ a)
	case 5: // SACK blocks around the ack
		var ob packet.OptionBuilder
		if v, e, ok := packet.Timestamps(opts); ok {
			var ts [8]byte
			putU32(ts[:], v)
			putU32(ts[4:], e)
			_ = ob.Add(packet.OptTimestamps, ts[:])
		}
		var sk []byte
		ack := p.TCP.Ack()
		for k := 0; k < int(b&3)+1; k++ {
			l := ack.Add(seq.Size(a) * seq.Size(k+1) * 37)
			r := l.Add(seq.Size(b>>2) * 23)
			var blk [8]byte
			putU32(blk[:], uint32(l))
			putU32(blk[4:], uint32(r))
			sk = append(sk, blk[:]...)
		}
		_ = ob.Add(packet.OptSACK, sk)
		opts = bytes.Clone(ob.Bytes())
	case 6:
		p.TCP.SetWindow(uint16(a)<<8 | uint16(b))
	case 7: // split in two
		if len(payload) > 1 {
			k := 1 + (int(a)<<8|int(b))%(len(payload)-1)
			fl := p.TCP.Flags()
			p.TCP.SetFlags(fl &^ packet.FlagFIN)
			s.deliver(y, s.rebuild(&p, opts, payload[:k]))
			p.TCP.SetFlags(fl)
			p.TCP.SetSeq(p.TCP.Seq().Add(seq.Size(k)))
			payload = payload[k:]
		}
	case 8: // overwrite payload bytes with input bytes
		if len(payload) > 0 {
			at := int(a) % len(payload)
			for k := 0; k < int(b&7)+1 && at+k < len(payload); k++ {
				payload[at+k] = s.byte()
			}
		}
	case 9: // duplicate
		s.deliver(y, s.rebuild(&p, opts, payload))
	case 10: // options from the input
		n := int(a & 15)
		opts = make([]byte, 0, 40)
		for k := 0; k < n; k++ {
			opts = append(opts, s.byte())
		}
		for len(opts)%4 != 0 {
			opts = append(opts, 0)
		}
	case 11: // coalesce with the next segment when it follows on
		if i+1 < len(x.wire) {
			var q packet.Packet
			if packet.Parse(x.wire[i+1], &q) == nil && q.TCP.Seq() == p.TCP.Seq().Add(seq.Size(len(payload))) {
				payload = append(payload, q.Payload()...)
				p.TCP.SetFlags(p.TCP.Flags() | q.TCP.Flags()&packet.FlagFIN)
				p.TCP.SetAck(q.TCP.Ack())
			}
		}
	}
	s.deliver(y, s.rebuild(&p, opts, payload))
}

// rebuild makes a packet from p with new options and payload and correct
// lengths and checksums (the kernel verified the checksum of anything the
// engine sees inbound).
func (s *session) rebuild(p *packet.Packet, opts, payload []byte) []byte {
	b, err := packet.Rebuild(nil, p, opts, payload)
	if err != nil {
		b, err = packet.Rebuild(nil, p, nil, payload)
		if err != nil {
			return nil // too large for one packet (coalesced): lost
		}
	}
	return b
}

// sessionSeeds are hand-made inputs covering the main paths.
func sessionSeeds() [][]byte {
	send := func(side byte, n, mode, arg byte) []byte { return []byte{side | opSend<<1, n, mode, arg} }
	ack := []byte{opAck << 1, 0x40, 0, 0}
	ackS := []byte{1 | opAck<<1, 0x40, 0, 0}
	flush := []byte{opFlush << 1}
	tm := func(b byte) []byte { return []byte{opTime << 1, b} }
	mut := func(side, pick, kind, a, b byte) []byte { return []byte{side | opMutate<<1, pick, kind, a, b} }
	cat := func(cfg byte, parts ...[]byte) []byte {
		out := []byte{cfg}
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	return [][]byte{
		// Data both ways, then both FINs.
		cat(0, send(0, 120, 0, 0), send(1, 100, 0, 0), flush, send(0, 0, 8, 0), send(1, 0, 8, 0), flush, ack, ackS, flush, tm(200)),
		// A bulk GSO-sized segment, resent coalesced and split.
		cat(0x10, send(0, 250, 16, 0), send(0, 250, 16, 0), mut(0, 0, 7, 3, 9), mut(0, 0, 7, 0, 200), flush, send(0, 245, 1, 0), flush),
		// Out of order with SACK, and a tampered frame.
		cat(1, send(0, 150, 0, 0), send(0, 150, 0, 0), send(0, 150, 0, 0), mut(0, 2, 9, 0, 0), mut(0, 0, 9, 0, 0), mut(0, 0, 9, 0, 0), mut(1, 0, 5, 1, 9), flush, send(0, 100, 0, 0), mut(0, 0, 0, 0, 40)),
		// Rekeys (RekeyBytes 1) with loss and retransmission timers.
		cat(0x60|0x04, send(0, 40, 0, 0), send(1, 40, 0, 0), []byte{opDrop << 1}, flush, tm(30), tm(40), send(0, 40, 0, 0), flush, tm(60)),
		// The local FIN below what the peer acknowledged (issue 8 item 3).
		cat(0x08, send(0, 250, 0, 0), flush, send(0, 100, 8|6, 0), send(0, 0, 8|4, 0), flush),
		// RST, SYN retransmissions, keep-alives, idle timeout.
		cat(0x02, []byte{opSYN << 1, 1 | opSYN<<1}, send(0, 1, 5, 0), flush, tm(255), send(0, 10, 0, 0), []byte{1 | opRST<<1, 0}, flush),
		// Wire acks and seqs off by a frame, urgent data, options garbage.
		// The key exchange: data held until Init2 arrives, Init2 lost and
		// resent by B's timer, Init2 tampered with.
		cat(0x80, send(0, 100, 0, 0), send(1, 50, 0, 0), flush, send(0, 30, 0, 0), flush),
		cat(0x91, send(0, 100, 0, 0), []byte{1 | opDrop<<1}, tm(30), flush, tm(40), flush),
		cat(0x84, send(0, 20, 0, 0), mut(1, 0, 0, 0, 30), flush),
		cat(0x03, send(0, 60, 32, 5), mut(0, 0, 2, 1, 1), mut(0, 0, 3, 0xff, 1), mut(0, 0, 10, 8, 0), []byte{1, 2, 3, 4, 5, 6, 7, 8}, flush, ackS, mut(1, 0, 3, 1, 2)),
	}
}

// handshakeUntilInit2 runs the handshake as script.handshake does up to
// B's Init2, which it returns undelivered: A is in the key exchange without
// keys, B has them.
func (s *script) handshakeUntilInit2() []byte {
	t := s.t
	r := s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil))
	want(t, r, Replace)
	r = s.inB(r.Packet)
	want(t, r, Replace)
	r = s.outB(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil))
	want(t, r, Replace)
	r = s.inA(r.Packet)
	want(t, r, Replace)
	r = s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, nil)) // carries Init1
	want(t, r, Replace)
	r = s.inB(r.Packet)
	want(t, r, Replace)
	if len(r.ToPeer) != 1 {
		t.Fatalf("B injected %d packets, want Init2", len(r.ToPeer))
	}
	if fi := s.a.Snapshot(); len(fi) != 1 || fi[0].State != StateKeyExchange {
		t.Fatalf("client before Init2: %+v", fi)
	}
	return r.ToPeer[0]
}
