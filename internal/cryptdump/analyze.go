package cryptdump

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/eno"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// Report is the result for one TCP connection. "A" and "B" are the
// TCP-ENO roles of this connection (RFC 8547 §3): host A is normally the
// active opener (the client). On a connection that is not tcpcrypt A is the
// client.
type Report struct {
	// Index numbers the connections from 1 in the order of their first
	// packet.
	Index     int    `json:"index"`
	Client    string `json:"client"`
	Server    string `json:"server"`
	A         string `json:"a"`
	B         string `json:"b"`
	Encrypted bool   `json:"encrypted"`
	// Plain says why a connection is not tcpcrypt (ENO did not succeed);
	// empty for encrypted connections.
	Plain     string `json:"plain,omitempty"`
	TEP       string `json:"tep"`
	AEAD      string `json:"aead"`
	SessionID string `json:"session_id"`
	Resumed   bool   `json:"resumed"`
	// Plaintext verified in each direction: bytes, SHA-256, frames, rekeys.
	BytesAToB  uint64 `json:"bytes_a_to_b"`
	BytesBToA  uint64 `json:"bytes_b_to_a"`
	SHA256AToB string `json:"sha256_a_to_b"`
	SHA256BToA string `json:"sha256_b_to_a"`
	FramesAToB uint64 `json:"frames_a_to_b"`
	FramesBToA uint64 `json:"frames_b_to_a"`
	RekeysAToB uint32 `json:"rekeys_a_to_b"`
	RekeysBToA uint32 `json:"rekeys_b_to_a"`
	FINpAToB   bool   `json:"finp_a_to_b"`
	FINpBToA   bool   `json:"finp_b_to_a"`
	Reset      bool   `json:"reset"`
	// Violations lists everything that did not verify; empty means the
	// whole connection was checked and found consistent.
	Violations []string `json:"violations"`
}

// Sink receives the plaintext of one direction of a connection, in order;
// conn is the index of the connection (0-based, capture order), aToB the
// direction. Analyze calls it only with verified bytes.
type Sink func(conn int, aToB bool, data []byte) error

