package engine

import (
	"errors"
	"io"
	"time"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/eno"
	"github.com/tcpcryptd/tcpcrypt/packet"
)

// Key exchange (RFC 8548 §3.3): A puts Init1 at offset 0 of its stream, B
// answers with Init2 at offset 0 of its own; both derive ss[0] from the ENO
// transcript, both messages and the shared secret. On a resumed session
// (§3.5) the keys exist as soon as ENO succeeds.

// startA turns encryption on at the active opener (host A), on the first
// segment it sends after the SYN-ACK (RFC 8547 §4.6). It reports false if
// the flow was aborted or forgotten.
func (e *Engine) startA(f *flow, s *seg) bool {
	if resumed, ok := e.beginKeyExchange(f, s, eno.RoleA); resumed || !ok {
		return ok
	}
	e.dropResumeOffer(f) // offered, answered fresh: used up (RFC 8548 §3.5)
	priv, err := crypto.GenerateKey(f.neg.TEP, e.cfg.Rand)
	if err != nil {
		e.abort(f, s, AbortInternal)
		return false
	}
	f.priv = priv
	f.nonce = make([]byte, crypto.NonceLen)
	if _, err := io.ReadFull(e.cfg.Rand, f.nonce); err != nil {
		e.abort(f, s, AbortInternal)
		return false
	}
	m := crypto.Init1{Ciphers: e.cfg.AEADs, Nonce: f.nonce, Pub: priv.Public()}
	f.initMsg = m.Marshal(nil)
	f.offered = e.cfg.AEADs
	f.snd.init(f.local.isn, f.initMsg, int(f.pmss()))
	f.sndReady = true
	return true
}

// startB turns encryption on at the passive opener (host B) when the
// peer's first ACK carried ENO.
func (e *Engine) startB(f *flow, s *seg) bool {
	_, ok := e.beginKeyExchange(f, s, eno.RoleB)
	return ok
}

// beginKeyExchange is what startA and startB share: ENO must have given us
// role, the receive half opens, and an agreed resumption keys the flow at
// once (no Init messages). resumed reports that it did; ok is false if the
// flow was aborted or forgotten.
func (e *Engine) beginKeyExchange(f *flow, s *seg, role eno.Role) (resumed, ok bool) {
	if f.neg.Role != role {
		e.fallback(f, s, FallbackSimOpen)
		return false, false
	}
	f.rcv.init(f.peer.isn, e.cfg.MaxFlowBuffer)
	f.rcvReady = true
	f.state = StateKeyExchange
	f.wasA = role == eno.RoleA
	if e.resumeAgreed(f) {
		f.snd.init(f.local.isn, nil, int(f.pmss()))
		f.sndReady = true
		return true, e.resumeKeys(f, s)
	}
	return false, true
}

// needPeerInit reports whether the peer's Init message is still expected.
func (f *flow) needPeerInit() bool {
	return f.rcvReady && !f.resumed && f.peerInit == nil
}

// gotPeerInit handles the peer's whole Init message msg (A receives Init2,
// B receives Init1). It reports false if the flow was aborted.
func (e *Engine) gotPeerInit(f *flow, s *seg, msg []byte, now time.Time) bool {
	f.peerInit = append([]byte(nil), msg...)
	tep := f.neg.TEP
	if f.wasA {
		m, err := crypto.ParseInit2(tep, f.peerInit)
		if err != nil {
			if errors.Is(err, crypto.ErrUnknownCipher) {
				e.abortErr(f, s, AbortUnofferedCipher, err)
			} else {
				e.abortErr(f, s, AbortMalformedInit, err)
			}
			return false
		}
		if !(&crypto.Init1{Ciphers: f.offered}).Offers(m.Cipher) {
			e.abortErr(f, s, AbortUnofferedCipher, crypto.ErrCipherNotOffered)
			return false
		}
		es, err := f.priv.ECDH(m.Pub)
		if err != nil {
			e.abortErr(f, s, AbortInvalidKey, err)
			return false
		}
		e.keyLog(KeyLogES, f.nonce, es)
		ss := crypto.FreshSecret(f.nonce, f.neg.Transcript, f.initMsg, f.peerInit, es)
		clear(es)
		return e.keysReady(f, s, ss, nil, m.Cipher, now)
	}
	m, err := crypto.ParseInit1(tep, f.peerInit)
	if err != nil {
		if errors.Is(err, crypto.ErrUnknownCipher) || errors.Is(err, crypto.ErrNoCiphers) {
			e.abortErr(f, s, AbortNoCommonCipher, err)
		} else {
			e.abortErr(f, s, AbortMalformedInit, err)
		}
		return false
	}
	cipher, ok := crypto.SelectCipher(m.Ciphers, e.cfg.AEADs)
	if !ok {
		e.abortErr(f, s, AbortNoCommonCipher, crypto.ErrUnknownCipher)
		return false
	}
	priv, err := crypto.GenerateKey(tep, e.cfg.Rand)
	if err != nil {
		e.abortErr(f, s, AbortInternal, err)
		return false
	}
	es, err := priv.ECDH(m.Pub)
	if err != nil {
		e.abortErr(f, s, AbortInvalidKey, err)
		return false
	}
	f.nonce = make([]byte, crypto.NonceLen)
	if _, err := io.ReadFull(e.cfg.Rand, f.nonce); err != nil {
		e.abortErr(f, s, AbortInternal, err)
		return false
	}
	reply := crypto.Init2{Cipher: cipher, Nonce: f.nonce, Pub: priv.Public()}
	f.initMsg = reply.Marshal(nil)
	e.keyLog(KeyLogES, m.Nonce, es)
	ss := crypto.FreshSecret(m.Nonce, f.neg.Transcript, f.peerInit, f.initMsg, es)
	clear(es)
	f.snd.init(f.local.isn, f.initMsg, int(f.pmss()))
	f.sndReady = true
	// B may send frames right after Init2 (§3.3); Init2 goes out first.
	if !e.keysReady(f, s, ss, nil, cipher, now) {
		return false
	}
	e.sendInit(f, now)
	return true
}

