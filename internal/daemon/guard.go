package daemon

import (
	"context"
	"log/slog"

	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

// guardSets is the part of *rules.Manager the guard uses.
type guardSets interface {
	Protect(flows ...rules.Flow) error
	Unprotect(flows ...rules.Flow) error
}

// guard adapts the rules Manager to nfq.Guard. Protect is synchronous: the
// worker must not let a flow's first encrypted segment out before the flow
// is in the set. Unprotect is not urgent (a flow the engine forgot is dead;
// leaving it queued a little longer is harmless), so releases are handed to
// one goroutine that removes them in batches, off the packet path; when its
// queue is full the caller removes them itself.
type guard struct {
	sets    guardSets
	log     *slog.Logger
	release chan []rules.Flow
	done    chan struct{}
}

// guardReleaseQueue bounds the releases waiting for the goroutine.
const guardReleaseQueue = 1024

func newGuard(sets guardSets, log *slog.Logger) *guard {
	return &guard{sets: sets, log: log, release: make(chan []rules.Flow, guardReleaseQueue), done: make(chan struct{})}
}

func (g *guard) Protect(flows ...engine.Flow) error { return g.sets.Protect(ruleFlows(flows)...) }

func (g *guard) Unprotect(flows ...engine.Flow) error {
	rf := ruleFlows(flows)
	select {
	case g.release <- rf:
		return nil
	default:
		return g.sets.Unprotect(rf...)
	}
}

// run removes released flows in batches until ctx ends, then drains what is
// queued.
func (g *guard) run(ctx context.Context) {
	defer close(g.done)
	for {
		select {
		case rf := <-g.release:
			g.flush(rf)
		case <-ctx.Done():
			for {
				select {
				case rf := <-g.release:
					g.flush(rf)
				default:
					return
				}
			}
		}
	}
}

// flush removes rf and whatever else is queued in one call.
func (g *guard) flush(rf []rules.Flow) {
	batch := rf
	for len(batch) < 4096 {
		select {
		case more := <-g.release:
			batch = append(batch, more...)
			continue
		default:
		}
		break
	}
	if err := g.sets.Unprotect(batch...); err != nil {
		g.log.Warn("could not remove ended flows from the guard sets; they stay queued until the table is replaced",
			"flows", len(batch), "err", err)
	}
}

func ruleFlows(flows []engine.Flow) []rules.Flow {
	out := make([]rules.Flow, len(flows))
	for i, f := range flows {
		out[i] = rules.Flow{Local: f.Local, Remote: f.Remote}
	}
	return out
}
