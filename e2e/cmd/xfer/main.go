// Command xfer is the ordinary TCP client and server of the end-to-end tests
// and the demo: it moves recognisable, checkable byte streams (package
// payload) both ways at once over plain sockets, asks tcpcryptd for each
// connection's session id through the ctl client library, as an application
// would, and prints one JSON line per event.
//
//	xfer serve -l ADDR [-ctl SOCK] [-max N] [-quiet] [-timeout D] [-save FILE]
//	xfer send  -c ADDR [-up SIZE] [-down SIZE] [-n N] [-p P] [-rate SIZE]
//	           [-raw] [-file FILE] [-hold] [-quiet] [-ctl SOCK] [-timeout D] [-id N]
//
// SIZE takes K, M, G (powers of 1024). With -hold the client keeps every
// connection open once its data is through, prints a "holding" line, and
// closes when its standard input reaches end of file (unless -quiet, each
// connection also prints a "held" line when it gets there), so that a test can
// inspect the connections while they are still established. The server runs
// until SIGTERM or SIGINT (or -max connections), then prints a summary.
//
// With -file the client sends that file upward instead of the pattern
// (-up is ignored), and the server hashes it and, with -save, writes it out;
// both report the SHA-256, so a demo can show the file arrived whole.
//
// Each client connection reports first_byte_ms, the time from the start of
// its dial to the first byte from the server, and the client's summary the
// median and 99th percentile of it (first_byte_p50_ms, first_byte_p99_ms).
//
// Exit status: 0 when every connection completed, 1 when one failed, 2 for
// usage errors.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: xfer serve|send [flags]")
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "send":
		return send(args[1:], stdin, stdout, stderr)
	}
	fmt.Fprintf(stderr, "xfer: unknown command %q (want serve or send)\n", args[0])
	return 2
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("xfer serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("l", "", "listen address, e.g. 10.99.0.2:5001 or [::]:5001")
	ctlAddr := fs.String("ctl", "", "tcpcryptd control address for session id lookups (none: no lookups)")
	maxConns := fs.Int("max", 0, "exit after this many connections (0: run until SIGTERM)")
	quiet := fs.Bool("quiet", false, "print only failed connections and the summary")
	timeout := fs.Duration("timeout", 2*time.Minute, "bound on each connection")
	save := fs.String("save", "", "write a file the client sends (-file) to this path")
	wait := fs.Bool("wait", false, "look the session up with ctl.WaitSession right after accepting, before any data")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *listen == "" || fs.NArg() > 0 || *maxConns < 0 || *timeout <= 0 {
		fmt.Fprintln(stderr, "xfer serve: need -l ADDR, and no arguments")
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "xfer serve: %v\n", err)
		return 1
	}
	stop := make(chan struct{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; close(stop) }()
	cfg := serverConfig{max: *maxConns, quiet: *quiet, timeout: *timeout, sess: newSession(*ctlAddr, 8, *wait), early: *wait, save: *save}
	return runServer(ln, cfg, newPrinter(stdout), stop)
}

func send(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("xfer send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg clientConfig
	fs.StringVar(&cfg.addr, "c", "", "server address")
	up := fs.String("up", "1M", "bytes to send per connection")
	down := fs.String("down", "1M", "bytes to receive per connection")
	rate := fs.String("rate", "0", "upward bytes per second per connection (0: unlimited)")
	fs.IntVar(&cfg.n, "n", 1, "number of connections")
	fs.IntVar(&cfg.par, "p", 1, "connections at a time")
	fs.BoolVar(&cfg.raw, "raw", false, "unchecked repeating data (benchmarks)")
	fs.StringVar(&cfg.file, "file", "", "send this file upward instead of the pattern")
	fs.BoolVar(&cfg.hold, "hold", false, "keep the connections open until stdin closes")
	fs.BoolVar(&cfg.quiet, "quiet", false, "print only failed connections and the summary")
	ctlAddr := fs.String("ctl", "", "tcpcryptd control address for session id lookups (none: no lookups)")
	fs.DurationVar(&cfg.timeout, "timeout", 2*time.Minute, "bound on each connection")
	id := fs.Uint("id", 1, "stream id of the first connection (next ones count up)")
	fs.BoolVar(&cfg.early, "wait", false, "look the session up with ctl.WaitSession right after connecting, before any data")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if cfg.up, err = parseSize(*up); err == nil {
		if cfg.down, err = parseSize(*down); err == nil {
			var r uint64
			r, err = parseSize(*rate)
			cfg.rate = int64(min(r, 1<<62))
		}
	}
	switch {
	case err != nil:
	case cfg.addr == "" || fs.NArg() > 0:
		err = fmt.Errorf("need -c ADDR, and no arguments")
	case cfg.n < 1 || cfg.par < 1 || cfg.timeout <= 0:
		err = fmt.Errorf("-n, -p and -timeout must be positive")
	case cfg.hold && cfg.par < cfg.n:
		err = fmt.Errorf("-hold needs -p >= -n")
	case *id == 0 || uint64(*id)+uint64(cfg.n) > uint64(downBit):
		err = fmt.Errorf("-id must be 1..%d minus -n", downBit-1)
	case cfg.file != "" && (cfg.n != 1 || cfg.raw):
		err = fmt.Errorf("-file needs -n 1 and no -raw")
	case cfg.file != "":
		var fi os.FileInfo
		if fi, err = os.Stat(cfg.file); err == nil {
			cfg.up = uint64(fi.Size())
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "xfer send: %v\n", err)
		return 2
	}
	cfg.par = min(cfg.par, cfg.n)
	cfg.idBase, cfg.stdin = uint32(*id), stdin
	cfg.sess = newSession(*ctlAddr, 8, cfg.early)
	return runClient(cfg, newPrinter(stdout))
}

// parseSize parses a byte count with an optional K, M or G suffix (powers of
// 1024, an optional trailing "i" or "B" is accepted: 16M, 16MiB, 1G).
func parseSize(s string) (uint64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "B"), "i")
	mult := uint64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K', 'k':
			mult = 1 << 10
		case 'M', 'm':
			mult = 1 << 20
		case 'G', 'g':
			mult = 1 << 30
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	v, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	if v > maxStream/mult {
		return 0, fmt.Errorf("size %q: over %d bytes", s, uint64(maxStream))
	}
	return v * mult, nil
}
