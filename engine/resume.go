package engine

import (
	"bytes"
	"io"
	"slices"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/eno"
)

// Session resumption (RFC 8548 §3.5). The active opener takes the newest
// cached secret for the peer and offers it in its SYN as a resumption
// suboption: the TEP with v=1, its half of resume[i] and a nonce. A passive
// opener that finds the half in its cache answers with the other half and
// its own nonce. Both then key from ss[i] and sn[i] = nonce_a | nonce_b,
// with no Init messages, and cache ss[i+1]. Every Take removes the secret,
// so one ss[i] keys at most one connection (a failed attempt uses it up).

// resumeOffer is a cached secret offered (active side) or accepted
// (passive side) in a resumption suboption.
type resumeOffer struct {
	entry crypto.CacheEntry
	nonce []byte        // our resumption nonce
	sub   eno.Suboption // the suboption we send
}

// resumeOfferFor takes a cached secret for the peer and returns the
// suboption to add to our SYN (nil when there is none or no room).
func (e *Engine) resumeOfferFor(f *flow, budget int) []eno.Suboption {
	c := e.cfg.Cache
	if c == nil || f.opts.NoResume {
		return nil
	}
	// kind, length, suboption byte, half and nonce must fit.
	if budget < 2+1+crypto.ResumeHalfLen+e.cfg.ResumeNonceLen {
		return nil
	}
	ent, ok := c.TakeForPeer(f.key.remote.Addr(), e.cfg.TEPs)
	if !ok {
		return nil
	}
	nonce := make([]byte, e.cfg.ResumeNonceLen)
	if _, err := io.ReadFull(e.cfg.Rand, nonce); err != nil {
		clear(ent.Secret)
		return nil
	}
	data := append(slices.Clone(ent.MyHalf[:]), nonce...)
	f.resume = &resumeOffer{entry: ent, nonce: nonce, sub: eno.Suboption{ID: ent.TEP, V: true, Data: data}}
	return []eno.Suboption{f.resume.sub}
}

// dropResumeOffer forgets an offer; it was sent (or lost to a failed
// handshake), so the secret stays used up.
func (e *Engine) dropResumeOffer(f *flow) {
	if f.resume != nil {
		clear(f.resume.entry.Secret)
		f.resume = nil
	}
}

// dropResumeAnswer forgets an accepted resumption when ENO failed after
// all; the secret is used up.
func (e *Engine) dropResumeAnswer(f *flow) {
	if f.resumeAns != nil {
		clear(f.resumeAns.entry.Secret)
		f.resumeAns = nil
	}
}

// resumeValid is the TEP-specific validity check of RFC 8547 §4.5 for
// tcpcrypt's resumption suboptions: a resumption reply must carry the half
// we expect (RFC 8548 §3.5: a mismatching one MUST be ignored), and a reply
// to an offer we did not make is not valid (digest §2.8 suggestion).
func (e *Engine) resumeValid(f *flow) func(tep uint8, local, peer eno.Suboption) bool {
	return func(tep uint8, local, peer eno.Suboption) bool {
		peerResumes := peer.V && len(peer.Data) >= crypto.ResumeHalfLen
		switch {
		case !local.V:
			// We offered or answered fresh. A passive opener treats a
			// short v=1 suboption as a fresh offer (§3.5); a reply with a
			// half to an offer we made fresh is not valid.
			return !f.active || !peerResumes
		case !peerResumes:
			// We offered resumption; the peer answered fresh. Valid for
			// the passive side only if we did not answer with a half.
			return f.active
		}
		var exp [crypto.ResumeHalfLen]byte
		switch {
		case f.active && f.resume != nil && f.resume.entry.TEP == tep:
			exp = f.resume.entry.PeerHalf
		case !f.active && f.resumeAns != nil && f.resumeAns.entry.TEP == tep:
			exp = f.resumeAns.entry.PeerHalf
		default:
			return false
		}
		return bytes.Equal(peer.Data[:crypto.ResumeHalfLen], exp[:])
	}
}