// Analyze checks every connection and returns one Report each, in the
// order their first packet appears. sink may be nil.
func (c *Capture) Analyze(keys *KeyLog, sink Sink) ([]Report, error) {
	out := make([]Report, 0, len(c.conns))
	for i, cn := range c.conns {
		var s Sink
		if sink != nil {
			s = func(_ int, aToB bool, d []byte) error { return sink(i, aToB, d) }
		}
		cn.client.keep, cn.server.keep = c.Keep, c.Keep
		r, err := cn.analyze(keys, s)
		r.Index = i + 1
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

var emptySHA = hex.EncodeToString(sha256.New().Sum(nil))

func (r *Report) violate(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

// tepNames are the tcpcrypt TEPs (RFC 8548 §7, Table 4).
var tepNames = map[uint8]string{
	crypto.TEPP256:   "TCPCRYPT_ECDHE_P256",
	crypto.TEPP521:   "TCPCRYPT_ECDHE_P521",
	crypto.TEPX25519: "TCPCRYPT_ECDHE_Curve25519",
	crypto.TEPX448:   "TCPCRYPT_ECDHE_Curve448",
}

// TEPName returns the IANA name of a TEP id, or its hex form.
func TEPName(id uint8) string {
	if n, ok := tepNames[id]; ok {
		return n
	}
	return fmt.Sprintf("TEP(0x%02x)", id)
}

func (cn *conn) analyze(keys *KeyLog, sink Sink) (Report, error) {
	r := Report{
		Client: cn.client.ep.String(), Server: cn.server.ep.String(),
		A: cn.client.ep.String(), B: cn.server.ep.String(),
		SHA256AToB: emptySHA, SHA256BToA: emptySHA, Violations: []string{},
	}
	r.Reset = cn.client.rst || cn.server.rst
	switch {
	case cn.noHandshake:
		r.violate("the connection's handshake is not in the capture: nothing can be checked")
		return r, nil
	case cn.simOpen:
		r.violate("simultaneous open: not supported by tcpcryptdump")
		return r, nil
	case !cn.client.syn || !cn.server.syn:
		r.Plain = "handshake incomplete in the capture"
		if len(cn.client.segs)+len(cn.server.segs) > 0 {
			r.violate("data without a complete SYN / SYN-ACK in the capture")
		}
		return r, nil
	}
	if cn.client.eno == nil {
		r.Plain = "no ENO option in the SYN"
		return r, nil
	}
	if cn.server.eno == nil {
		r.Plain = "no ENO option in the SYN-ACK"
		return r, nil
	}
	neg := eno.Negotiate(eno.Input{
		LocalSYN: cn.client.eno, PeerSYN: cn.server.eno, PeerSYNENOCount: cn.server.enoCount,
		PeerACKHasENO: true,
	})
	if !neg.OK {
		r.Plain = "TCP-ENO failed: " + neg.Reason.String()
		return r, nil
	}
	if cn.client.enoCount > 1 {
		r.Plain = "TCP-ENO failed: several ENO options in the SYN"
		return r, nil
	}
	if cn.client.nonSYN && !cn.client.firstENO {
		r.Plain = "TCP-ENO failed: the client's first ACK carried no ENO option"
		return r, nil
	}
	r.Encrypted = true
	r.TEP = TEPName(neg.TEP)
	ha, hb := &cn.client, &cn.server
	subA, subB := neg.LocalSub, neg.PeerSub
	if neg.Role == eno.RoleB {
		ha, hb = hb, ha
		subA, subB = subB, subA
		r.A, r.B = r.B, r.A
	}
	for _, h := range []*half{ha, hb} {
		if h.synDiff {
			r.violate("%s retransmitted its SYN with a different ENO option (RFC 8547 §4.6)", h.ep)
		}
	}
	if cn.synData {
		r.violate("a SYN carries data (tcpcrypt defines no SYN data, RFC 8547 §4.7)")
	}
	if !crypto.SupportedTEP(neg.TEP) {
		r.violate("negotiated TEP 0x%02x is not a tcpcrypt TEP known to tcpcryptdump", neg.TEP)
		return r, nil
	}
	sa := ha.stream(hb, &r, "A->B")
	sb := hb.stream(ha, &r, "B->A")
	if !r.Reset {
		for _, x := range []struct {
			h   *half
			dir string
		}{{ha, "A->B"}, {hb, "B->A"}} {
			if !x.h.fin {
				r.violate("%s: the capture ends before this direction closed (no FIN or RST): what followed is not verified", x.dir)
			}
		}
	}
	r.Resumed = neg.V && subA.V && subB.V && len(subA.Data) >= crypto.ResumeHalfLen && len(subB.Data) >= crypto.ResumeHalfLen

	var ks *sessionKeys
	if r.Resumed {
		ks = resumedKeys(keys, neg, subA, subB, sa, sb, &r)
	} else {
		ks = freshKeys(keys, neg, sa, sb, &r)
	}
	if ks == nil {
		return r, nil
	}
	r.AEAD = ks.sched.AEAD().String()
	r.SessionID = hex.EncodeToString(ks.sid)
	var err error
	if r.BytesAToB, r.FramesAToB, r.RekeysAToB, r.FINpAToB, r.SHA256AToB, err = verifyDir(ks.sched, ks.dirA, sa, ks.startA, ha, &r, "A->B", sinkDir(sink, true)); err != nil {
		return r, err
	}
	if r.BytesBToA, r.FramesBToA, r.RekeysBToA, r.FINpBToA, r.SHA256BToA, err = verifyDir(ks.sched, ks.dirB, sb, ks.startB, hb, &r, "B->A", sinkDir(sink, false)); err != nil {
		return r, err
	}
	return r, nil
}

func sinkDir(s Sink, aToB bool) func([]byte) error {
	if s == nil {
		return nil
	}
	return func(b []byte) error { return s(0, aToB, b) }
}

// stream is one direction's reassembled bytes: the contiguous prefix from
// offset 0 (the first byte after the SYN) and where it stops.
type stream struct {
	data []byte
	// complete: nothing is known to be missing after data (no gap, no
	// acknowledged byte absent from the capture).
	complete bool
	finOff   int64 // offset of the FIN flag, -1 if none
}

// run is a contiguous piece of a reassembled direction.
type run struct {
	off  int64
	data []byte
}

// stream reassembles what h sent, by sequence number: overlapping bytes
// (retransmissions, repacketized segments) must be identical; holes between
// captured bytes, and bytes the peer acknowledged that the capture lacks,
// are gaps. peer is the other half (for its acknowledgments).
func (h *half) stream(peer *half, r *Report, dir string) stream {
	base := h.isn.Add(1)
	var hi int64
	unwrap := func(v seq.Value) int64 {
		rel := uint32(v - base)
		return hi + int64(int32(rel-uint32(hi)))
	}
	type piece struct {
		off  int64
		data []byte
	}
	pieces := make([]piece, 0, len(h.segs))
	for _, s := range h.segs {
		off := unwrap(s.seq)
		d := s.data
		if off < 0 {
			if -off >= int64(len(d)) {
				continue
			}
			d, off = d[-off:], 0
		}
		pieces = append(pieces, piece{off, d})
		hi = max(hi, off+int64(len(d)))
	}
	h.span = hi
	st := stream{finOff: -1}
	if h.fin {
		st.finOff = unwrap(h.finSeq)
		if h.finDiffer {
			r.violate("%s: FIN segments at different sequence numbers", dir)
		}
	}
	slices.SortStableFunc(pieces, func(a, b piece) int {
		switch {
		case a.off < b.off:
			return -1
		case a.off > b.off:
			return 1
		}
		return 0
	})
	var runs []run
	differ := false
	for _, p := range pieces {
		end := p.off + int64(len(p.data))
		if len(runs) == 0 || p.off > runs[len(runs)-1].off+int64(len(runs[len(runs)-1].data)) {
			runs = append(runs, run{off: p.off, data: slices.Clip(p.data)})
			continue
		}
		last := &runs[len(runs)-1]
		lend := last.off + int64(len(last.data))
		ov := min(end, lend) - p.off
		if !differ && !bytes.Equal(p.data[:ov], last.data[p.off-last.off:p.off-last.off+ov]) {
			differ = true
			r.violate("%s: retransmitted bytes at stream offset %d differ from the first copy (RFC 8548 §3.6)", dir, p.off)
		}
		if end > lend {
			last.data = append(last.data, p.data[lend-p.off:]...)
		}
	}
	var next int64
	for _, rn := range runs {
		if rn.off > next {
			r.violate("%s: gap in the capture: stream bytes %d..%d missing", dir, next, rn.off)
		}
		next = rn.off + int64(len(rn.data))
	}
	if len(runs) > 0 && runs[0].off == 0 {
		st.data = runs[0].data
	}
	st.complete = len(runs) <= 1 && (len(runs) == 0 || runs[0].off == 0)
	// The peer's acknowledgments say how far the stream really went.
	end := next
	if st.finOff >= 0 && st.finOff >= end {
		if st.finOff > end && st.complete {
			r.violate("%s: gap in the capture: stream bytes %d..%d before the FIN missing", dir, end, st.finOff)
			st.complete = false
		}
		end = st.finOff + 1
	}
	if peer.ackSeen {
		if a := unwrap(peer.maxAck); a > end && a-end < 1<<30 {
			r.violate("%s: gap in the capture: %d bytes acknowledged by the peer are not in it (stream bytes %d..%d)", dir, a-end, end, a)
			st.complete = false
		}
	}
	return st
}

// sessionKeys is what verifying frames needs.
type sessionKeys struct {
	sched          *crypto.Schedule
	sid            []byte
	dirA, dirB     crypto.Direction // the key each host sends with
	startA, startB uint64           // offset of each direction's first frame
}

// initMsg cuts the Init message at the start of a stream.
func initMsg(st stream, what, dir string, r *Report) []byte {
	n, ok, err := crypto.InitLen(st.data)
	switch {
	case err != nil:
		r.violate("%s: %s: %v", dir, what, err)
		return nil
	case !ok || len(st.data) < n:
		if st.complete {
			r.violate("%s: %s not (completely) in the capture", dir, what)
		}
		return nil
	case n > 1<<16:
		r.violate("%s: %s of %d bytes", dir, what, n)
		return nil
	}
	return st.data[:n]
}

// freshKeys derives the keys of a fresh key exchange (RFC 8548 §3.3):
// ss[0] from the transcript, both Init messages and the ES logged for N_A.
func freshKeys(keys *KeyLog, neg eno.Result, sa, sb stream, r *Report) *sessionKeys {
	i1 := initMsg(sa, "Init1", "A->B", r)
	i2 := initMsg(sb, "Init2", "B->A", r)
	if i1 == nil || i2 == nil {
		if i1 != nil || i2 != nil || len(sa.data)+len(sb.data) > 0 {
			r.violate("key exchange incomplete: no keys, nothing verified")
		}
		return nil
	}
	m1, err := crypto.ParseInit1(neg.TEP, i1)
	if err != nil {
		r.violate("A->B: %v", err)
		return nil
	}
	m2, err := crypto.ParseInit2(neg.TEP, i2)
	if err != nil {
		r.violate("B->A: %v", err)
		return nil
	}
	if !m1.Offers(m2.Cipher) {
		r.violate("Init2 chose %v, which Init1 did not offer (RFC 8548 §3.3)", m2.Cipher)
		return nil
	}
	r.AEAD = m2.Cipher.String()
	es, ok := keys.es[string(m1.Nonce)]
	if !ok {
		r.violate("no TCPCRYPT_ES line for N_A %x in the key log: frames not verified", m1.Nonce)
		return nil
	}
	ss := crypto.FreshSecret(m1.Nonce, neg.Transcript, i1, i2, es)
	sid := crypto.SessionID(neg.TEPByte, ss, nil)
	if logged, ok := keys.sessionSecret(sid); ok && !bytes.Equal(logged, ss) {
		r.violate("the key log's TCPCRYPT_SS for this session id holds another secret")
	}
	sched, err := crypto.NewSchedule(ss, nil, m2.Cipher)
	if err != nil {
		r.violate("key schedule: %v", err)
		return nil
	}
	return &sessionKeys{sched: sched, sid: sid, dirA: crypto.DirAB, dirB: crypto.DirBA,
		startA: uint64(len(i1)), startB: uint64(len(i2))}
}

// resumedKeys finds the secret a resumed session is keyed with (RFC 8548
// §3.5): the logged ss[i] (or the ss[i+1] after a logged one) whose
// resume[i] halves are those both SYNs carry. The AEAD is not on the wire:
// it is the one of the original session, found by the first frame that
// verifies.
func resumedKeys(keys *KeyLog, neg eno.Result, subA, subB eno.Suboption, sa, sb stream, r *Report) *sessionKeys {
	hA, nA := subA.Data[:crypto.ResumeHalfLen], subA.Data[crypto.ResumeHalfLen:]
	hB, nB := subB.Data[:crypto.ResumeHalfLen], subB.Data[crypto.ResumeHalfLen:]
	for _, c := range keys.resumeCandidates() {
		rid := crypto.ResumeID(c)
		var sn []byte
		var origA bool // host A of this connection was A in the original session
		switch {
		case bytes.Equal(hA, rid[:crypto.ResumeHalfLen]) && bytes.Equal(hB, rid[crypto.ResumeHalfLen:]):
			origA, sn = true, crypto.SessionNonce(nA, nB)
		case bytes.Equal(hB, rid[:crypto.ResumeHalfLen]) && bytes.Equal(hA, rid[crypto.ResumeHalfLen:]):
			origA, sn = false, crypto.SessionNonce(nB, nA)
		default:
			continue
		}
		dirA, dirB := crypto.Directions(origA)
		sid := crypto.SessionID(neg.TEPByte, c, sn)
		for _, aead := range []crypto.AEADID{crypto.AES128GCM, crypto.AES256GCM, crypto.ChaCha20Poly1305} {
			sched, err := crypto.NewSchedule(c, sn, aead)
			if err != nil {
				continue
			}
			if firstFrameOK(sched, dirA, sa.data) || firstFrameOK(sched, dirB, sb.data) {
				return &sessionKeys{sched: sched, sid: sid, dirA: dirA, dirB: dirB}
			}
		}
		if len(firstFrame(sa.data))+len(firstFrame(sb.data)) == 0 {
			r.SessionID = hex.EncodeToString(sid)
			r.violate("resumed session: no whole frame in the capture to tell its AEAD; nothing verified")
			return nil
		}
		r.violate("resumed session: the first frame verifies under no AEAD with the matching secret")
		return nil
	}
	r.violate("resumed session: no secret in the key log matches the resumption identifiers")
	return nil
}

// firstFrame returns the whole frame at the start of b, or nil.
func firstFrame(b []byte) []byte {
	if len(b) < crypto.FrameHeaderLen {
		return nil
	}
	n := crypto.FrameHeaderLen + (int(b[1])<<8 | int(b[2]))
	if len(b) < n {
		return nil
	}
	return b[:n]
}

func firstFrameOK(s *crypto.Schedule, d crypto.Direction, b []byte) bool {
	fr := firstFrame(b)
	if fr == nil {
		return false
	}
	gen := uint32(0)
	if fr[0]&1 != 0 {
		gen = 1
	}
	k, err := s.Key(gen, d)
	if err != nil {
		return false
	}
	_, err = k.Open(nil, 0, fr)
	return err == nil
}

// verifyDir authenticates every frame of one direction and hashes its
// plaintext; it checks FINp against the TCP FIN (RFC 8548 §3.7).
func verifyDir(s *crypto.Schedule, d crypto.Direction, st stream, start uint64, h *half, r *Report, dir string,
	sink func([]byte) error) (n, frames uint64, rekeys uint32, finp bool, sum string, err error) {
	var hs hash.Hash = sha256.New()
	dec := crypto.NewDecoder(s, d, start)
	body := st.data[min(uint64(len(st.data)), start):]
	var finpEnd uint64
	after := false
	h.keyed = true
	for len(body) > 0 || dec.Buffered() > 0 {
		w, werr := dec.Write(body)
		if werr != nil {
			break
		}
		body = body[w:]
		got := false
		for {
			p, off, ok, ferr := dec.Next()
			if ferr != nil {
				if errors.Is(ferr, crypto.ErrAuth) {
					r.violate("%s: frame at stream offset %d fails authentication", dir, dec.Offset())
				} else {
					r.violate("%s: %v", dir, ferr)
				}
				return n, frames, rekeys, finp, hex.EncodeToString(hs.Sum(nil)), nil
			}
			if !ok {
				break
			}
			got = true
			frames++
			if finp && !after {
				after = true
				r.violate("%s: frame at stream offset %d after FINp (RFC 8548 §3.7)", dir, off)
			}
			if p.Rekey {
				rekeys++
			}
			if p.FIN {
				finp = true
				finpEnd = dec.Offset()
			}
			h.frames = append(h.frames, frameMap{c: off, end: dec.Offset(), data: off + uint64(crypto.DataOffset(p.URG)), n: uint64(len(p.Data)), p: n})
			if h.keep {
				h.plain = append(h.plain, p.Data...)
			}
			n += uint64(len(p.Data))
			hs.Write(p.Data)
			if sink != nil && len(p.Data) > 0 {
				if err := sink(p.Data); err != nil {
					return n, frames, rekeys, finp, "", err
				}
			}
		}
		if !got && len(body) == 0 {
			break
		}
	}
	if b := dec.Buffered(); b > 0 && dec.Err() == nil {
		r.violate("%s: the stream stops inside a frame: %d bytes at offset %d not verified", dir, b, dec.Offset())
	}
	if st.finOff >= 0 && st.complete {
		switch {
		case !finp:
			r.violate("%s: TCP FIN without a FINp frame (RFC 8548 §3.7)", dir)
		case finpEnd != uint64(st.finOff):
			r.violate("%s: the FINp frame ends at offset %d, the TCP FIN is at %d", dir, finpEnd, st.finOff)
		}
	}
	return n, frames, rekeys, finp, hex.EncodeToString(hs.Sum(nil)), nil
}
