package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/internal/cliutil"
	"github.com/tcpcryptd/tcpcrypt/rules"
	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// usageError marks errors in the command line (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// command is what one invocation asks for; run executes it.
type command struct {
	addr   string
	op     string // "rules.list", "rules.add", "rules.del", "status", "sessid", "flush-cache", "version"
	json   bool
	ports  bool // rules.list: only the distinct ports (for completion)
	all    bool // status: every counter, zeros too
	rule   ctl.Rule
	local  netip.AddrPort
	remote netip.AddrPort
}

// jsonFlag and ruleFlags return fresh flags (cli flags keep parse state).
func jsonFlag() cli.Flag { return &cli.BoolFlag{Name: "json", Usage: "print JSON"} }

func ruleFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "side", Value: string(ctl.SideLocal), Usage: "which end's port: local, remote or both"},
		&cli.StringFlag{Name: "prefix", Usage: "only peers inside this address prefix (CIDR)"},
		&cli.StringFlag{Name: "mode", Value: string(ctl.ModeOpportunistic), Usage: "opportunistic, required or exclude"},
		&cli.StringSliceFlag{Name: "option", Usage: "per-connection control, repeatable or comma-separated: noresume, nocache or appaware"},
	}
}

// newApp builds the command line; each Action builds a command and calls run.
func newApp(stdout, stderr io.Writer) *cli.App {
	// act wraps a function that builds the command from the context.
	act := func(build func(c *cli.Context, cmd *command) error) cli.ActionFunc {
		return func(c *cli.Context) error {
			addr, err := cliutil.ControlAddress(c.String("address"), c.String("netns"))
			if err != nil {
				return usageError{err}
			}
			cmd := command{addr: addr, json: c.Bool("json")}
			if err := build(c, &cmd); err != nil {
				return err
			}
			return run(c.Context, cmd, c.App.Writer)
		}
	}
	ruleCmd := func(name, usage string) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, ArgsUsage: "PORT [--side local|remote|both] [--prefix CIDR] [--mode opportunistic|required|exclude] [--option noresume|nocache|appaware]...",
			Flags: ruleFlags(),
			Action: act(func(c *cli.Context, cmd *command) error {
				cmd.op = "rules." + name
				r, err := parseRule(c)
				cmd.rule = r
				return err
			}),
		}
	}
	cliutil.UseVersionFlag()
	return &cli.App{
		Name:      "tcpcryptctl",
		Usage:     "control tcpcryptd: policy rules, status, session ids",
		Version:   version,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "address", Aliases: []string{"u"},
				Usage: "control socket path, or :PORT for the localhost TCP port (read-only) (default: $TCPCRYPT_CTL or " + ctl.DefaultAddress + ")"},
			cliutil.NetnsFlag(),
		},
		// Without a command, or with one that does not exist: a usage error
		// (exit status 2), not help with status 0.
		Action:       needCommand,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error { return usageError{err} },
		// Errors are reported by runMain; never let cli call os.Exit.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			{
				Name:  "rules",
				Usage: "list or change the per-port policy rules (changes need root)",
				Subcommands: []*cli.Command{
					{
						Name: "list", Usage: "list the rules", Flags: []cli.Flag{jsonFlag(),
							// For bash completion of rules del: the ports, one a line.
							&cli.BoolFlag{Name: "ports", Hidden: true}},
						Action: act(func(c *cli.Context, cmd *command) error {
							cmd.op = "rules.list"
							cmd.ports = c.Bool("ports")
							return noArgs(c)
						}),
					},
					ruleCmd("add", "add a rule"),
					ruleCmd("del", "delete a rule (all of port, side, prefix, mode and options must match)"),
				},
				Action:       needCommand,
				OnUsageError: func(_ *cli.Context, err error, _ bool) error { return usageError{err} },
			},
			{
				Name: "status", Usage: "show the daemon's status and its non-zero counters",
				Flags:        []cli.Flag{jsonFlag(), &cli.BoolFlag{Name: "all", Usage: "show every counter, zeros too (--json always has them all)"}},
				OnUsageError: func(_ *cli.Context, err error, _ bool) error { return usageError{err} },
				Action: act(func(c *cli.Context, cmd *command) error {
					cmd.op = "status"
					cmd.all = c.Bool("all")
					return noArgs(c)
				}),
			},
			{
				Name: "sessid", Usage: "print the session id and TCP-ENO role of a connection", ArgsUsage: "LOCAL REMOTE",
				Description: "LOCAL and REMOTE are the connection's endpoints as seen from this host, e.g.\n" +
					"192.0.2.1:40000 198.51.100.7:443 or [2001:db8::1]:40000 [2001:db8::7]:443.\n" +
					"Prints \"SESSION-ID-HEX ROLE\"; exits 1 with the reason when there is no session id.",
				Flags:        []cli.Flag{jsonFlag()},
				OnUsageError: func(_ *cli.Context, err error, _ bool) error { return usageError{err} },
				Action: act(func(c *cli.Context, cmd *command) error {
					cmd.op = "sessid"
					var err error
					cmd.local, cmd.remote, err = parseTuple(c, "sessid")
					return err
				}),
			},
			{
				Name: "flush-cache", Usage: "flush the resumption secret a connection used or created (needs root, or owning the connection)", ArgsUsage: "LOCAL REMOTE",
				Description: "LOCAL and REMOTE are the connection's endpoints as seen from this host, as for sessid.\n" +
					"The daemon removes the cached session secret the connection created, so no later\n" +
					"connection can resume from it, and the connection caches none later (RFC 8548 3.5).\n" +
					"Prints \"flushed N LOCAL -> REMOTE\" (N secrets removed, 0 or 1); exits 1 when the\n" +
					"daemon does not track the connection or refuses.",
				OnUsageError: func(_ *cli.Context, err error, _ bool) error { return usageError{err} },
				Action: act(func(c *cli.Context, cmd *command) error {
					cmd.op = "flush-cache"
					var err error
					cmd.local, cmd.remote, err = parseTuple(c, "flush-cache")
					return err
				}),
			},
			{
				Name: "version", Usage: "print this tool's and the daemon's versions",
				Action: act(func(c *cli.Context, cmd *command) error {
					cmd.op = "version"
					return noArgs(c)
				}),
			},
		},
	}
}

