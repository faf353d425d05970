package engine

import "time"

// Liveness (RFC 8548 §3.9). An encrypted flow that has seen no packet for
// Config.LivenessInterval is probed the way the RFC recommends instead of a
// TCP keep-alive: the engine starts a rekey and sends an empty frame under
// the new generation at once. The peer must answer with a frame under its own
// raised generation (§3.8), which proves it alive and authentic, and which
// also counts as traffic for the idle timeout: a connection whose peer
// answers is never aborted for being idle. An unanswered probe is an
// engine-made frame like any other: it is retransmitted with backoff and,
// past the retransmission limit, the flow is aborted (AbortRetransmitLimit),
// so a dead peer ends the connection with RSTs toward the local stack.
//
// A probe is not sent after our FIN (no frame may follow FINp), while
// engine-made frames still wait for acknowledgment (an earlier probe among
// them), or while an earlier rekey of ours is unanswered: a host with nothing
// to send starts at most one empty rekey at a time (§3.8).

// livenessDue returns when f should next be probed, or the zero time when
// it is not to be probed (now). The conditions that rule a probe out are
// part of it, so that a flow's timer never stays due without effect.
func (e *Engine) livenessDue(f *flow) time.Time {
	if e.cfg.LivenessInterval <= 0 || f.state != StateEstablished || f.enc == nil ||
		f.snd.fin || f.rtxPending() || f.enc.Generation() > f.open.gen {
		return time.Time{}
	}
	return f.seen.Add(e.cfg.LivenessInterval)
}

// probeLiveness sends a liveness probe on f if one is due at now.
func (e *Engine) probeLiveness(f *flow, now time.Time) {
	due := e.livenessDue(f)
	if due.IsZero() || now.Before(due) {
		return
	}
	// Whatever happens below, the next probe is an interval away: a due
	// time left in the past would make Tick spin on this flow.
	f.seen = now
	if !f.enc.RekeyPending() && !f.enc.Rekey() {
		return
	}
	e.newGeneration(f, now)
	e.ctr.LivenessProbes++
	e.sendEmptyFrame(f, nil, now)
}
