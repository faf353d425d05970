package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/ctl/ctltest"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

var cmpOpts = cmpopts.EquateComparable(netip.AddrPort{}, netip.Prefix{})

// exec runs tcpcryptctl with args and returns stdout, stderr and exit status.
func exec(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runMain(context.Background(), append([]string{"tcpcryptctl"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func newBackend() *ctltest.Backend {
	return &ctltest.Backend{
		StatusValue: ctl.Status{
			Version: "0.9.0", UptimeSeconds: 3725.4, Queues: []uint16{0, 1, 2}, Balance: "flow",
			Counters:     map[string]uint64{"fallback_no_eno": 3, "aborted_bad_tag": 1},
			StartupCheck: ctl.Check{Result: "failed", Detail: "raw socket: permission denied"},
		},
		Conns: []ctl.Conn{ctltest.SampleConn(4), {
			Local: netip.MustParseAddrPort("192.0.2.1:5555"), Remote: netip.MustParseAddrPort("192.0.2.9:80"), State: "plain",
		}},
		RuleList: []ctl.Rule{
			{Port: 443, Side: ctl.SideLocal, Mode: ctl.ModeOpportunistic},
			{Port: 25, Side: ctl.SideRemote, Prefix: netip.MustParsePrefix("2001:db8::/32"), Mode: ctl.ModeRequired},
		},
	}
}

func TestRules(t *testing.T) {
	testenv.RequireRoot(t, "rule changes need root on the unix socket")
	b := newBackend()
	path := ctltest.Start(t, ctlserver.Config{Backend: b})

	out, errOut, code := exec(t, "-u", path, "rules", "list")
	want := "PORT  SIDE    PREFIX         MODE\n" +
		"443   local   -              opportunistic\n" +
		"25    remote  2001:db8::/32  required\n"
	if code != 0 || out != want {
		t.Errorf("rules list: exit %d stderr %q\n got:\n%s\nwant:\n%s", code, errOut, out, want)
	}

	// Flags before and after PORT; defaults side=local, mode=opportunistic.
	for _, args := range [][]string{
		{"rules", "add", "--side", "both", "22", "--prefix", "10.0.0.0/8", "--mode", "required"},
		{"rules", "add", "8080"},
	} {
		out, errOut, code := exec(t, append([]string{"-u", path}, args...)...)
		if code != 0 || !strings.HasPrefix(out, "added ") {
			t.Errorf("%v: exit %d out %q err %q", args, code, out, errOut)
		}
	}
	out, _, code = exec(t, "-u", path, "rules", "del", "443")
	if code != 0 || out != "deleted 443/local opportunistic\n" {
		t.Errorf("rules del: exit %d %q", code, out)
	}
	out, _, code = exec(t, "-u", path, "rules", "list", "--json")
	var got []ctl.Rule
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
		t.Fatalf("rules list --json: exit %d %v\n%s", code, err, out)
	}
	wantRules := []ctl.Rule{
		{Port: 25, Side: ctl.SideRemote, Prefix: netip.MustParsePrefix("2001:db8::/32"), Mode: ctl.ModeRequired},
		{Port: 22, Side: ctl.SideBoth, Prefix: netip.MustParsePrefix("10.0.0.0/8"), Mode: ctl.ModeRequired},
		{Port: 8080, Side: ctl.SideLocal, Mode: ctl.ModeOpportunistic},
	}
	if diff := cmp.Diff(wantRules, got, cmpOpts); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	if !strings.Contains(out, `"prefix": "10.0.0.0/8"`) || strings.Count(out, `"prefix"`) != 2 {
		t.Errorf("JSON prefix field: %s", out)
	}

	// Deleting what is not there, and refused changes.
	if _, errOut, code := exec(t, "-u", path, "rules", "del", "9999"); code != 1 || !strings.Contains(errOut, "no such rule") {
		t.Errorf("del missing: exit %d %q", code, errOut)
	}
	// Adding a rule in force exactly succeeds and changes nothing.
	if out, errOut, code := exec(t, "-u", path, "rules", "add", "8080"); code != 0 || errOut != "" ||
		out != "exists 8080/local opportunistic (already in force; nothing changed)\n" {
		t.Errorf("add existing: exit %d out %q err %q", code, out, errOut)
	}
	if out, _, _ := exec(t, "-u", path, "rules", "list", "--json"); strings.Count(out, `"port": 8080`) != 1 {
		t.Errorf("after adding an existing rule: %s", out)
	}

}

func TestRulesOverTCPForbidden(t *testing.T) {
	srv, err := ctlserver.NewServer(ctlserver.Config{Backend: newBackend()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addrs()[0].String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	_, errOut, code := exec(t, "-u", addr, "rules", "add", "22")
	if code != 1 || !strings.Contains(errOut, "forbidden") || !strings.Contains(errOut, "need root") {
		t.Errorf("add over TCP: exit %d %q", code, errOut)
	}
	if out, _, code := exec(t, "-u", addr, "rules", "list"); code != 0 || !strings.Contains(out, "443") {
		t.Errorf("list over TCP: exit %d %q", code, out)
	}
}

func TestStatus(t *testing.T) {
	path := ctltest.Start(t, ctlserver.Config{Backend: newBackend()})
	out, errOut, code := exec(t, "-u", path, "status")
	want := `version:        0.9.0
uptime:         1h2m5s
queues:         0,1,2 (connections spread by flow)
rules:          2
connections:    2
fail-open:      no (covered traffic is dropped while the daemon is down)
startup check:  failed (raw socket: permission denied)
counters:
  aborted_bad_tag  1
  fallback_no_eno  3
`
	if code != 0 || out != want {
		t.Errorf("status: exit %d stderr %q\n got:\n%s\nwant:\n%s", code, errOut, out, want)
	}
	// Zero counters are left out unless --all; --json has them all.
	b := newBackend()
	b.StatusValue.Counters["engine_drop_gap"] = 0
	b.StatusValue.Counters["engine_drop_invalid"] = 0
	zpath := ctltest.Start(t, ctlserver.Config{Backend: b})
	out, _, code = exec(t, "-u", zpath, "status")
	if wantTail := "counters:\n  aborted_bad_tag  1\n  fallback_no_eno  3\n  (2 more are zero; --all shows them)\n"; code != 0 || !strings.HasSuffix(out, wantTail) {
		t.Errorf("status with zeros: exit %d\n%s\nwant the tail\n%s", code, out, wantTail)
	}
	out, _, code = exec(t, "-u", zpath, "status", "--all")
	if wantTail := "counters:\n  aborted_bad_tag      1\n  engine_drop_gap      0\n  engine_drop_invalid  0\n  fallback_no_eno      3\n"; code != 0 || !strings.HasSuffix(out, wantTail) {
		t.Errorf("status --all: exit %d\n%s\nwant the tail\n%s", code, out, wantTail)
	}
	b.StatusValue.Counters = map[string]uint64{"engine_drop_gap": 0}
	out, _, _ = exec(t, "-u", zpath, "status")
	if !strings.HasSuffix(out, "startup check:  failed (raw socket: permission denied)\ncounters:       all zero\n") {
		t.Errorf("status, all zero:\n%s", out)
	}
	out, _, code = exec(t, "-u", path, "status", "--json")
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --json: exit %d %v", code, err)
	}
	for _, k := range []string{"version", "uptime_seconds", "queues", "rules", "connections", "counters", "startup_check", "fail_open"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status JSON lacks %q: %s", k, out)
		}
	}
}

func TestSessID(t *testing.T) {
	path := ctltest.Start(t, ctlserver.Config{Backend: newBackend()})
	c := ctltest.SampleConn(4)
	out, errOut, code := exec(t, "-u", path, "sessid", c.Local.String(), c.Remote.String())
	if want := c.SessionID.String() + " A\n"; code != 0 || out != want {
		t.Errorf("sessid: exit %d out %q err %q; want %q", code, out, errOut, want)
	}
	out, _, code = exec(t, "-u", path, "sessid", "--json", c.Local.String(), c.Remote.String())
	var got ctl.Conn
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || got.SessionID.String() != c.SessionID.String() {
		t.Errorf("sessid --json: exit %d %v %s", code, err, out)
	}
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"192.0.2.1:5555", "192.0.2.9:80"}, 1, "not encrypted"},
		{[]string{"192.0.2.1:1", "192.0.2.9:80"}, 1, "not tracked"},
		{[]string{"192.0.2.1:1"}, 2, "needs LOCAL and REMOTE"},
		{[]string{"192.0.2.1", "192.0.2.9:80"}, 2, "LOCAL"},
	}
	for _, tt := range tests {
		out, errOut, code := exec(t, append([]string{"-u", path, "sessid"}, tt.args...)...)
		if code != tt.code || out != "" || !strings.Contains(errOut, tt.stderr) {
			t.Errorf("sessid %v: exit %d out %q err %q; want %d, %q", tt.args, code, out, errOut, tt.code, tt.stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	path := ctltest.Start(t, ctlserver.Config{Backend: newBackend(), DaemonVersion: "0.9.0"})
	out, _, code := exec(t, "-u", path, "version")
	want := "tcpcryptctl dev (control protocol 1)\ntcpcryptd 0.9.0 (control protocol 1)\n"
	if code != 0 || out != want {
		t.Errorf("version: exit %d %q", code, out)
	}
}

func TestUsageAndUnavailable(t *testing.T) {
	absent := filepath.Join(t.TempDir(), "nobody")
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"-u", absent, "status"}, 1, "daemon unavailable"},
		{[]string{"-u", absent, "rules", "list"}, 1, "is tcpcryptd running"},
		{[]string{"-u", absent, "rules", "add"}, 2, "missing PORT"},
		{[]string{"-u", absent, "rules", "add", "0"}, 2, "PORT must be"},
		{[]string{"-u", absent, "rules", "add", "70000"}, 2, "PORT must be"},
		{[]string{"-u", absent, "rules", "add", "22", "--side", "up"}, 2, "side"},
		{[]string{"-u", absent, "rules", "add", "22", "--mode", "maybe"}, 2, "mode"},
		{[]string{"-u", absent, "rules", "add", "22", "--prefix", "10.1.2.3/8"}, 2, "host bits"},
		{[]string{"-u", absent, "rules", "add", "22", "--prefix", "nonsense"}, 2, "--prefix"},
		{[]string{"-u", absent, "rules", "add", "22", "23"}, 2, "unexpected argument"},
		{[]string{"-u", absent, "rules", "add", "22", "--bogus"}, 2, "bogus"},
		{[]string{"-u", absent, "status", "extra"}, 2, "unexpected argument"},
		{[]string{"-u", absent, "status", "--bogus"}, 2, "bogus"},
		{[]string{"-u", "192.0.2.1:7", "status"}, 2, "loopback"},
	}
	for _, tt := range tests {
		_, errOut, code := exec(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.stderr) {
			t.Errorf("%v: exit %d stderr %q; want %d, %q", tt.args, code, errOut, tt.code, tt.stderr)
		}
	}
}

