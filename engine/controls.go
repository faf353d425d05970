package engine

import (
	"net/netip"

	"github.com/tcpcryptd/tcpcrypt/eno"
)

// Per-connection controls. RFC 8548 §3.5 requires an implementation that
// caches session secrets to let the application ask, for a new connection,
// that resumption be ignored (a fresh key exchange) and that nothing be
// cached, and, for an established one, that the cache state it used or
// created be flushed. RFC 8547 §4.2 defines the mandatory
// application-aware mode: send a = 1 and disable ENO unless the peer also
// sent a = 1. A userspace daemon has no socket option to hang these on, so
// the policy attaches them to the connections a rule matches (Decide), and
// FlushCache serves the established-connection request by tuple.

// Options are the per-connection controls a policy attaches to a new
// connection. The zero Options changes nothing.
type Options struct {
	// NoResume ignores resumption for the connection (RFC 8548 §3.5): an
	// active opener offers no cached secret, a passive opener answers a
	// resumption offer with a fresh exchange. The cache is left as it is.
	NoResume bool
	// NoCache derives nothing into the cache from the connection: no
	// ss[i+1] is cached once its keys are set (RFC 8548 §3.5).
	NoCache bool
	// MandatoryAppAware sends a = 1 and disables ENO unless the peer's
	// ENO option also has a = 1 (RFC 8547 §4.2), on top of
	// Config.MandatoryAppAware, which does the same for every connection.
	// Without a = 1 from the peer the connection falls back to plain TCP,
	// or aborts under Required.
	MandatoryAppAware bool
}

// Decision is what a policy decides for a new connection.
type Decision struct {
	Mode    Mode
	Options Options
}

// decide runs the configured policy for a new connection: Decide when
// set, else Policy with no options, else Opportunistic.
func (e *Engine) decide(local, remote netip.AddrPort) Decision {
	switch {
	case e.cfg.Decide != nil:
		return e.cfg.Decide(local, remote)
	case e.cfg.Policy != nil:
		return Decision{Mode: e.cfg.Policy(local, remote)}
	}
	return Decision{Mode: Opportunistic}
}

// enoConfig is the ENO configuration of f: the engine's, with the
// mandatory application-aware mode added when f's options ask for it.
func (e *Engine) enoConfig(f *flow) eno.Config {
	c := e.enoCfg
	if f.opts.MandatoryAppAware {
		c.MandatoryAppAware = true
	}
	return c
}

// FlushCache removes from the cache whatever secret the tracked flow fl
// used or created (RFC 8548 §3.5 "flush cache state"): the secret cached
// for its chain, which is ss[i+1] once its keys are set (the ss[i] it
// resumed with already left the cache when it was offered or accepted).
// If a later connection has resumed from that ss[i+1] meanwhile, the
// chain's secret is the one it left, which descends from this flow's, and
// it goes too: nothing derived from the flow's secret stays resumable.
// The flow caches nothing afterwards, so a later connection between the
// same hosts cannot resume from it. It reports how many secrets went
// (0 or 1) and false when no flow with those endpoints is tracked. Closed
// flows still lingering count as tracked.
func (e *Engine) FlushCache(fl Flow) (flushed int, ok bool) {
	f := e.tab.flows[flowKey{local: fl.Local, remote: fl.Remote}]
	if f == nil {
		return 0, false
	}
	f.opts.NoCache = true
	if e.cfg.Cache != nil && f.chain != 0 {
		flushed = e.cfg.Cache.Flush(f.chain)
	}
	return flushed, true
}

// noAnswerReason is why the passive side sent no ENO answer: the mandatory
// application-aware mode when the peer sent a = 0 (RFC 8547 §4.2), else no
// acceptable TEP or a peer option that cannot be answered.
func (e *Engine) noAnswerReason(f *flow) FallbackReason {
	if e.enoConfig(f).MandatoryAppAware && !f.peer.enoOpt.A() {
		return FallbackAppAware
	}
	return FallbackNoAnswer
}
