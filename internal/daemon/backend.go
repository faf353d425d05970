package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/eno"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
	"github.com/tcpcryptd/tcpcrypt/nfq"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

// engines is the part of *nfq.Dispatcher the backend reads.
type engines interface {
	Inspect(ctx context.Context, fn func(worker int, e nfq.Engine)) error
	Stats() nfq.Stats
}

var _ engines = (*nfq.Dispatcher)(nil)

// backend implements ctlserver.Backend for a Daemon.
type backend struct{ d *Daemon }

var _ ctlserver.Backend = backend{}

// eachEngine calls fn with every worker's engine, on the worker's goroutine.
func (d *Daemon) eachEngine(ctx context.Context, fn func(e *engine.Engine)) error {
	if d.disp == nil {
		return nfq.ErrNotRunning
	}
	return d.disp.Inspect(ctx, func(_ int, e nfq.Engine) {
		if ee, ok := e.(*engine.Engine); ok {
			fn(ee)
		}
	})
}

// lookup finds the flow (local, remote) in whichever engine tracks it.
func (d *Daemon) lookup(ctx context.Context, local, remote netip.AddrPort) (engine.FlowInfo, bool, error) {
	local = unmapAP(local)
	remote = unmapAP(remote)
	var (
		fi    engine.FlowInfo
		found bool
	)
	err := d.eachEngine(ctx, func(e *engine.Engine) {
		if found {
			return
		}
		fi, found = e.Lookup(local, remote)
	})
	return fi, found, err
}

// Status implements ctlserver.Backend.
func (b backend) Status(ctx context.Context) (ctl.Status, error) {
	d := b.d
	counters := map[string]uint64{}
	flows := 0
	err := d.eachEngine(ctx, func(e *engine.Engine) {
		c := e.Counters()
		c.Each(func(name string, v uint64) { counters["engine_"+name] += v })
		flows += e.NumFlows()
	})
	if err != nil {
		return ctl.Status{}, fmt.Errorf("read engines: %w", err)
	}
	if d.disp != nil {
		addStats(counters, d.disp.Stats())
	}
	if d.keylog != nil {
		counters["keylog_errors"] = d.keylog.Errors()
	}
	d.fallbacks.addCounters(counters)
	d.mu.Lock()
	cfg := d.cfg
	nrules := len(d.cfg.Rules) + len(d.stateRules)
	table := d.table
	d.mu.Unlock()
	balance := ""
	if table != nil {
		balance = table.Balance()
	}
	return ctl.Status{
		Version:       cfg.Version,
		UptimeSeconds: time.Since(d.start).Seconds(),
		Queues:        cfg.queues(),
		Balance:       balance,
		Rules:         nrules,
		Connections:   flows,
		Counters:      counters,
		StartupCheck:  d.checkResult(),
		FailOpen:      cfg.FailOpen,
	}, nil
}

// addStats adds the nfq counters, named after their JSON names with an
// "nfq_" prefix.
func addStats(m map[string]uint64, st nfq.Stats) {
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	var raw map[string]json.Number
	if json.Unmarshal(b, &raw) != nil {
		return
	}
	for k, v := range raw {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			u, uerr := strconv.ParseUint(string(v), 10, 64)
			if uerr != nil {
				continue
			}
			m["nfq_"+k] = u
			continue
		}
		m["nfq_"+k] = uint64(max(n, 0))
	}
}

