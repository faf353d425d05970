package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/internal/daemon"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

// docDir is where the packages install the documentation (docs/ in the
// source tree).
const docDir = "/usr/share/doc/tcpcryptd"

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// usageError marks command-line errors (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// runFunc runs the daemon with a configuration; args are the command line,
// for re-reading the configuration on SIGHUP.
type runFunc func(ctx context.Context, cfg daemon.Config, args []string, stderr io.Writer) error

// flags returns fresh flag definitions (urfave/cli flags keep parse state).
// Every long name is also a configuration-file key (daemon.Keys), except
// config itself.
func flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "queue", Aliases: []string{"p"}, Value: fmt.Sprint(rules.DefaultQueueNum),
			Usage: "first `QUEUE` number (the \"divert port\"; the daemon reads --workers queues from it), or a range like 7463-7466"},
		&cli.StringFlag{Name: "control", Aliases: []string{"u"}, Value: ctl.DefaultAddress,
			Usage: "`SOCKET` for control: /path for a unix socket, :port for localhost TCP (read-only)"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Count: new(int), DisableDefaultText: true,
			Usage: "log more: -v adds lifecycle events (info), -vv debug (default: warnings and errors only)"},
		&cli.StringFlag{Name: "check-server", Aliases: []string{"s"},
			Usage: fmt.Sprintf("start-up check against the check server `HOST[:PORT]` (port %d if omitted) instead of the loopback self-test", daemon.DefaultCheckPort)},
		&cli.BoolFlag{Name: "no-check", Aliases: []string{"f"}, DisableDefaultText: true,
			Usage: "skip the start-up check (and any name lookup it would do)"},
		&cli.StringFlag{Name: "config", Usage: "read settings from `FILE` (key = value lines, keys named like the long options); options given here override it"},
		&cli.StringFlag{Name: "state", Value: daemon.DefaultStateFile, Usage: "`FILE` that keeps the rules added at run time (JSON)"},
		&cli.StringSliceFlag{Name: "rule",
			Usage: "cover a port; `SPEC` is PORT[:SIDE][:MODE][@PREFIX], SIDE local|remote|both (default local), MODE opportunistic|required|exclude (default opportunistic); repeatable"},
		&cli.IntFlag{Name: "workers", DefaultText: "one per CPU", Usage: "`N` queues, one engine and goroutine each, when --queue is one number (with a range: its length)"},
		&cli.BoolFlag{Name: "fail-open", DefaultText: "on", Usage: "while the daemon is not running, opportunistic ports pass traffic in plaintext"},
		&cli.BoolFlag{Name: "fail-closed", DisableDefaultText: true, Usage: "while the daemon is not running, drop the traffic of every covered port"},
		&cli.StringFlag{Name: "teps", Value: "x25519,p256", Usage: "`LIST` of key agreements in preference order: x25519, x448, p256, p521"},
		&cli.StringFlag{Name: "aeads", Value: "aes128gcm,chacha20poly1305,aes256gcm", Usage: "`LIST` of frame ciphers in preference order: aes128gcm, chacha20poly1305, aes256gcm"},
		&cli.BoolFlag{Name: "resumption", Value: true, Usage: "resume sessions with cached secrets (--resumption=false to disable)"},
		&cli.StringFlag{Name: "rekey-bytes", DefaultText: "never", Usage: "rekey after `BYTES` sent under one key (suffix K, M or G)"},
		&cli.DurationFlag{Name: "rekey-interval", DefaultText: "never", Usage: "rekey keys older than `DURATION` (e.g. 1h) when more data is sent"},
		&cli.DurationFlag{Name: "liveness", Value: daemon.DefaultLiveness, Usage: "probe an encrypted connection idle for `DURATION` with a rekey its peer must answer, and reset it when the peer is gone (RFC 8548 §3.9); 0 turns it off"},
		&cli.IntFlag{Name: "max-flows", DefaultText: "65536 per worker", Usage: "track at most `N` connections at once, over all workers"},
		&cli.StringFlag{Name: "memory-limit", DefaultText: "256M", Usage: "keep at most `BYTES` (suffix K, M or G) in connection buffers, over all workers; past it, segments are dropped for TCP to resend, out-of-order ones first"},
		&cli.StringFlag{Name: "keylog", Usage: "append session secrets to `FILE` for debugging; DEFEATS THE ENCRYPTION for anyone who reads it"},
		&cli.StringFlag{Name: "check-listen", Usage: "run a check server on `ADDR` (ip:port or :port) that tells clients their session id"},
		&cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics at http://`ADDR`/metrics, readiness at /readyz and liveness at /livez (ip:port or :port, e.g. 127.0.0.1:9464)"},
		&cli.BoolFlag{Name: "pprof", DisableDefaultText: true, Usage: "also serve Go runtime profiles (net/http/pprof) under /debug/pprof/ on the --metrics address, for profiling the daemon"},
		&cli.BoolFlag{Name: "version", Aliases: []string{"V"}, DisableDefaultText: true, Usage: "print the version and exit (-v is --verbose)"},
	}
}

