package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/internal/daemon"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

// capture runs the command line with a fake daemon and returns the exit
// status, output, and the configuration the daemon would have got.
func capture(t *testing.T, args ...string) (code int, stdout, stderr string, cfg *daemon.Config) {
	t.Helper()
	var out, errb bytes.Buffer
	run := func(_ context.Context, c daemon.Config, _ []string, _ io.Writer) error {
		cfg = &c
		return nil
	}
	code = runMain(context.Background(), append([]string{"tcpcryptd"}, args...), &out, &errb, run)
	return code, out.String(), errb.String(), cfg
}

func TestHelpListsEveryFlag(t *testing.T) {
	code, out, _, cfg := capture(t, "-h")
	if code != 0 || cfg != nil {
		t.Fatalf("-h: exit %d, ran daemon %v", code, cfg != nil)
	}
	for _, f := range flags() {
		for _, name := range f.Names() {
			dash := "--"
			if len(name) == 1 {
				dash = "-"
			}
			if !strings.Contains(out, dash+name) {
				t.Errorf("help does not list %s%s", dash, name)
			}
		}
	}
	// Every long option except config and version is a config-file key.
	for _, f := range flags() {
		name := f.Names()[0]
		if name == "config" || name == "version" {
			continue
		}
		found := false
		for _, k := range daemon.Keys {
			found = found || k == name
		}
		if !found {
			t.Errorf("option --%s is not a configuration key", name)
		}
	}
	if len(daemon.Keys) != len(flags())-2 {
		t.Errorf("%d keys for %d options", len(daemon.Keys), len(flags())-2)
	}
}