// needCommand is the Action of a command that only has subcommands: it runs
// when none or an unknown one is given.
func needCommand(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("unknown command %q (see %s --help)", c.Args().First(), c.Command.HelpName)
	}
	return usagef("missing command (see %s --help)", c.Command.HelpName)
}

// parseTuple reads the LOCAL REMOTE arguments of command name.
func parseTuple(c *cli.Context, name string) (local, remote netip.AddrPort, err error) {
	if c.NArg() != 2 {
		return local, remote, usagef("%s needs LOCAL and REMOTE (got %d arguments)", name, c.NArg())
	}
	if local, err = netip.ParseAddrPort(c.Args().Get(0)); err != nil {
		return local, remote, usagef("LOCAL: %v", err)
	}
	if remote, err = netip.ParseAddrPort(c.Args().Get(1)); err != nil {
		return local, remote, usagef("REMOTE: %v", err)
	}
	return local, remote, nil
}

func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("unexpected argument %q", c.Args().First())
	}
	return nil
}

// parseRule reads PORT and the rule flags. Flags may also follow PORT
// ("rules add 443 --mode required"), which urfave/cli does not parse by
// itself, so the arguments after PORT are parsed here with the values given
// before it as defaults.
func parseRule(c *cli.Context) (ctl.Rule, error) {
	if c.NArg() == 0 {
		return ctl.Rule{}, usagef("missing PORT")
	}
	fs := flag.NewFlagSet("rule", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	side := fs.String("side", c.String("side"), "")
	prefix := fs.String("prefix", c.String("prefix"), "")
	mode := fs.String("mode", c.String("mode"), "")
	opts := slices.Clone(c.StringSlice("option"))
	fs.Func("option", "", func(v string) error {
		opts = append(opts, strings.Split(v, ",")...)
		return nil
	})
	if err := fs.Parse(c.Args().Tail()); err != nil {
		return ctl.Rule{}, usageError{err}
	}
	if fs.NArg() > 0 {
		return ctl.Rule{}, usagef("unexpected argument %q", fs.Arg(0))
	}
	port, err := strconv.ParseUint(c.Args().First(), 10, 16)
	if err != nil || port == 0 {
		return ctl.Rule{}, usagef("PORT must be 1..65535, not %q", c.Args().First())
	}
	r := ctl.Rule{Port: uint16(port), Side: ctl.Side(*side), Mode: ctl.Mode(*mode)}
	for _, o := range opts {
		r.Options = append(r.Options, ctl.Option(strings.TrimSpace(o)))
	}
	if *prefix != "" {
		p, err := rules.ParsePrefix(*prefix)
		if err != nil {
			return ctl.Rule{}, usagef("--prefix: %v", err)
		}
		r.Prefix = p
	}
	if err := r.Validate(); err != nil {
		return ctl.Rule{}, usageError{err}
	}
	return r, nil
}

// runMain runs the app with args and returns the exit status.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := newApp(stdout, stderr).RunContext(ctx, args)
	return report(err, stderr)
}

// report prints err for a person and maps it to the exit status.
func report(err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue), errors.Is(err, ctl.ErrBadAddress):
		fmt.Fprintf(stderr, "tcpcryptctl: %v\n", err)
		return 2
	case errors.Is(err, ctl.ErrDaemonUnavailable):
		fmt.Fprintf(stderr, "tcpcryptctl: %v\n(is tcpcryptd running? use -u to give its control address, or -n NAME for the daemon of network namespace NAME)\n", err)
	case errors.Is(err, ctl.ErrForbidden):
		fmt.Fprintf(stderr, "tcpcryptctl: %v\n(rule changes and flush-cache need root, over the unix socket)\n", err)
	case errors.Is(err, ctl.ErrNoSession):
		fmt.Fprintf(stderr, "tcpcryptctl: no session id: the connection is not encrypted "+
			"(TCP-ENO fell back to plain TCP, or the handshake has not finished)\n  %v\n", err)
	default:
		fmt.Fprintf(stderr, "tcpcryptctl: %v\n", err)
	}
	return 1
}