// newApp builds the command line for args. run is called with the
// configuration once it is complete and valid.
func newApp(args []string, stdout, stderr io.Writer, run runFunc) *cli.App {
	onUsage := func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
	return &cli.App{
		Name:  "tcpcryptd",
		Usage: "opportunistic TCP encryption (TCP-ENO, RFC 8547, and tcpcrypt, RFC 8548) for selected ports",
		Description: "Runs as root. Takes the segments of the covered ports from NFQUEUE and encrypts them\n" +
			"whenever the peer speaks tcpcrypt. Rules come from --rule, the config file and the state\n" +
			"file (tcpcryptctl rules add). SIGHUP re-reads the config and state files; SIGTERM stops.\n" +
			"See tcpcryptd(8) and " + docDir + "/tcpcryptd.md.",
		Version:                version,
		HideVersion:            true,
		HideHelpCommand:        true,
		Writer:                 stdout,
		ErrWriter:              stderr,
		UseShortOptionHandling: true,
		Flags:                  flags(),
		OnUsageError:           onUsage,
		ExitErrHandler:         func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.Bool("version") {
				fmt.Fprintf(c.App.Writer, "tcpcryptd %s\n", version)
				return nil
			}
			if c.NArg() > 0 {
				return usageError{fmt.Errorf("unexpected argument %q", c.Args().First())}
			}
			cfg, err := buildConfig(c)
			if err != nil {
				return usageError{err}
			}
			return run(c.Context, cfg, args, c.App.ErrWriter)
		},
	}
}

// buildConfig starts from the defaults, applies the config file, then the
// options given on the command line.
func buildConfig(c *cli.Context) (daemon.Config, error) {
	cfg := daemon.DefaultConfig()
	cfg.Version = version
	if path := c.String("config"); path != "" {
		kvs, err := daemon.ParseFile(path)
		if err != nil {
			return cfg, err
		}
		fileRules := false
		for _, kv := range kvs {
			if c.IsSet(kv[0]) {
				continue // the command line wins
			}
			if kv[0] == "rule" && !fileRules {
				cfg.Rules, fileRules = nil, true
				cfg.RulesFrom = path
			}
			if err := cfg.Set(kv[0], kv[1]); err != nil {
				return cfg, err
			}
		}
	}
	if c.IsSet("fail-open") && c.IsSet("fail-closed") {
		return cfg, errors.New("--fail-open and --fail-closed exclude each other")
	}
	for _, key := range daemon.Keys {
		if !c.IsSet(key) {
			continue
		}
		var err error
		switch key {
		case "verbose":
			err = cfg.Set(key, fmt.Sprint(c.Count("verbose")))
		case "rule":
			cfg.Rules, cfg.RulesFrom = nil, daemon.SourceCommandLine
			for _, r := range c.StringSlice("rule") {
				if err = cfg.Set(key, r); err != nil {
					break
				}
			}
		default:
			err = cfg.Set(key, fmt.Sprint(c.Value(key)))
		}
		if err != nil {
			return cfg, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// loadConfig parses args again (SIGHUP): the config file is re-read and the
// command-line options still override it.
func loadConfig(ctx context.Context, args []string) (daemon.Config, error) {
	var got daemon.Config
	app := newApp(args, io.Discard, io.Discard, func(_ context.Context, cfg daemon.Config, _ []string, _ io.Writer) error {
		got = cfg
		return nil
	})
	if err := app.RunContext(ctx, args); err != nil {
		return got, err
	}
	return got, nil
}

// newLogger is the daemon's logger: text on stderr at the level -v chose:
// warnings, errors and the NOTICE milestones (daemon.LevelNotice) by default,
// info with -v, debug (per-connection lines) with -vv.
func newLogger(w io.Writer, verbosity int) *slog.Logger {
	level := daemon.LevelNotice
	switch {
	case verbosity >= 2:
		level = slog.LevelDebug
	case verbosity == 1:
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: noticeName}))
}

// noticeName prints daemon.LevelNotice as NOTICE rather than slog's INFO+2.
func noticeName(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok && l == daemon.LevelNotice {
			a.Value = slog.StringValue("NOTICE")
		}
	}
	return a
}

// runDaemon is the real runFunc: it wires signals and runs the daemon.
func runDaemon(ctx context.Context, cfg daemon.Config, args []string, stderr io.Writer) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return daemon.Run(ctx, daemon.Options{
		Config: cfg,
		Logger: newLogger(stderr, cfg.Verbosity),
		Reload: func() (daemon.Config, error) { return loadConfig(context.Background(), args) },
		Hangup: hup,
	})
}

// runMain runs the command line and returns the exit status: 0 after a
// clean stop, 1 when the daemon fails, 2 for usage errors.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer, run runFunc) int {
	err := newApp(args, stdout, stderr, run).RunContext(ctx, args)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue), errors.Is(err, daemon.ErrUsage):
		fmt.Fprintf(stderr, "tcpcryptd: %v\n(see tcpcryptd --help)\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "tcpcryptd: %v\n", err)
		return 1
	}
}