func TestDefaults(t *testing.T) {
	code, _, errs, cfg := capture(t)
	if code != 0 || cfg == nil {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := daemon.DefaultConfig()
	if cfg.QueueNum != rules.DefaultQueueNum || int(cfg.QueueCount) != runtime.GOMAXPROCS(0) || cfg.Control != ctl.DefaultAddress ||
		cfg.StateFile != daemon.DefaultStateFile || !cfg.FailOpen || !cfg.Resumption || cfg.NoCheck ||
		cfg.Verbosity != 0 || len(cfg.Rules) != 0 || cfg.Control != want.Control {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestClassicFlags(t *testing.T) {
	code, _, errs, cfg := capture(t, "-p", "7463-7466", "-u", ":7777", "-vv", "-s", "check.example:9", "-f",
		"--rule", "443", "--rule", "25:remote:required@10.0.0.0/8", "--workers", "4", "--fail-closed",
		"--teps", "x448,p521", "--aeads", "chacha20poly1305", "--resumption=false", "--rekey-bytes", "1G",
		"--rekey-interval", "10m", "--max-flows", "1000", "--memory-limit", "64M", "--keylog", "/tmp/k", "--check-listen", ":7",
		"--state", "/tmp/s.json")
	if code != 0 || cfg == nil {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if cfg.QueueNum != 7463 || cfg.QueueCount != 4 || cfg.Control != ":7777" || cfg.Verbosity != 2 ||
		cfg.CheckServer != "check.example:9" || !cfg.NoCheck || len(cfg.Rules) != 2 || cfg.Workers != 4 ||
		cfg.FailOpen || len(cfg.TEPs) != 2 || cfg.TEPs[0] != crypto.TEPX448 || len(cfg.AEADs) != 1 ||
		cfg.Resumption || cfg.RekeyBytes != 1<<30 || cfg.RekeyInterval.Minutes() != 10 || cfg.MaxFlows != 1000 || cfg.MemoryLimit != 64<<20 ||
		cfg.KeyLog != "/tmp/k" || cfg.CheckListen != ":7" || cfg.StateFile != "/tmp/s.json" {
		t.Errorf("config: %+v", cfg)
	}
	if r := cfg.Rules[1]; r.Port != 25 || r.Side != rules.SideRemote || r.Mode != rules.ModeRequired || r.Prefix.Bits() != 8 {
		t.Errorf("rule 2: %+v", r)
	}
	// -v counts.
	if _, _, _, cfg := capture(t, "-v"); cfg == nil || cfg.Verbosity != 1 {
		t.Errorf("-v: %+v", cfg)
	}
	if _, _, _, cfg := capture(t, "-v", "-v", "-v"); cfg == nil || cfg.Verbosity != 3 {
		t.Errorf("-v -v -v: %+v", cfg)
	}
}

func TestBadValues(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-p", "seven"}, "queue"},
		{[]string{"-p", "9-3"}, "queue"},
		{[]string{"-u", "10.0.0.1:80"}, "loopback"},
		{[]string{"--rule", "http"}, "rule"},
		{[]string{"--rule", "443", "--rule", "443:both"}, "overlaps"},
		{[]string{"--workers", "many"}, "workers"},
		{[]string{"--teps", "rsa"}, "unknown TEP"},
		{[]string{"--aeads", "des"}, "unknown AEAD"},
		{[]string{"--rekey-bytes", "lots"}, "rekey-bytes"},
		{[]string{"--rekey-interval", "soon"}, "rekey-interval"},
		{[]string{"--memory-limit", "1K"}, "memory-limit"},
		{[]string{"--fail-open", "--fail-closed"}, "exclude each other"},
		{[]string{"-s", "host:0"}, "check-server"},
		{[]string{"--check-listen", "nowhere"}, "check-listen"},
		{[]string{"--bogus"}, "bogus"},
		{[]string{"extra-arg"}, "unexpected argument"},
		{[]string{"--config", "/nonexistent/tcpcryptd.conf"}, "no such file"},
	} {
		code, _, errs, cfg := capture(t, tt.args...)
		if code != 2 || cfg != nil || !strings.Contains(errs, tt.want) {
			t.Errorf("%v: exit %d, ran %v, stderr %q; want exit 2 mentioning %q", tt.args, code, cfg != nil, errs, tt.want)
		}
	}
}

func TestConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tcpcryptd.conf")
	os.WriteFile(path, []byte("# test\nqueue = 100-101\nrule = 443\nrule = 25:remote\nverbose = 1\nfail-closed = true\nworkers = 2\n"), 0o600)
	code, _, errs, cfg := capture(t, "--config", path)
	if code != 0 || cfg == nil {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if cfg.QueueNum != 100 || cfg.QueueCount != 2 || len(cfg.Rules) != 2 || cfg.Verbosity != 1 || cfg.FailOpen || cfg.Workers != 2 ||
		cfg.RulesFrom != path {
		t.Errorf("from file: %+v", cfg)
	}
	// Options override the file; --rule replaces the file's rules.
	code, _, errs, cfg = capture(t, "--config", path, "-p", "7", "--rule", "80", "--fail-open", "-vv")
	if code != 0 || cfg == nil {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if cfg.QueueNum != 7 || cfg.QueueCount != 2 || len(cfg.Rules) != 1 || cfg.Rules[0].Port != 80 ||
		!cfg.FailOpen || cfg.Verbosity != 2 || cfg.Workers != 2 || cfg.RulesFrom != daemon.SourceCommandLine {
		t.Errorf("overridden: %+v", cfg)
	}
	os.WriteFile(path, []byte("queue = 1\nspeed = 3\n"), 0o600)
	code, _, errs, _ = capture(t, "--config", path)
	if code != 2 || !strings.Contains(errs, ":2: unknown key") {
		t.Errorf("bad file: exit %d, %q", code, errs)
	}
	// loadConfig (SIGHUP) re-reads the file.
	os.WriteFile(path, []byte("rule = 8080\n"), 0o600)
	got, err := loadConfig(context.Background(), []string{"tcpcryptd", "--config", path})
	if err != nil || len(got.Rules) != 1 || got.Rules[0].Port != 8080 {
		t.Errorf("loadConfig = %+v, %v", got, err)
	}
}

func TestVersionAndExitCodes(t *testing.T) {
	for _, v := range []string{"--version", "-V"} {
		code, out, _, cfg := capture(t, v)
		if code != 0 || cfg != nil || out != "tcpcryptd "+version+"\n" {
			t.Errorf("%s: %d %q", v, code, out)
		}
	}
	for _, args := range [][]string{{"bogus"}, {"--bogus"}, {"--rule", "22@banana"}} {
		code, _, errOut, cfg := capture(t, args...)
		if code != 2 || cfg != nil || !strings.HasSuffix(errOut, "\n(see tcpcryptd --help)\n") {
			t.Errorf("%q: exit %d, %q; want 2 and a usage message", args, code, errOut)
		}
	}
	var errb bytes.Buffer
	code := runMain(context.Background(), []string{"tcpcryptd"}, io.Discard, &errb,
		func(context.Context, daemon.Config, []string, io.Writer) error { return daemon.ErrPrivilege })
	if code != 1 || !strings.Contains(errb.String(), "must run as root") {
		t.Errorf("daemon failure: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	code = runMain(context.Background(), []string{"tcpcryptd"}, io.Discard, &errb,
		func(context.Context, daemon.Config, []string, io.Writer) error { return errors.New("nfq: boom") })
	if code != 1 || !strings.Contains(errb.String(), "boom") {
		t.Errorf("runtime failure: exit %d, %q", code, errb.String())
	}
}

func TestNewLogger(t *testing.T) {
	for v, wantInfo := range map[int]bool{0: false, 1: true, 2: true} {
		var b bytes.Buffer
		l := newLogger(&b, v)
		l.Info("hello")
		l.Debug("dbg")
		l.Warn("warn")
		l.Log(context.Background(), daemon.LevelNotice, "ready")
		if strings.Contains(b.String(), "hello") != wantInfo || strings.Contains(b.String(), "dbg") != (v >= 2) ||
			!strings.Contains(b.String(), "warn") || !strings.Contains(b.String(), "level=NOTICE msg=ready") {
			t.Errorf("verbosity %d logged %q", v, b.String())
		}
	}
}