// TestUsageExitStatus: every usage error exits 2 with one message naming
// the problem once; -V and --version print the version; -v is no flag here
// (it is --verbose in tcpcryptd).
func TestUsageExitStatus(t *testing.T) {
	absent := filepath.Join(t.TempDir(), "nobody")
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{nil, 2, "", "tcpcryptctl: missing command (see tcpcryptctl --help)\n"},
		{[]string{"bogus"}, 2, "", "tcpcryptctl: unknown command \"bogus\" (see tcpcryptctl --help)\n"},
		{[]string{"rules"}, 2, "", "tcpcryptctl: missing command (see tcpcryptctl rules --help)\n"},
		{[]string{"rules", "bogus"}, 2, "", "tcpcryptctl: unknown command \"bogus\" (see tcpcryptctl rules --help)\n"},
		{[]string{"--bogus", "status"}, 2, "", "tcpcryptctl: flag provided but not defined: -bogus\n"},
		{[]string{"-v", "status"}, 2, "", "tcpcryptctl: flag provided but not defined: -v\n"},
		{[]string{"-V"}, 0, "tcpcryptctl version dev\n", ""},
		{[]string{"--version"}, 0, "tcpcryptctl version dev\n", ""},
		{[]string{"-u", absent, "rules", "add", "22", "--prefix", "banana"}, 2, "",
			"tcpcryptctl: --prefix: rules: bad address prefix \"banana\": want ADDRESS/BITS, such as 10.0.0.0/8 or 2001:db8::/32\n"},
		{[]string{"-u", absent, "rules", "add", "22", "--prefix", "10.1.2.3/8"}, 2, "",
			"tcpcryptctl: --prefix: rules: bad address prefix 10.1.2.3/8: host bits set (did you mean 10.0.0.0/8?)\n"},
		{[]string{"-n", "../etc", "status"}, 2, "",
			"tcpcryptctl: bad network namespace name \"../etc\": want the name of a file in /run/netns\n"},
		{[]string{"-n", "blue", "-u", absent, "status"}, 2, "", "tcpcryptctl: --address and --netns exclude each other\n"},
	}
	for _, tt := range tests {
		out, errOut, code := exec(t, tt.args...)
		if code != tt.code || out != tt.stdout || errOut != tt.stderr {
			t.Errorf("%q: exit %d\nstdout %q\nstderr %q\nwant %d, %q, %q", tt.args, code, out, errOut, tt.code, tt.stdout, tt.stderr)
		}
	}
}