// Connections implements ctlserver.Backend: every flow the engines track,
// then the live entries of the fallback record (connections that fell back
// to plain TCP) that no engine tracks.
func (b backend) Connections(ctx context.Context) ([]ctl.Conn, error) {
	var out []ctl.Conn
	tracked := flowSet{}
	err := b.d.eachEngine(ctx, func(e *engine.Engine) {
		for _, fi := range e.Snapshot() {
			out = append(out, ConnFromFlow(fi))
			tracked.add(fi.Local, fi.Remote)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read engines: %w", err)
	}
	now := b.d.fallbacks.now()
	for _, fb := range b.d.fallbacks.live() {
		if !tracked.has(fb.Local, fb.Remote) {
			out = append(out, fb.conn(now))
		}
	}
	return out, nil
}

// SessionID implements ctlserver.Backend. The error says what is known of
// the connection, without naming it (the server does):
//
//	not tracked by tcpcryptd (no rule covers its port, or it began before the daemon started)
//	not encrypted: fell back to plain TCP 3s ago: the peer has no tcpcrypt (...) (no_peer_eno)
//	not encrypted: aborted (...)
//	key exchange not finished yet (state key-exchange)
func (b backend) SessionID(ctx context.Context, local, remote netip.AddrPort) (ctl.Conn, error) {
	fi, ok, err := b.d.lookup(ctx, local, remote)
	switch {
	case err != nil:
		return ctl.Conn{}, fmt.Errorf("read engines: %w", err)
	case !ok:
		if fb, ok := b.d.fallbacks.lookup(local, remote); ok {
			return ctl.Conn{}, &ctl.Error{Code: ctl.CodeNoSession,
				Message: fmt.Sprintf("not encrypted: fell back to plain TCP %s ago: %s",
					b.d.fallbacks.now().Sub(fb.At).Round(time.Second), fallbackText(fb.Reason))}
		}
		return ctl.Conn{}, &ctl.Error{Code: ctl.CodeNotFound,
			Message: "not tracked by tcpcryptd (no rule covers its port, or it began before the daemon started)"}
	}
	c := ConnFromFlow(fi)
	if len(c.SessionID) != 0 {
		return c, nil
	}
	if fi.State.Dead() || fi.Abort != engine.AbortNone {
		why := "connection " + c.State
		if c.LastError != "" {
			why += ": " + c.LastError
		}
		return ctl.Conn{}, &ctl.Error{Code: ctl.CodeNoSession, Message: "not encrypted: " + why}
	}
	return ctl.Conn{}, &ctl.Error{Code: ctl.CodeNoSession, Pending: true,
		Message: "key exchange not finished yet (state " + c.State + ")"}
}

// FlushCache implements ctlserver.Backend: the engine that tracks the
// connection removes the cached secret its chain holds (engine.FlushCache).
func (b backend) FlushCache(ctx context.Context, local, remote netip.AddrPort) (int, error) {
	fl := engine.Flow{Local: unmapAP(local), Remote: unmapAP(remote)}
	var (
		n     int
		found bool
	)
	err := b.d.eachEngine(ctx, func(e *engine.Engine) {
		if !found {
			n, found = e.FlushCache(fl)
		}
	})
	switch {
	case err != nil:
		return 0, fmt.Errorf("read engines: %w", err)
	case !found:
		return 0, &ctl.Error{Code: ctl.CodeNotFound,
			Message: "not tracked by tcpcryptd (no rule covers its port, it began before the daemon started, or it closed and was forgotten)"}
	}
	return n, nil
}

// Rules implements ctlserver.Backend: the configured rules, then the state-file
// rules.
func (b backend) Rules(context.Context) ([]ctl.Rule, error) {
	var out []ctl.Rule
	for _, sr := range b.d.RulesWithSource() {
		if sr.Source == SourceDaemon {
			continue // the daemon's own ports are not the operator's rules
		}
		r := RuleFromPolicy(sr.Policy)
		r.Source = sr.Source
		out = append(out, r)
	}
	return out, nil
}

// AddRule implements ctlserver.Backend: the rule joins the state file and the
// table is re-applied.
func (b backend) AddRule(_ context.Context, r ctl.Rule) error {
	p, err := PolicyFromRule(r)
	if err != nil {
		return err
	}
	d := b.d
	d.mu.Lock()
	defer d.mu.Unlock()
	next := append(slices.Clone(d.stateRules), p)
	if _, err := rules.Normalize(slices.Concat(d.cfg.Rules, next, d.tempList())); err != nil {
		return &ctl.Error{Code: ctl.CodeBadRequest, Message: err.Error()}
	}
	if err := d.setStateRulesLocked(next); err != nil {
		return err
	}
	d.log.Info("rule added", "rule", FormatRule(p))
	return nil
}

// DelRule implements ctlserver.Backend.
func (b backend) DelRule(_ context.Context, r ctl.Rule) error {
	p, err := PolicyFromRule(r)
	if err != nil {
		return err
	}
	d := b.d
	d.mu.Lock()
	defer d.mu.Unlock()
	i := slices.Index(d.stateRules, p)
	if i < 0 {
		if slices.Contains(d.cfg.Rules, p) {
			return &ctl.Error{Code: ctl.CodeBadRequest,
				Message: "the rule comes from the configuration (--rule or the config file); change it there"}
		}
		return &ctl.Error{Code: ctl.CodeNotFound, Message: "no such rule"}
	}
	if err := d.setStateRulesLocked(slices.Delete(slices.Clone(d.stateRules), i, i+1)); err != nil {
		return err
	}
	d.log.Info("rule removed", "rule", FormatRule(p))
	return nil
}

// setStateRulesLocked applies next as the state-file rules: the table and
// the engines' policy first, then the file. If the file cannot be written,
// the previous rules are applied again.
func (d *Daemon) setStateRulesLocked(next []rules.Policy) error {
	prev := d.stateRules
	d.stateRules = next
	if err := d.applyLocked(); err != nil {
		d.stateRules = prev
		return err
	}
	if err := SaveState(d.cfg.StateFile, next); err != nil {
		d.stateRules = prev
		if rerr := d.applyLocked(); rerr != nil {
			d.log.Error("could not restore the rules after a failed state-file write", "err", rerr)
		}
		return err
	}
	return nil
}

// ConnFromFlow converts an engine flow to its control-protocol form.
func ConnFromFlow(fi engine.FlowInfo) ctl.Conn {
	c := ctl.Conn{
		Local:      unmapAP(fi.Local),
		Remote:     unmapAP(fi.Remote),
		State:      fi.State.String(),
		TEP:        ctl.TEP{Name: TEPName(fi.TEP), ID: fi.TEP &^ 0x80},
		SessionID:  ctl.HexBytes(fi.SessionID),
		Resumed:    fi.Resumed,
		BytesIn:    fi.BytesIn,
		BytesOut:   fi.BytesOut,
		FramesIn:   fi.FramesIn,
		FramesOut:  fi.FramesOut,
		AgeSeconds: fi.Age.Seconds(),
		LastError:  fi.LastError,
	}
	switch fi.Role {
	case eno.RoleA:
		c.Role = ctl.RoleA
	case eno.RoleB:
		c.Role = ctl.RoleB
	}
	if fi.AEAD != 0 {
		c.AEAD = fi.AEAD.String()
	}
	if len(c.SessionID) == 0 {
		c.SessionID = nil
	}
	if fi.Abort != engine.AbortNone {
		c.LastError = joinNonEmpty("abort "+fi.Abort.String(), fi.LastError)
	}
	return c
}

func joinNonEmpty(a, b string) string {
	if b == "" {
		return a
	}
	return a + ": " + b
}

// RuleFromPolicy converts a rules entry to its control-protocol form.
func RuleFromPolicy(p rules.Policy) ctl.Rule {
	r := ctl.Rule{Port: p.Port, Side: ctl.Side(p.Side.String()), Prefix: p.Prefix, Mode: ctl.Mode(p.Mode.String())}
	for _, n := range p.Options.Names() {
		r.Options = append(r.Options, ctl.Option(n))
	}
	return r
}

// PolicyFromRule converts a control-protocol rule to a rules entry; errors
// wrap ctl.ErrBadRequest.
func PolicyFromRule(r ctl.Rule) (rules.Policy, error) {
	if err := r.Validate(); err != nil {
		return rules.Policy{}, err
	}
	p := rules.Policy{Port: r.Port, Prefix: r.Prefix}
	if err := p.Side.UnmarshalText([]byte(r.Side)); err != nil {
		return rules.Policy{}, fmt.Errorf("%w: %w", ctl.ErrBadRequest, err)
	}
	if err := p.Mode.UnmarshalText([]byte(r.Mode)); err != nil {
		return rules.Policy{}, fmt.Errorf("%w: %w", ctl.ErrBadRequest, err)
	}
	for _, o := range r.Options {
		bit, err := rules.ParseOption(string(o))
		if err != nil {
			return rules.Policy{}, fmt.Errorf("%w: %w", ctl.ErrBadRequest, err)
		}
		p.Options |= bit
	}
	if err := p.Validate(); err != nil {
		return rules.Policy{}, fmt.Errorf("%w: %w", ctl.ErrBadRequest, err)
	}
	return p, nil
}

func unmapAP(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// errNoEngines is returned by checks when the dispatcher is not running.
var errNoEngines = errors.New("queue readers not running")
