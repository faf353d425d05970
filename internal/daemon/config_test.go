package daemon

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

func TestParseRule(t *testing.T) {
	pfx := netip.MustParsePrefix
	tests := []struct {
		in      string
		want    rules.Policy
		wantErr bool
	}{
		{in: "443", want: rules.Policy{Port: 443, Side: rules.SideLocal, Mode: rules.ModeOpportunistic}},
		{in: "443:remote", want: rules.Policy{Port: 443, Side: rules.SideRemote}},
		{in: "443:both:required", want: rules.Policy{Port: 443, Side: rules.SideBoth, Mode: rules.ModeRequired}},
		{in: "25:exclude", want: rules.Policy{Port: 25, Side: rules.SideLocal, Mode: rules.ModeExclude}},
		{in: "25:required:remote", want: rules.Policy{Port: 25, Side: rules.SideRemote, Mode: rules.ModeRequired}},
		{in: "80:local:opportunistic@10.0.0.0/8", want: rules.Policy{Port: 80, Side: rules.SideLocal, Prefix: pfx("10.0.0.0/8")}},
		{in: "80:local:opportunistic@10.1.2.3/8", wantErr: true}, // host bits: refused, as everywhere
		{in: "80:remote@2001:db8::/32", want: rules.Policy{Port: 80, Side: rules.SideRemote, Prefix: pfx("2001:db8::/32")}},
		{in: " 22 ", want: rules.Policy{Port: 22, Side: rules.SideLocal}},
		{in: "", wantErr: true},
		{in: "0", wantErr: true},
		{in: "65536", wantErr: true},
		{in: "http", wantErr: true},
		{in: "443:sideways", wantErr: true},
		{in: "443:local:local", wantErr: true},
		{in: "443:required:exclude", wantErr: true},
		{in: "443:local:required:extra", wantErr: true},
		{in: "443@notaprefix", wantErr: true},
		{in: "443@::ffff:10.0.0.0/104", wantErr: true},
		{in: "443+noresume", want: rules.Policy{Port: 443, Side: rules.SideLocal, Options: rules.OptNoResume}},
		{in: "443:required+appaware+nocache@10.0.0.0/8", want: rules.Policy{Port: 443, Side: rules.SideLocal,
			Mode: rules.ModeRequired, Options: rules.OptAppAware | rules.OptNoCache, Prefix: pfx("10.0.0.0/8")}},
		{in: "443:remote:opportunistic+noresume+nocache+appaware", want: rules.Policy{Port: 443, Side: rules.SideRemote,
			Options: rules.OptNoResume | rules.OptNoCache | rules.OptAppAware}},
		{in: "443+", wantErr: true},
		{in: "443+fast", wantErr: true},
		{in: "443+nocache+nocache", wantErr: true},
		{in: "443:exclude+noresume", wantErr: true},
		{in: "443+noresume:remote", wantErr: true}, // options come after SIDE and MODE
		{in: "443@10.0.0.0/8+noresume", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseRule(tt.in)
		if tt.wantErr {
			if err == nil || !errors.Is(err, ErrUsage) {
				t.Errorf("ParseRule(%q) = %v, %v; want an ErrUsage error", tt.in, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRule(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseRule(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		back, err := ParseRule(FormatRule(got))
		if err != nil || back != got {
			t.Errorf("round trip of %q via %q = %+v, %v", tt.in, FormatRule(got), back, err)
		}
	}
}

func TestConfigSet(t *testing.T) {
	tests := []struct {
		key, val string
		check    func(c Config) bool
		wantErr  bool
	}{
		{key: "queue", val: "7463-7466", check: func(c Config) bool { return c.QueueNum == 7463 && c.QueueCount == 4 }},
		{key: "queue", val: "100", check: func(c Config) bool { return c.QueueNum == 100 && c.QueueCount == 0 }}, // Validate: one queue per worker
		{key: "queue", val: "9-3", wantErr: true},
		{key: "queue", val: "x", wantErr: true},
		{key: "control", val: ":7777", check: func(c Config) bool { return c.Control == ":7777" }},
		{key: "control", val: "10.0.0.1:7777", wantErr: true},
		{key: "verbose", val: "2", check: func(c Config) bool { return c.Verbosity == 2 }},
		{key: "verbose", val: "-1", wantErr: true},
		{key: "check-server", val: "check.example:4000", check: func(c Config) bool { return c.CheckServer == "check.example:4000" }},
		{key: "check-server", val: "host:0", wantErr: true},
		{key: "no-check", val: "yes", check: func(c Config) bool { return c.NoCheck }},
		{key: "no-check", val: "maybe", wantErr: true},
		{key: "rule", val: "443", check: func(c Config) bool { return len(c.Rules) == 1 }},
		{key: "rule", val: "nope", wantErr: true},
		{key: "workers", val: "4", check: func(c Config) bool { return c.Workers == 4 }},
		{key: "workers", val: "-4", wantErr: true},
		{key: "fail-closed", val: "true", check: func(c Config) bool { return !c.FailOpen }},
		{key: "fail-open", val: "false", check: func(c Config) bool { return !c.FailOpen }},
		{key: "teps", val: "x448, TCPCRYPT_ECDHE_P256", check: func(c Config) bool {
			return len(c.TEPs) == 2 && c.TEPs[0] == crypto.TEPX448 && c.TEPs[1] == crypto.TEPP256
		}},
		{key: "teps", val: "rsa", wantErr: true},
		{key: "teps", val: "x25519,x25519", wantErr: true},
		{key: "teps", val: "", wantErr: true},
		{key: "aeads", val: "chacha20poly1305,AEAD_AES_256_GCM", check: func(c Config) bool {
			return len(c.AEADs) == 2 && c.AEADs[0] == crypto.ChaCha20Poly1305 && c.AEADs[1] == crypto.AES256GCM
		}},
		{key: "aeads", val: "des", wantErr: true},
		{key: "resumption", val: "off", check: func(c Config) bool { return !c.Resumption }},
		{key: "rekey-bytes", val: "2M", check: func(c Config) bool { return c.RekeyBytes == 2<<20 }},
		{key: "rekey-bytes", val: "12", check: func(c Config) bool { return c.RekeyBytes == 12 }},
		{key: "rekey-bytes", val: "1T", wantErr: true},
		{key: "rekey-interval", val: "90s", check: func(c Config) bool { return c.RekeyInterval == 90*time.Second }},
		{key: "rekey-interval", val: "-1s", wantErr: true},
		{key: "liveness", val: "5m", check: func(c Config) bool { return c.Liveness == 5*time.Minute }},
		{key: "liveness", val: "0", check: func(c Config) bool { return c.Liveness == 0 }},
		{key: "liveness", val: "-1s", wantErr: true},
		{key: "max-flows", val: "1000", check: func(c Config) bool { return c.MaxFlows == 1000 }},
		{key: "memory-limit", val: "512M", check: func(c Config) bool { return c.MemoryLimit == 512<<20 }},
		{key: "memory-limit", val: "2G", check: func(c Config) bool { return c.MemoryLimit == 2<<30 }},
		{key: "memory-limit", val: "64K", wantErr: true},
		{key: "memory-limit", val: "lots", wantErr: true},
		{key: "keylog", val: "/tmp/k", check: func(c Config) bool { return c.KeyLog == "/tmp/k" }},
		{key: "check-listen", val: ":7", check: func(c Config) bool { return c.CheckListen == ":7" }},
		{key: "check-listen", val: "[::1]:7", check: func(c Config) bool { return c.CheckListen == "[::1]:7" }},
		{key: "check-listen", val: "somewhere", wantErr: true},
		{key: "metrics", val: "127.0.0.1:9464", check: func(c Config) bool { return c.Metrics == "127.0.0.1:9464" }},
		{key: "metrics", val: ":9464", check: func(c Config) bool { return c.Metrics == ":9464" }},
		{key: "metrics", val: "[::1]:9464", check: func(c Config) bool { return c.Metrics == "[::1]:9464" }},
		{key: "metrics", val: "", check: func(c Config) bool { return c.Metrics == "" }},
		{key: "metrics", val: ":0", wantErr: true},
		{key: "metrics", val: "localhost", wantErr: true},
		{key: "metrics", val: "127.0.0.1", wantErr: true},
		{key: "pprof", val: "true", check: func(c Config) bool { return c.Pprof }},
		{key: "pprof", val: "false", check: func(c Config) bool { return !c.Pprof }},
		{key: "pprof", val: "maybe", wantErr: true},
		{key: "state", val: "", wantErr: true},
		{key: "bogus", val: "1", wantErr: true},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		err := c.Set(tt.key, tt.val)
		if tt.wantErr {
			if !errors.Is(err, ErrUsage) {
				t.Errorf("Set(%q, %q) = %v, want ErrUsage", tt.key, tt.val, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Set(%q, %q): %v", tt.key, tt.val, err)
			continue
		}
		if !tt.check(c) {
			t.Errorf("Set(%q, %q) gave %+v", tt.key, tt.val, c)
		}
	}
}

func TestEveryKeyIsSettable(t *testing.T) {
	samples := map[string]string{
		"queue": "1", "control": "/x", "verbose": "1", "check-server": "h", "no-check": "true",
		"state": "/s", "rule": "1", "workers": "1", "fail-open": "true", "fail-closed": "true",
		"teps": "x25519", "aeads": "aes128gcm", "resumption": "true", "rekey-bytes": "1",
		"rekey-interval": "1s", "liveness": "1m", "max-flows": "1", "memory-limit": "1M", "keylog": "/k", "check-listen": ":1", "metrics": "127.0.0.1:9464",
		"pprof": "true",
	}
	for _, k := range Keys {
		v, ok := samples[k]
		if !ok {
			t.Errorf("no sample for key %q", k)
			continue
		}
		var c Config
		if err := c.Set(k, v); err != nil {
			t.Errorf("Set(%q, %q): %v", k, v, err)
		}
	}
}

func TestSplitCheckServer(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port uint16
		bad  bool
	}{
		{in: "check.example", host: "check.example", port: DefaultCheckPort},
		{in: "check.example:4000", host: "check.example", port: 4000},
		{in: "192.0.2.1", host: "192.0.2.1", port: DefaultCheckPort},
		{in: "[2001:db8::1]:99", host: "2001:db8::1", port: 99},
		{in: "[2001:db8::1]", host: "2001:db8::1", port: DefaultCheckPort},
		{in: "2001:db8::1", host: "2001:db8::1", port: DefaultCheckPort},
		{in: "", bad: true},
		{in: "h:70000", bad: true},
		{in: ":7", bad: true},
	}
	for _, tt := range tests {
		h, p, err := SplitCheckServer(tt.in)
		if (err != nil) != tt.bad || (!tt.bad && (h != tt.host || p != tt.port)) {
			t.Errorf("SplitCheckServer(%q) = %q, %d, %v", tt.in, h, p, err)
		}
	}
}

func TestParseFile(t *testing.T) {
	good := `
# tcpcryptd configuration
queue = 7463-7464
rule = 443
rule = 25:remote:required
verbose=1
fail-closed = true
teps = x25519, p256
`
	got, err := parseFileBytes("t.conf", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"queue", "7463-7464"}, {"rule", "443"}, {"rule", "25:remote:required"},
		{"verbose", "1"}, {"fail-closed", "true"}, {"teps", "x25519, p256"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("parse (-want +got):\n%s", d)
	}
	bad := []struct{ text, wantSub string }{
		{"queue 7463\n", "t.conf:1: want key = value"},
		{"\n\nspeed = 9\n", "t.conf:3: unknown key"},
		{"queue = 1\nqueue = 2\n", `t.conf:2: "queue" already set on line 1`},
		{"rule = 70000\n", "t.conf:1"},
		{"config = other\n", "unknown key"},
		{"fail-open = true\nfail-closed = true\n", "both set"},
		{" = 3\n", "want key = value"},
	}
	for _, b := range bad {
		_, err := parseFileBytes("t.conf", []byte(b.text))
		if err == nil || !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), b.wantSub) {
			t.Errorf("parse %q: err %v, want ErrUsage containing %q", b.text, err, b.wantSub)
		}
	}
	// Each part of a message said once (file and line, setting, reason).
	exact := []struct{ text, want string }{
		{"\n\nrule = 99999\n", `t.conf:3: bad setting: rule "99999": port must be 1..65535`},
		{"rule = 22@banana\n", `t.conf:1: bad setting: rule "22@banana": rules: bad address prefix "banana": want ADDRESS/BITS, such as 10.0.0.0/8 or 2001:db8::/32`},
		{"rule = 22@10.1.2.3/8\n", `t.conf:1: bad setting: rule "22@10.1.2.3/8": rules: bad address prefix 10.1.2.3/8: host bits set (did you mean 10.0.0.0/8?)`},
		{"workers = -1\n", `t.conf:1: bad setting: workers "-1": want a number 0..1024`},
	}
	for _, e := range exact {
		_, err := parseFileBytes("t.conf", []byte(e.text))
		if err == nil || err.Error() != e.want {
			t.Errorf("parse %q:\n got %v\nwant %s", e.text, err, e.want)
		}
	}
	if _, err := ParseFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("ParseFile of a missing file succeeded")
	}
	p := filepath.Join(t.TempDir(), "c.conf")
	os.WriteFile(p, []byte(good), 0o600)
	if got, err := ParseFile(p); err != nil || len(got) != 6 {
		t.Errorf("ParseFile = %v, %v", got, err)
	}
}

func TestValidatePprofNeedsMetrics(t *testing.T) {
	c := DefaultConfig()
	c.Pprof = true
	if err := c.Validate(); !errors.Is(err, ErrUsage) {
		t.Errorf("Validate with pprof and no metrics = %v, want ErrUsage", err)
	}
	c.Metrics = "127.0.0.1:9464"
	if err := c.Validate(); err != nil {
		t.Errorf("Validate with pprof and metrics: %v", err)
	}
}

func TestValidateRejectsOverlappingRules(t *testing.T) {
	c := DefaultConfig()
	c.Set("rule", "443:local")
	c.Set("rule", "443:both:required")
	if err := c.Validate(); !errors.Is(err, ErrUsage) || !errors.Is(err, rules.ErrDuplicate) {
		t.Errorf("Validate = %v, want ErrUsage and rules.ErrDuplicate", err)
	}
}

func TestTEPName(t *testing.T) {
	for id, want := range map[uint8]string{
		0: "", crypto.TEPX25519: "TCPCRYPT_ECDHE_Curve25519", crypto.TEPX448: "TCPCRYPT_ECDHE_Curve448",
		crypto.TEPP256: "TCPCRYPT_ECDHE_P256", crypto.TEPP521: "TCPCRYPT_ECDHE_P521",
		crypto.TEPX25519 | 0x80: "TCPCRYPT_ECDHE_Curve25519", 0x30: "TEP(0x30)",
	} {
		if got := TEPName(id); got != want {
			t.Errorf("TEPName(%#x) = %q, want %q", id, got, want)
		}
	}
}

// TestValidateQueuesAndWorkers: one engine per queue. A single queue number
// reads Workers queues (one per CPU by default); a range decides by itself,
// and a Workers that contradicts it is refused.
func TestValidateQueuesAndWorkers(t *testing.T) {
	tests := []struct {
		queue   string
		workers int
		want    uint16
		wantErr bool
	}{
		{"7463", 3, 3, false},
		{"7463", 0, uint16(runtime.GOMAXPROCS(0)), false},
		{"65535", 4, 1, false}, // no room past the last queue number
		{"100-103", 0, 4, false},
		{"100-103", 4, 4, false},
		{"100-103", 2, 0, true},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		if err := c.Set("queue", tt.queue); err != nil {
			t.Fatal(err)
		}
		c.Workers = tt.workers
		err := c.Validate()
		if tt.wantErr {
			if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "does not match") {
				t.Errorf("queue %s workers %d: %v, want a mismatch error", tt.queue, tt.workers, err)
			}
			continue
		}
		if err != nil || c.QueueCount != tt.want {
			t.Errorf("queue %s workers %d: %d queues, %v; want %d", tt.queue, tt.workers, c.QueueCount, err, tt.want)
		}
	}
}
