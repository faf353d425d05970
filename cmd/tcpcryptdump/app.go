package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/tcpcryptd/tcpcrypt/internal/cliutil"
	"github.com/tcpcryptd/tcpcrypt/internal/cryptdump"
	"github.com/tcpcryptd/tcpcrypt/internal/pcapio"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// config is what the command line asks for.
type config struct {
	capture string
	keylogs []string
	json    bool
	dump    string
	write   string
}

// usageError marks errors in the command line (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// errViolations is returned when a connection did not verify (exit 1).
var errViolations = errors.New("violations found")

// newApp builds the command line; its Action calls run.
func newApp(stdout, stderr io.Writer) *cli.App {
	cliutil.UseVersionFlag()
	return &cli.App{
		Name:      "tcpcryptdump",
		Usage:     "decrypt and verify tcpcrypt connections in a packet capture",
		UsageText: "tcpcryptdump -r CAPTURE -k KEYLOG [-k KEYLOG...] [--json] [--dump DIR] [-w OUT]",
		Version:   version,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "read", Aliases: []string{"r"}, Usage: "the capture to read, pcap or pcapng (- for standard input)"},
			&cli.StringSliceFlag{Name: "keylog", Aliases: []string{"k"}, Usage: "a key log written by tcpcryptd --keylog (repeatable)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per connection per line"},
			&cli.StringFlag{Name: "dump", Usage: "write each direction's verified plaintext to files in this directory"},
			&cli.StringFlag{Name: "write", Aliases: []string{"w"}, Usage: "write the capture as pcap (raw IP) with the verified plaintext in place of the frames"},
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
			cfg := config{capture: c.String("read"), keylogs: c.StringSlice("keylog"), json: c.Bool("json"), dump: c.String("dump"), write: c.String("write")}
			if cfg.capture == "" {
				return usageError{errors.New("no capture given (-r CAPTURE)")}
			}
			if len(cfg.keylogs) == 0 {
				return usageError{errors.New("no key log given (-k KEYLOG)")}
			}
			return run(cfg, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// runMain runs the app with args and returns the exit status.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := newApp(stdout, stderr).RunContext(ctx, args)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "tcpcryptdump: %v\n", err)
		return 2
	case errors.Is(err, errViolations):
		return 1
	}
	fmt.Fprintf(stderr, "tcpcryptdump: %v\n", err)
	return 1
}

// run reads the key logs and the capture, checks every connection and
// prints the reports.
func run(cfg config, stdout, stderr io.Writer) error {
	keys := cryptdump.NewKeyLog()
	for _, p := range cfg.keylogs {
		f, err := os.Open(p)
		if err != nil {
			return usageError{fmt.Errorf("key log: %w", err)}
		}
		err = keys.Read(f, p, func(s string) { fmt.Fprintf(stderr, "tcpcryptdump: warning: %s\n", s) })
		f.Close()
		if err != nil {
			return usageError{err}
		}
	}
	var in io.Reader = os.Stdin
	if cfg.capture != "-" {
		f, err := os.Open(cfg.capture)
		if err != nil {
			return usageError{fmt.Errorf("capture: %w", err)}
		}
		defer f.Close()
		in = f
	}
	capt := cryptdump.NewCapture()
	capt.Keep = cfg.write != ""
	readErr := capt.ReadCapture(bufio.NewReaderSize(in, 1<<16))
	if readErr != nil && capt.Stats.Packets == 0 {
		return fmt.Errorf("capture %s: %w", cfg.capture, readErr)
	}
	if readErr != nil {
		fmt.Fprintf(stderr, "tcpcryptdump: capture %s: %v (after %d packets; checking those)\n", cfg.capture, readErr, capt.Stats.Packets)
	}
	var d *dumper
	if cfg.dump != "" {
		if err := os.MkdirAll(cfg.dump, 0o700); err != nil {
			return usageError{fmt.Errorf("dump directory: %w", err)}
		}
		d = &dumper{dir: cfg.dump, files: map[string]*os.File{}}
		defer d.close()
	}
	var sink cryptdump.Sink
	if d != nil {
		sink = d.write
	}
	reps, err := capt.Analyze(keys, sink)
	if err != nil {
		return err
	}
	if d != nil {
		if err := d.finish(reps); err != nil {
			return err
		}
	}
	if cfg.write != "" {
		if err := writeCapture(cfg.write, capt); err != nil {
			return err
		}
	}
	bad := readErr != nil
	enc := json.NewEncoder(stdout)
	for _, r := range reps {
		bad = bad || len(r.Violations) > 0
		if cfg.json {
			if err := enc.Encode(r); err != nil {
				return err
			}
			continue
		}
		writeText(stdout, &r)
	}
	if !cfg.json {
		writeSummary(stdout, reps, capt.Stats)
	}
	if bad {
		return errViolations
	}
	return nil
}