// keysReady installs the session keys derived from ss (and sn on a
// resumed session), moves the flow to StateEstablished and releases the
// segments held for lack of keys.
func (e *Engine) keysReady(f *flow, s *seg, ss, sn []byte, aead crypto.AEADID, now time.Time) bool {
	defer clear(ss)
	sched, err := crypto.NewSchedule(ss, sn, aead)
	if err != nil {
		e.abortErr(f, s, AbortInternal, err)
		return false
	}
	f.sched = sched
	f.aead = aead
	f.sessionID = crypto.SessionID(f.neg.TEPByte, ss, sn)
	sendDir, recvDir := crypto.Directions(f.wasA)
	f.enc = crypto.NewEncoder(sched, sendDir, f.snd.cNext)
	f.snd.seal = f.sealFrame
	f.open = opener{sched: sched, dir: recvDir}
	f.keys = true
	f.state = StateEstablished
	f.genStart = now
	f.priv = nil
	e.ctr.FlowsEncrypted++
	if f.resumed {
		e.ctr.FlowsResumed++
	}
	e.keyLog(KeyLogSS, f.sessionID, ss)
	e.event(f, Event{Kind: EventEncrypted, SessionID: append([]byte(nil), f.sessionID...)})
	e.cacheNext(f, ss)
	e.releaseHeld(f, now)
	return true
}

// sealFrame is the flow's sendHalf sealer.
func (f *flow) sealFrame(dst []byte, off uint64, spec frameSpec, buf []byte, i, j int) ([]byte, error) {
	if f.enc.Offset() != off {
		return nil, errSealOffset
	}
	return f.enc.SealFrom(dst, crypto.Plain{FIN: spec.fin, URG: spec.urg, Urgent: spec.urgent}, buf, i, j)
}

var errSealOffset = errors.New("engine: encoder offset disagrees with the stream")

// sendInit sends (or resends) our Init message at offset 0 of our stream
// and arms its retransmission timer (DESIGN.md invariant 6).
func (e *Engine) sendInit(f *flow, now time.Time) {
	if f.initMsg == nil || f.snd.initAcked() {
		return
	}
	e.toPeer(e.buildToPeer(f, 0, packet.FlagACK|packet.FlagPSH, f.initMsg, false))
	e.armRTX(f, now)
}

// armRTX starts the engine retransmission timer if it is not running.
func (e *Engine) armRTX(f *flow, now time.Time) {
	if !f.rtxAt.IsZero() {
		return
	}
	if f.rtxRTO == 0 {
		f.rtxRTO = e.cfg.InitRTO
	}
	f.rtxAt = now.Add(f.rtxRTO)
}

// rtxPending reports whether engine-made bytes await acknowledgment.
func (f *flow) rtxPending() bool {
	if !f.sndReady {
		return false
	}
	if f.initMsg != nil && !f.snd.initAcked() {
		return true
	}
	return f.snd.engineLive > 0
}