// TestNetnsAddress: -n NAME dials the socket of tcpcryptd@NAME.service.
func TestNetnsAddress(t *testing.T) {
	_, errOut, code := exec(t, "-n", "tcpcrypt-test-none", "status")
	if code != 1 || !strings.Contains(errOut, "/run/tcpcrypt/tcpcrypt-test-none/ctl") {
		t.Errorf("-n: exit %d, %q; want 1 naming /run/tcpcrypt/tcpcrypt-test-none/ctl", code, errOut)
	}
}

// overlapBackend refuses every rule change, as the daemon refuses a rule
// that overlaps one in force.
type overlapBackend struct{ *ctltest.Backend }

func (overlapBackend) AddRule(context.Context, ctl.Rule) error {
	return fmt.Errorf("%w: rules: duplicate rule", ctl.ErrBadRequest)
}

// TestAddOverlappingRefused: only an identical rule counts as existing.
func TestAddOverlappingRefused(t *testing.T) {
	testenv.RequireRoot(t, "rule changes need root on the unix socket")
	path := ctltest.Start(t, ctlserver.Config{Backend: overlapBackend{newBackend()}})
	if out, errOut, code := exec(t, "-u", path, "rules", "add", "443", "--mode", "required"); code != 1 || out != "" || !strings.Contains(errOut, "duplicate rule") {
		t.Errorf("overlapping add: exit %d out %q err %q", code, out, errOut)
	}
	if out, _, code := exec(t, "-u", path, "rules", "add", "443"); code != 0 || !strings.HasPrefix(out, "exists 443/local opportunistic") {
		t.Errorf("identical add: exit %d out %q", code, out)
	}
}

