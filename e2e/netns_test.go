package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/internal/cliutil"
)

// TestE2ENamespacesCollide: the instance lock allows one daemon per network
// namespace, so two namespaces can each run one; given the same control
// socket or state file, the second daemon says which path collides. At the
// default verbosity (no -v) the daemon logs its ready line and nothing per
// connection.
func TestE2ENamespacesCollide(t *testing.T) {
	a, b := newHost(t, "a"), newHost(t, "b")
	for _, h := range []*host{a, b} {
		h.ip(t, "link", "set", "lo", "up")
	}
	first := startProc(a.root, "tcpcryptd@a", false, a.argv(bin(t, "tcpcryptd"), "-f", "-u", a.sock, "--state", a.state, "--rule", "5001")...)
	if !first.waitFor(20*time.Second, func(_, stderr string) bool { return strings.Contains(stderr, "level=NOTICE msg=ready") }) {
		t.Fatalf("first daemon: no NOTICE ready line at the default level:\n%s", tail(first.errb.String(), 20))
	}
	a.daemon = first
	if got := first.errb.String(); strings.Contains(got, "level=INFO") || strings.Contains(got, "level=DEBUG") {
		t.Errorf("default level logged info or debug lines:\n%s", got)
	}

	// Same control socket, another namespace and state file.
	second := startProc(b.root, "tcpcryptd@b-ctl", false, b.argv(bin(t, "tcpcryptd"), "-f", "-u", a.sock, "--state", b.state)...)
	if code := second.wait(t, 20*time.Second); code != 1 {
		t.Fatalf("second daemon on the same control socket exited %d:\n%s", code, second.errb.String())
	}
	if msg := second.errb.String(); !strings.Contains(msg, "control socket "+a.sock+" is taken by another daemon") {
		t.Errorf("shared control socket: message does not name the path:\n%s", msg)
	}
	if b.hasTable(t, "tcpcrypt") {
		t.Error("the refused daemon left its table behind")
	}

	// Same state file, its own control socket.
	third := startProc(b.root, "tcpcryptd@b-state", false, b.argv(bin(t, "tcpcryptd"), "-f", "-u", b.sock, "--state", a.state)...)
	if code := third.wait(t, 20*time.Second); code != 1 {
		t.Fatalf("second daemon on the same state file exited %d:\n%s", code, third.errb.String())
	}
	if msg := third.errb.String(); !strings.Contains(msg, "state file in use by another tcpcryptd: "+a.state+" is locked") {
		t.Errorf("shared state file: message does not name the path:\n%s", msg)
	}

	// With its own paths the second namespace runs its own daemon.
	b.startDaemon(t)
	b.stopDaemon(t)
	a.stopDaemon(t)
	if got := first.errb.String(); !strings.Contains(got, "level=NOTICE msg=\"tcpcryptd stopped\"") {
		t.Errorf("no NOTICE stopped line:\n%s", tail(got, 10))
	}
}

// exitCode is the exit status in err from runCmd (0 for nil, -1 if it did
// not exit).
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// TestE2ECtlAgainstDaemon: against the real daemon, adding a rule in force
// succeeds without a change, an overlapping one is refused, a prefix with
// host bits is a usage error, status leaves zero counters out unless --all,
// and -n NAME reaches the daemon listening at /run/tcpcrypt/NAME/ctl.
func TestE2ECtlAgainstDaemon(t *testing.T) {
	h := newHost(t, "a")
	h.ip(t, "link", "set", "lo", "up")
	name := fmt.Sprintf("e2e-%d", os.Getpid())
	sock, err := cliutil.NetnsAddress(name)
	if err != nil {
		t.Fatal(err)
	}
	// Remove what the test made: the socket's directory, and RunDir if it
	// did not exist before.
	_, statErr := os.Stat(cliutil.RunDir)
	t.Cleanup(func() {
		os.RemoveAll(filepath.Dir(sock))
		if statErr != nil {
			os.Remove(cliutil.RunDir)
		}
	})
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	h.sock = sock
	h.startDaemon(t, "--rule", "5001")

	out, err := h.ctl(t, "rules", "add", "5001")
	if err != nil || out != "exists 5001/local opportunistic (already in force; nothing changed)\n" {
		t.Errorf("add the configured rule again: %q, %v", out, err)
	}
	_, err = h.ctl(t, "rules", "add", "5001", "--mode", "required")
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "duplicate rule") {
		t.Errorf("add an overlapping rule: %v", err)
	}
	_, err = h.ctl(t, "rules", "add", "5002", "--prefix", "10.1.2.3/8")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "host bits set (did you mean 10.0.0.0/8?)") {
		t.Errorf("prefix with host bits: %v", err)
	}
	if _, err := h.ctl(t, "bogus"); exitCode(err) != 2 {
		t.Errorf("unknown command: %v", err)
	}
	if out := h.mustCtl(t, "rules", "list", "--ports"); out != "5001\n" {
		t.Errorf("rules list --ports: %q", out)
	}

	st := h.status(t)
	zeros := 0
	for _, v := range st.Counters {
		if v == 0 {
			zeros++
		}
	}
	if zeros == 0 {
		t.Fatal("the daemon reports no zero counter; the test needs one")
	}
	// Only the counter lines (after "counters:") count.
	counterZeros := func(out string) int {
		_, tail, _ := strings.Cut(out, "counters:")
		return strings.Count(tail, " 0\n")
	}
	def, all := h.mustCtl(t, "status"), h.mustCtl(t, "status", "--all")
	if counterZeros(def) != 0 || !strings.Contains(def, fmt.Sprintf("(%d more are zero; --all shows them)", zeros)) &&
		!strings.HasSuffix(def, "counters:       all zero\n") {
		t.Errorf("status shows zero counters or does not count them (%d zeros):\n%s", zeros, def)
	}
	if got := counterZeros(all); got != zeros {
		t.Errorf("status --all shows %d zero counters, want %d:\n%s", got, zeros, all)
	}

	out, err = h.run(bin(t, "tcpcryptctl"), "-n", name, "rules", "list")
	if err != nil || !strings.Contains(out, "5001") {
		t.Errorf("tcpcryptctl -n %s rules list: %q, %v", name, out, err)
	}
	h.stopDaemon(t)
}