// retransmit resends the engine's unacknowledged bytes: the Init message
// and empty rekey frames, those that follow each other in one segment. The
// kernel retransmits everything else. After Config.MaxRetransmits
// retransmissions without progress the peer is taken to be gone (or to
// refuse our bytes) and the connection is aborted.
func (e *Engine) retransmit(f *flow, now time.Time) {
	f.rtxAt = time.Time{}
	if !f.rtxPending() || !f.state.encrypting() {
		f.rtxRTO, f.rtxTries = 0, 0
		return
	}
	if f.rtxTries >= e.cfg.MaxRetransmits {
		f.seen = now // linger for CloseTimeout from the abort, like every aborted flow
		e.abort(f, nil, AbortRetransmitLimit)
		return
	}
	if f.initMsg != nil && !f.snd.initAcked() {
		e.toPeer(e.buildToPeer(f, 0, packet.FlagACK|packet.FlagPSH, f.initMsg, false))
		e.ctr.Retransmits++
	}
	f.snd.engineRuns(int(f.pmss()), func(c0, c1 uint64) {
		if b, err := f.snd.bytes(c0, c1); err == nil {
			e.toPeer(e.buildToPeer(f, int64(c0), packet.FlagACK|packet.FlagPSH, b, false))
			e.ctr.Retransmits++
		}
	})
	f.rtxTries++
	f.rtxRTO = min(2*f.rtxRTO, maxRTO)
	f.rtxAt = now.Add(f.rtxRTO)
}

// ackedByPeer stops the retransmission timer once nothing is pending, and
// starts the count of retransmissions again when the peer acknowledged
// some of the engine's frames.
func (e *Engine) ackedByPeer(f *flow) {
	if f.rtxAt.IsZero() {
		return
	}
	if !f.rtxPending() {
		f.rtxAt = time.Time{}
		f.rtxRTO, f.rtxTries = 0, 0
		f.rtxMark = f.snd.engineAcked
		return
	}
	if f.snd.engineAcked != f.rtxMark {
		f.rtxMark = f.snd.engineAcked
		f.rtxTries = 0
	}
}

// maybeRekey raises our generation before new data is framed when the
// configured volume or age is reached (RFC 8548 §3.8: the next frame then
// carries the rekey bit).
func (e *Engine) maybeRekey(f *flow, now time.Time) {
	due := (e.cfg.RekeyBytes > 0 && f.bytesSinceGen >= e.cfg.RekeyBytes) ||
		(e.cfg.RekeyInterval > 0 && now.Sub(f.genStart) >= e.cfg.RekeyInterval)
	if !due || f.enc.RekeyPending() {
		return
	}
	if f.enc.Rekey() {
		e.newGeneration(f, now)
	}
}

// newGeneration counts a rekey of ours and restarts the byte and age
// counts that trigger the next one (Config.RekeyBytes, RekeyInterval).
func (e *Engine) newGeneration(f *flow, now time.Time) {
	e.ctr.Rekeys++
	f.bytesSinceGen = 0
	f.genStart = now
}

// peerRekeyed answers a verified rekey frame of the peer (RFC 8548 §3.8):
// raise our generation to match and, unless our FIN went out, send a frame
// under it at once (an empty one made by the engine).
func (e *Engine) peerRekeyed(f *flow, s *seg, now time.Time) {
	if f.enc.Generation() >= f.open.gen {
		e.eraseOldKeys(f)
		return
	}
	if !f.enc.RekeyPending() && !f.enc.Rekey() {
		return
	}
	e.newGeneration(f, now)
	if f.snd.fin {
		return
	}
	if f.snd.engineLive >= maxEngineFrames {
		// Each rekey needs an answer of its own, and the peer acknowledges
		// none of them: a flood, not a peer keeping its keys fresh.
		e.abort(f, s, AbortRekeyFlood)
		return
	}
	if !e.sendEmptyFrame(f, s, now) {
		return
	}
	e.eraseOldKeys(f)
}

// sendEmptyFrame sends an engine-made empty frame under f's current
// generation (with the rekey bit if it is the generation's first) toward
// the peer, and arms its retransmission. false means the flow was aborted
// (s, which may be nil, is the segment being processed).
func (e *Engine) sendEmptyFrame(f *flow, s *seg, now time.Time) bool {
	c0, c1, err := f.snd.appendEmpty(frameSpec{})
	if err != nil {
		e.abortErr(f, s, AbortInternal, err)
		return false
	}
	if b, err := f.snd.bytes(c0, c1); err == nil {
		e.toPeer(e.buildToPeer(f, int64(c0), packet.FlagACK|packet.FlagPSH, b, false))
		e.armRTX(f, now)
	}
	return true
}

// eraseOldKeys forgets generations neither direction needs any more
// (RFC 8548 §3.8 SHOULD): sent frames are kept as bytes, never resealed.
func (e *Engine) eraseOldKeys(f *flow) {
	if g := min(f.enc.Generation(), f.open.gen); g > 0 && f.sched != nil {
		f.sched.Erase(g)
	}
}