// TestRulesListPorts: the hidden --ports flag that completion uses prints
// the distinct ports of the rules, one a line.
func TestRulesListPorts(t *testing.T) {
	b := newBackend()
	b.RuleList = append(b.RuleList, ctl.Rule{Port: 25, Side: ctl.SideLocal, Mode: ctl.ModeExclude})
	path := ctltest.Start(t, ctlserver.Config{Backend: b})
	out, errOut, code := exec(t, "-u", path, "rules", "list", "--ports")
	if code != 0 || out != "25\n443\n" {
		t.Errorf("rules list --ports: exit %d out %q err %q", code, out, errOut)
	}
}

// TestCompletionRulesDel: bash completion of "rules del" offers the ports
// the program lists, asking with the global options typed so far.
func TestCompletionRulesDel(t *testing.T) {
	bash, err := osexec.LookPath("bash")
	if err != nil {
		testenv.Skip(t, "bash not found")
	}
	dir := t.TempDir()
	stub := filepath.Join(dir, "tcpcryptctl")
	argsFile := filepath.Join(dir, "args")
	script := "#!/bin/sh\necho \"$@\" > " + argsFile + "\nprintf '22\\n443\\n8080\\n'\n"
	if err := os.WriteFile(stub, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	prog := `source ../../completion/tcpcryptctl
COMP_WORDS=(` + stub + ` -u /x/ctl rules del 4); COMP_CWORD=5
_tcpcryptctl; echo "${COMPREPLY[*]}"
COMP_WORDS=(` + stub + ` rules del --); COMP_CWORD=3
_tcpcryptctl; echo "${COMPREPLY[*]}"`
	out, err := osexec.Command(bash, "-c", prog).CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	if want := "443\n--side --prefix --mode --option --help\n"; string(out) != want {
		t.Errorf("completions %q, want %q", out, want)
	}
	args, _ := os.ReadFile(argsFile)
	if string(args) != "-u /x/ctl rules list --ports\n" {
		t.Errorf("completion ran the program with %q", args)
	}
}

// TestFlushCache: flush-cache prints how many secrets went and exits 0;
// an untracked connection exits 1 with the daemon's reason; a missing or
// bad tuple is a usage error (2); over TCP it is forbidden (1).
func TestFlushCache(t *testing.T) {
	testenv.RequireRoot(t, "flush-cache needs root on the unix socket")
	b := newBackend()
	c := ctltest.SampleConn(4)
	b.Cached = map[[2]netip.AddrPort]int{{c.Local, c.Remote}: 1}
	path := ctltest.Start(t, ctlserver.Config{Backend: b})
	out, errOut, code := exec(t, "-u", path, "flush-cache", c.Local.String(), c.Remote.String())
	if want := fmt.Sprintf("flushed 1 %s -> %s\n", c.Local, c.Remote); code != 0 || out != want {
		t.Errorf("flush-cache: exit %d out %q err %q; want %q", code, out, errOut, want)
	}
	out, _, code = exec(t, "-u", path, "flush-cache", c.Local.String(), c.Remote.String())
	if want := fmt.Sprintf("flushed 0 %s -> %s\n", c.Local, c.Remote); code != 0 || out != want {
		t.Errorf("flush-cache again: exit %d out %q; want %q", code, out, want)
	}
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"192.0.2.1:1", "192.0.2.9:80"}, 1, "not tracked"},
		{[]string{"192.0.2.1:1"}, 2, "flush-cache needs LOCAL and REMOTE"},
		{[]string{"192.0.2.1:1", "remote"}, 2, "REMOTE"},
	} {
		out, errOut, code := exec(t, append([]string{"-u", path, "flush-cache"}, tt.args...)...)
		if code != tt.code || out != "" || !strings.Contains(errOut, tt.stderr) {
			t.Errorf("flush-cache %v: exit %d out %q err %q; want %d, %q", tt.args, code, out, errOut, tt.code, tt.stderr)
		}
	}

	srv, err := ctlserver.NewServer(ctlserver.Config{Backend: newBackend()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	_, errOut, code = exec(t, "-u", srv.Addrs()[0].String(), "flush-cache", c.Local.String(), c.Remote.String())
	if code != 1 || !strings.Contains(errOut, "forbidden") || !strings.Contains(errOut, "flush-cache need root") {
		t.Errorf("flush-cache over TCP: exit %d %q", code, errOut)
	}
}

// TestRulesOptions: --option (repeated or comma-separated, before or after
// PORT) adds a rule with options, the list shows an OPTIONS column, and a
// bad option is a usage error.
func TestRulesOptions(t *testing.T) {
	testenv.RequireRoot(t, "rule changes need root on the unix socket")
	b := newBackend()
	path := ctltest.Start(t, ctlserver.Config{Backend: b})
	out, errOut, code := exec(t, "-u", path, "rules", "add", "--option", "noresume", "8443", "--mode", "required", "--option", "nocache,appaware")
	if code != 0 || out != "added 8443/local required +noresume+nocache+appaware\n" {
		t.Fatalf("rules add: exit %d out %q err %q", code, out, errOut)
	}
	out, _, code = exec(t, "-u", path, "rules", "list")
	want := "PORT  SIDE    PREFIX         MODE           OPTIONS\n" +
		"443   local   -              opportunistic  -\n" +
		"25    remote  2001:db8::/32  required       -\n" +
		"8443  local   -              required       noresume,nocache,appaware\n"
	if code != 0 || out != want {
		t.Errorf("rules list:\n%s\nwant:\n%s", out, want)
	}
	out, _, _ = exec(t, "-u", path, "rules", "list", "--json")
	if !strings.Contains(out, `"options": [`) || strings.Count(out, `"options"`) != 1 {
		t.Errorf("rules list --json:\n%s\nwant one options member", out)
	}
	// The same rule again exists already (exit 0); deleting needs the options.
	if out, _, code := exec(t, "-u", path, "rules", "add", "8443", "--mode", "required", "--option", "appaware,nocache,noresume"); code != 0 || !strings.HasPrefix(out, "exists ") {
		t.Errorf("re-add: exit %d %q", code, out)
	}
	if _, errOut, code := exec(t, "-u", path, "rules", "del", "8443", "--mode", "required"); code != 1 || !strings.Contains(errOut, "no such rule") {
		t.Errorf("del without the options: exit %d %q", code, errOut)
	}
	if out, _, code := exec(t, "-u", path, "rules", "del", "8443", "--mode", "required", "--option", "noresume,nocache,appaware"); code != 0 || !strings.HasPrefix(out, "deleted ") {
		t.Errorf("del: exit %d %q", code, out)
	}
	for _, args := range [][]string{
		{"rules", "add", "22", "--option", "fast"},
		{"rules", "add", "22", "--option", "nocache", "--option", "nocache"},
		{"rules", "add", "22", "--mode", "exclude", "--option", "noresume"},
	} {
		_, errOut, code := exec(t, append([]string{"-u", path}, args...)...)
		if code != 2 || !strings.Contains(errOut, "option") {
			t.Errorf("%v: exit %d %q, want a usage error about the option", args, code, errOut)
		}
	}
}

// TestRulesListSource: when the daemon says where its rules come from,
// rules list prints a SOURCE column and --json a source member.
func TestRulesListSource(t *testing.T) {
	b := &ctltest.Backend{RuleList: []ctl.Rule{
		{Port: 443, Side: ctl.SideLocal, Mode: ctl.ModeOpportunistic, Source: "/etc/tcpcrypt/tcpcryptd.conf"},
		{Port: 25, Side: ctl.SideRemote, Mode: ctl.ModeRequired, Source: "state"},
	}}
	path := ctltest.Start(t, ctlserver.Config{Backend: b})
	out, errOut, code := exec(t, "-u", path, "rules", "list")
	want := "PORT  SIDE    PREFIX  MODE           SOURCE\n" +
		"443   local   -       opportunistic  /etc/tcpcrypt/tcpcryptd.conf\n" +
		"25    remote  -       required       state\n"
	if code != 0 || out != want {
		t.Errorf("rules list: exit %d err %q\n%s\nwant:\n%s", code, errOut, out, want)
	}
	out, _, _ = exec(t, "-u", path, "rules", "list", "--json")
	if strings.Count(out, `"source"`) != 2 || !strings.Contains(out, `"source": "state"`) {
		t.Errorf("rules list --json:\n%s\nwant a source member per rule", out)
	}
}
