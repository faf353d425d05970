package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/nftables"

	"github.com/tcpcryptd/tcpcrypt/internal/metrics"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

// metricsOptions are the metrics listener's inputs: the engines through
// src, and the daemon's readiness, rules and memory budget.
func (d *Daemon) metricsOptions(cfg Config, src metrics.Source) metrics.Options {
	return metrics.Options{
		Source:     src,
		Handshakes: d.events.handshakes,
		Memory:     d.budget,
		Queues:     cfg.queues(),
		Readiness:  &d.ready,
		Live:       tableLive,
		Rules:      d.ruleCounts,
		Version:    cfg.Version,
	}
}

// ruleCounts returns how many rules the daemon holds, by origin (the
// tcpcrypt_rules gauge).
func (d *Daemon) ruleCounts() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return map[string]int{
		"config":    len(d.cfg.Rules),
		"state":     len(d.stateRules),
		"internal":  len(d.internal),
		"temporary": len(d.tempList()),
	}
}

// errTableGone is tableLive's answer when the daemon's table is not in the
// kernel (someone deleted it): no port is covered any more.
var errTableGone = errors.New("table inet " + rules.TableName + " is not in the kernel")

// tableLive reports whether the daemon's nftables table is in the kernel,
// over a netlink socket of its own (the readiness check runs on the
// metrics listener's goroutines, apart from the guard's lasting one).
func tableLive(context.Context) error {
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	ok, err := staleTable(conn)
	if err != nil {
		return err
	}
	if !ok {
		return errTableGone
	}
	return nil
}
