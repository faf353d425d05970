package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/internal/cliutil"
	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// config is what the command line asks for.
type config struct {
	addr string // control address; "" = $TCPCRYPT_CTL or ctl.DefaultAddress
	json bool
	sas  bool // add the SAS column (--sas)
}

// usageError marks errors in the command line (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// newApp builds the command line; its Action calls run.
func newApp(stdout, stderr io.Writer) *cli.App {
	cliutil.UseVersionFlag()
	return &cli.App{
		Name:      "tcnetstat",
		Usage:     "list the connections tracked by tcpcryptd, encrypted and fallen back to plain TCP",
		UsageText: "tcnetstat [--json] [--sas] [-u ADDRESS | -n NAME]",
		Version:   version,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array of connection objects"},
			&cli.BoolFlag{Name: "sas", Usage: "add each connection's short authentication string (SAS), words to compare with the peer's"},
			&cli.StringFlag{Name: "address", Aliases: []string{"u"},
				Usage: "control socket path, or :PORT for the localhost TCP port (default: $TCPCRYPT_CTL or " + ctl.DefaultAddress + ")"},
			cliutil.NetnsFlag(),
		},
		HideHelpCommand: true,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		// Errors are reported by runMain; never let cli call os.Exit.
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError{fmt.Errorf("unexpected argument %q", c.Args().First())}
			}
			addr, err := cliutil.ControlAddress(c.String("address"), c.String("netns"))
			if err != nil {
				return usageError{err}
			}
			return run(c.Context, config{addr: addr, json: c.Bool("json"), sas: c.Bool("sas")}, c.App.Writer)
		},
	}
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
		fmt.Fprintf(stderr, "tcnetstat: %v\n", err)
		return 2
	case errors.Is(err, ctl.ErrDaemonUnavailable):
		fmt.Fprintf(stderr, "tcnetstat: %v\n(is tcpcryptd running? use -u to give its control address)\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "tcnetstat: %v\n", err)
	return 1
}

// run fetches every connection and prints it.
func run(ctx context.Context, cfg config, w io.Writer) error {
	c, err := ctl.Dial(ctx, cfg.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	conns, err := c.Netstat(ctx)
	if err != nil {
		return err
	}
	slices.SortFunc(conns, func(a, b ctl.Conn) int {
		if d := a.Local.Compare(b.Local); d != 0 {
			return d
		}
		return a.Remote.Compare(b.Remote)
	})
	if cfg.json {
		if cfg.sas {
			return writeJSONSAS(w, conns)
		}
		return writeJSON(w, conns)
	}
	return writeTable(w, conns, cfg.sas)
}

// writeJSON prints conns as a JSON array ("[]" when empty).
func writeJSON(w io.Writer, conns []ctl.Conn) error {
	if conns == nil {
		conns = []ctl.Conn{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(conns)
}

// writeTable prints conns as aligned columns for people; with sas, a last
// SAS column.
func writeTable(w io.Writer, conns []ctl.Conn, sas bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprint(tw, "LOCAL\tREMOTE\tSTATE\tROLE\tTEP\tAEAD\tSESSION-ID\tRESUMED\tBYTES-IN\tBYTES-OUT\tAGE\tREASON")
	if sas {
		fmt.Fprint(tw, "\tSAS")
	}
	fmt.Fprintln(tw)
	for _, c := range conns {
		resumed := "no"
		if c.Resumed {
			resumed = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s",
			c.Local, c.Remote, dash(c.State), dash(c.Role.String()), dash(c.TEP.String()), dash(c.AEAD),
			dash(c.SessionID.String()), resumed, c.BytesIn, c.BytesOut, age(c.AgeSeconds), dash(c.FallbackReason))
		if sas {
			fmt.Fprintf(tw, "\t%s", sasColumn(c))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// dash shows an empty field as "-" so that columns stay parseable.
func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// age formats seconds as a duration rounded to the second.
func age(sec float64) string {
	switch {
	case sec < 0 || sec != sec:
		return "-"
	case sec > 1e9: // beyond what a Duration holds comfortably
		return fmt.Sprintf("%.0fs", sec)
	}
	return (time.Duration(sec * float64(time.Second))).Round(time.Second).String()
}
