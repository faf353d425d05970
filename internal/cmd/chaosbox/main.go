// Command chaosbox is a small impairing middlebox for the end-to-end tests
// and benchmarks: it steers TCP packets into an NFQUEUE through its own
// nftables table (inet chaosbox) and, from a seeded random source, drops
// some (loss), holds some back until younger packets have passed
// (reordering, by giving their verdicts late), and duplicates some (the copy
// is sent through a raw socket right after the original is accepted, since
// verdicts alone cannot duplicate). With every probability at zero it is a
// plain accept-everything queue reader, the pass-through baseline.
//
//	chaosbox [-hook forward|local] [-port P] [-q QUEUE] [-loss F] [-reorder F]
//	         [-dup F] [-gap N] [-max-hold D] [-seed N] [-gso]
//
// On the forward hook (a router namespace between two hosts) every forwarded
// TCP packet, or those of port P, is queued. On the local hook this host's
// own packets are queued on output and input. chaosbox prints one JSON line
// {"event":"ready"} once it is reading, and on SIGINT or SIGTERM releases
// every held packet, removes its table and prints its counters as a JSON
// line. Needs CAP_NET_ADMIN and CAP_NET_RAW.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

// defaultMark marks chaosbox's duplicates ("ch").
const defaultMark = 0x6368

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line.
type options struct {
	table  tableConfig
	params Params
	seed   uint64
	gso    bool
}

func parseArgs(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("chaosbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	hook := fs.String("hook", hookForward, "forward (router) or local (this host's output and input)")
	port := fs.Uint("port", 0, "only TCP packets from or to this port (0: all TCP)")
	queue := fs.Uint("q", 7400, "NFQUEUE number")
	fs.Float64Var(&o.params.Loss, "loss", 0, "probability of dropping a packet")
	fs.Float64Var(&o.params.Reorder, "reorder", 0, "probability of holding a packet back")
	fs.Float64Var(&o.params.Dup, "dup", 0, "probability of duplicating a packet")
	fs.IntVar(&o.params.Gap, "gap", 3, "packets that overtake a held one")
	fs.DurationVar(&o.params.MaxHold, "max-hold", 20*time.Millisecond, "longest time a packet is held")
	fs.IntVar(&o.params.MaxHeld, "max-held", 256, "most packets held at once")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed")
	fs.BoolVar(&o.gso, "gso", false, "take GSO super-packets as they are (faster; duplicates of them fail)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case *hook != hookForward && *hook != hookLocal:
		return o, fmt.Errorf("-hook must be %s or %s", hookForward, hookLocal)
	case *port > 65535 || *queue > 65535:
		return o, fmt.Errorf("-port and -q must be at most 65535")
	}
	o.table = tableConfig{hook: *hook, port: uint16(*port), queue: uint16(*queue), mark: defaultMark}
	return o, o.params.Validate()
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "chaosbox: %v\n", err)
		return 2
	}
	if err := serve(o, stdout); err != nil {
		fmt.Fprintf(stderr, "chaosbox: %v\n", err)
		return 1
	}
	return 0
}

// report is chaosbox's output line.
type report struct {
	Event       string `json:"event"`
	Queue       uint16 `json:"queue,omitempty"`
	QueueKind   string `json:"queue_kind,omitempty"`
	Stats       *Stats `json:"stats,omitempty"`
	VerdictErrs uint64 `json:"verdict_errors,omitempty"`
	InjectErrs  uint64 `json:"inject_errors,omitempty"`
	RecvErrs    uint64 `json:"recv_errors,omitempty"`
}

func serve(o options, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	nft, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	kind, err := rules.DetectQueue(nft, nil)
	if err != nil {
		return err
	}
	o.table.kind = kind
	q, err := openQueue(o.table.queue, o.gso)
	if err != nil {
		return err
	}
	defer q.Close()
	inj, err := newInjector(o.table.mark)
	if err != nil {
		return err
	}
	defer inj.close()
	b := &box{q: q, inj: inj, im: NewImpairer(o.params, o.seed)}
	// The queue is bound before the table sends packets to it.
	stopped, err := b.start(ctx)
	if err != nil {
		return err
	}
	if err := installTable(nft, o.table); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	_ = enc.Encode(report{Event: "ready", Queue: o.table.queue, QueueKind: kind.String()})
	err = b.loop(ctx, stopped)
	if rerr := removeTable(nft); rerr != nil && err == nil {
		err = rerr
	}
	b.mu.Lock()
	st := b.im.Stats()
	b.mu.Unlock()
	_ = enc.Encode(report{Event: "stopped", Stats: &st, VerdictErrs: b.verdictErrs.Load(),
		InjectErrs: b.injectErrs.Load(), RecvErrs: b.recvErrs.Load()})
	return err
}
