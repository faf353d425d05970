package daemon

import (
	"slices"

	"github.com/tcpcryptd/tcpcrypt/rules"
)

// Where a rule in force comes from (SourcedRule.Source), for tcpcryptctl
// rules list. A rule from a configuration file has the file's path as its
// source.
const (
	// SourceCommandLine marks a rule given with --rule.
	SourceCommandLine = "command line"
	// SourceState marks a rule added at run time (tcpcryptctl rules add),
	// kept in the state file.
	SourceState = "state"
	// SourceDaemon marks a rule the daemon adds for itself: the check
	// server's port (--check-listen) or the start-up check's throwaway port.
	SourceDaemon = "daemon"
)

// SourcedRule is a rule in force and where it comes from.
type SourcedRule struct {
	Policy rules.Policy
	// Source is SourceCommandLine, a configuration file's path, SourceState
	// or SourceDaemon.
	Source string
}

// RulesWithSource lists the rules in force, in the order the daemon applies
// them (configured, state file, the daemon's own), each with its source.
// The control server's rules.list can report it.
func (d *Daemon) RulesWithSource() []SourcedRule {
	d.mu.Lock()
	defer d.mu.Unlock()
	cfgSrc := d.cfg.RulesFrom
	if cfgSrc == "" {
		cfgSrc = SourceCommandLine
	}
	var out []SourcedRule
	add := func(src string, ps []rules.Policy) {
		for _, p := range ps {
			out = append(out, SourcedRule{Policy: p, Source: src})
		}
	}
	add(cfgSrc, d.cfg.Rules)
	add(SourceState, d.stateRules)
	add(SourceDaemon, slices.Concat(d.internal, d.tempList()))
	return out
}