// writeText prints one report for people.
func writeText(w io.Writer, r *cryptdump.Report) {
	fmt.Fprintf(w, "connection %d: %s -> %s\n", r.Index, r.Client, r.Server)
	if !r.Encrypted {
		if r.Plain != "" {
			fmt.Fprintf(w, "  plain TCP: %s\n", r.Plain)
		}
	} else {
		resumed := "no"
		if r.Resumed {
			resumed = "yes"
		}
		fmt.Fprintf(w, "  A %s  B %s\n", r.A, r.B)
		fmt.Fprintf(w, "  TEP %s  AEAD %s  resumed %s\n", dash(r.TEP), dash(r.AEAD), resumed)
		fmt.Fprintf(w, "  session id %s\n", dash(r.SessionID))
		fmt.Fprintf(w, "  A->B %d bytes in %d frames, %d rekeys, FINp %s, sha256 %s\n", r.BytesAToB, r.FramesAToB, r.RekeysAToB, yesNo(r.FINpAToB), r.SHA256AToB)
		fmt.Fprintf(w, "  B->A %d bytes in %d frames, %d rekeys, FINp %s, sha256 %s\n", r.BytesBToA, r.FramesBToA, r.RekeysBToA, yesNo(r.FINpBToA), r.SHA256BToA)
	}
	if r.Reset {
		fmt.Fprintf(w, "  reset (RST seen)\n")
	}
	for _, v := range r.Violations {
		fmt.Fprintf(w, "  VIOLATION: %s\n", v)
	}
	if r.Encrypted && len(r.Violations) == 0 {
		fmt.Fprintf(w, "  verified\n")
	}
}

// writeSummary prints the totals.
func writeSummary(w io.Writer, reps []cryptdump.Report, st cryptdump.Stats) {
	var enc, ok int
	for _, r := range reps {
		if r.Encrypted {
			enc++
			if len(r.Violations) == 0 {
				ok++
			}
		}
	}
	fmt.Fprintf(w, "%d packets, %d TCP connections, %d tcpcrypt, %d verified", st.Packets, len(reps), enc, ok)
	if st.NotIP+st.NotTCP+st.Truncated > 0 {
		fmt.Fprintf(w, "; skipped %d non-IP, %d non-TCP, %d truncated packets", st.NotIP, st.NotTCP, st.Truncated)
	}
	fmt.Fprintln(w)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// dumper writes plaintext streams to DIR/conn<N>.a_to_b and .b_to_a.
type dumper struct {
	dir   string
	files map[string]*os.File
}

func dumpName(conn int, aToB bool) string {
	if aToB {
		return fmt.Sprintf("conn%d.a_to_b", conn+1)
	}
	return fmt.Sprintf("conn%d.b_to_a", conn+1)
}

func (d *dumper) file(name string) (*os.File, error) {
	if f, ok := d.files[name]; ok {
		return f, nil
	}
	f, err := os.OpenFile(filepath.Join(d.dir, name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, usageError{fmt.Errorf("dump: %w", err)}
	}
	d.files[name] = f
	return f, nil
}

func (d *dumper) write(conn int, aToB bool, b []byte) error {
	f, err := d.file(dumpName(conn, aToB))
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	return nil
}

// finish creates the (empty) files of encrypted directions that carried no
// data and closes everything.
func (d *dumper) finish(reps []cryptdump.Report) error {
	for i, r := range reps {
		if !r.Encrypted || r.SessionID == "" {
			continue
		}
		for _, ab := range []bool{true, false} {
			if _, err := d.file(dumpName(i, ab)); err != nil {
				return err
			}
		}
	}
	return d.close()
}

func (d *dumper) close() error {
	var first error
	for name, f := range d.files {
		if err := f.Close(); err != nil && first == nil {
			first = fmt.Errorf("dump %s: %w", name, err)
		}
		delete(d.files, name)
	}
	return first
}

// writeCapture writes the rewritten capture to path (mode 0600: it holds
// plaintext).
func writeCapture(path string, capt *cryptdump.Capture) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return usageError{fmt.Errorf("-w: %w", err)}
	}
	bw := bufio.NewWriterSize(f, 1<<16)
	w, err := pcapio.NewWriter(bw, pcapio.LinkRaw, 0)
	if err == nil {
		err = capt.Rewrite(w)
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("-w %s: %w", path, err)
	}
	return nil
}