// resumeChoose prepares the passive answer: if the peer offered a half we
// hold a secret for, the suboption that accepts it; otherwise fresh. The
// cache lookup happens here, once per connection attempt (SYN
// retransmissions reuse the stored answer), so Answer's choose callback
// itself has no side effects.
func (e *Engine) resumeChoose(f *flow) func(eno.Suboption) (eno.Suboption, bool) {
	c := e.cfg.Cache
	if c != nil && !f.opts.NoResume && f.resumeAns == nil {
		for _, ps := range f.peer.enoOpt.Subs {
			if !ps.V || len(ps.Data) < crypto.ResumeHalfLen || !slices.Contains(e.cfg.TEPs, ps.ID) {
				continue
			}
			ent, ok := c.TakeByHalf(ps.ID, ps.Data[:crypto.ResumeHalfLen])
			if !ok {
				continue
			}
			nonce := make([]byte, e.cfg.ResumeNonceLen)
			if _, err := io.ReadFull(e.cfg.Rand, nonce); err != nil {
				e.putBack(ent)
				break
			}
			data := append(slices.Clone(ent.MyHalf[:]), nonce...)
			f.resumeAns = &resumeOffer{entry: ent, nonce: nonce, sub: eno.Suboption{ID: ps.ID, V: true, Data: data}}
			break
		}
	}
	ans := f.resumeAns
	return func(ps eno.Suboption) (eno.Suboption, bool) {
		if ans != nil && ps.ID == ans.sub.ID && ps.V && len(ps.Data) >= crypto.ResumeHalfLen &&
			bytes.Equal(ps.Data[:crypto.ResumeHalfLen], ans.entry.PeerHalf[:]) {
			return ans.sub, true
		}
		return eno.Suboption{ID: ps.ID}, true
	}
}

// keepResumeAnswer checks that the answer we send really accepts the
// resumption (AnswerWithin may fall back to v=0 for lack of room); if not,
// the secret was never offered back and returns to the cache.
func (e *Engine) keepResumeAnswer(f *flow, ans *eno.Option) {
	if f.resumeAns == nil {
		return
	}
	for _, s := range ans.Subs {
		if s.ID == f.resumeAns.sub.ID && s.V {
			return
		}
	}
	e.putBack(f.resumeAns.entry)
	f.resumeAns = nil
}

// putBack returns an unused secret to the cache.
func (e *Engine) putBack(ent crypto.CacheEntry) {
	if e.cfg.Cache != nil {
		_, _ = e.cfg.Cache.Put(ent)
	}
	clear(ent.Secret)
}

// resumeAgreed reports whether ENO settled on resuming our cached secret:
// B sent the negotiated TEP with v=1 and both halves matched (Negotiate
// checked them through resumeValid).
func (e *Engine) resumeAgreed(f *flow) bool {
	if !f.neg.V || !f.neg.LocalSub.V || !f.neg.PeerSub.V {
		return false
	}
	o := f.resume
	if !f.active {
		o = f.resumeAns
	}
	return o != nil && o.entry.TEP == f.neg.TEP
}

// resumeKeys keys a resumed session from ss[i] and sn[i] (§3.5). Traffic
// directions follow the role in the ORIGINAL session of the chain.
func (e *Engine) resumeKeys(f *flow, s *seg) bool {
	o := f.resume
	if !f.active {
		o = f.resumeAns
	}
	f.resume, f.resumeAns = nil, nil
	peerNonce := f.neg.PeerSub.Data[crypto.ResumeHalfLen:]
	nonceA, nonceB := o.nonce, peerNonce
	if !o.entry.WasA {
		nonceA, nonceB = peerNonce, o.nonce
	}
	f.resumed = true
	f.wasA = o.entry.WasA
	f.chain = o.entry.Chain
	f.chainIndex = o.entry.Index
	f.aead = o.entry.AEAD
	return e.keysReady(f, s, o.entry.Secret, crypto.SessionNonce(nonceA, nonceB), o.entry.AEAD, f.seen)
}

// cacheNext caches ss[i+1] for a later resumption (§3.5: compute it once
// ss[i] produced the keys, then erase ss[i]).
func (e *Engine) cacheNext(f *flow, ss []byte) {
	c := e.cfg.Cache
	if c == nil || f.opts.NoCache {
		return
	}
	next := crypto.NextSecret(ss)
	idx := uint32(0)
	if f.resumed {
		idx = f.chainIndex
	} else {
		f.chain = 0 // a fresh ss[0] starts a new chain
	}
	chain, err := c.Put(crypto.CacheEntry{
		Secret: next, Index: idx + 1, TEP: f.neg.TEP, AEAD: f.aead,
		WasA: f.wasA, Peer: f.key.remote.Addr(), Chain: f.chain,
	})
	clear(next)
	if err == nil {
		f.chain = chain
	}
}
