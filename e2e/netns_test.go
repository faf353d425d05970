package e2e

import (
	"strings"
	"testing"
	"time"
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
