package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
)

// startDaemon starts tcpcryptd in the host's namespace with its own control
// socket and state file, the start-up check skipped (-f) and lifecycle
// logging (-v), plus extra arguments (e.g. "--rule", "5001:both"). It waits
// until the daemon logs that it is ready.
func (h *host) startDaemon(t testing.TB, extra ...string) *proc {
	t.Helper()
	return h.startDaemonArgs(t, append([]string{"-f"}, extra...)...)
}

// startDaemonArgs is startDaemon without -f: the start-up check runs unless
// the arguments say otherwise.
func (h *host) startDaemonArgs(t testing.TB, extra ...string) *proc {
	t.Helper()
	args := append([]string{bin(t, "tcpcryptd"), "-u", h.sock, "--state", h.state, "-v"}, extra...)
	p := startProc(h.root, "tcpcryptd@"+h.name, false, h.argv(args...)...)
	if !p.waitFor(20*time.Second, func(_, stderr string) bool { return strings.Contains(stderr, "msg=ready") }) {
		t.Fatalf("tcpcryptd on %s did not become ready (running: %v):\n%s", h.name, p.running(), tail(p.errb.String(), 30))
	}
	h.daemon = p
	return p
}

// stopDaemon sends SIGTERM and expects a clean exit.
func (h *host) stopDaemon(t testing.TB) {
	t.Helper()
	h.daemon.signal(syscall.SIGTERM)
	if code := h.daemon.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("tcpcryptd on %s exited with %d after SIGTERM:\n%s", h.name, code, tail(h.daemon.errb.String(), 20))
	}
}

// killDaemon sends SIGKILL and reaps the daemon.
func (h *host) killDaemon(t testing.TB) {
	t.Helper()
	h.daemon.kill()
}

// ctl runs tcpcryptctl against the host's daemon.
func (h *host) ctl(t testing.TB, args ...string) (string, error) {
	return h.run(append([]string{bin(t, "tcpcryptctl"), "-u", h.sock}, args...)...)
}

// mustCtl runs tcpcryptctl and fails the test on error.
func (h *host) mustCtl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := h.ctl(t, args...)
	if err != nil {
		t.Fatalf("tcpcryptctl on %s: %v", h.name, err)
	}
	return out
}

// netstat returns `tcnetstat --json` of the host's daemon.
func (h *host) netstat(t testing.TB) []ctl.Conn {
	t.Helper()
	out := h.must(t, bin(t, "tcnetstat"), "-u", h.sock, "--json")
	var conns []ctl.Conn
	if err := json.Unmarshal([]byte(out), &conns); err != nil {
		t.Fatalf("tcnetstat --json on %s: %v\n%s", h.name, err, out)
	}
	return conns
}

// status returns `tcpcryptctl status --json`.
func (h *host) status(t testing.TB) ctl.Status {
	t.Helper()
	out := h.mustCtl(t, "status", "--json")
	var st ctl.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json on %s: %v\n%s", h.name, err, out)
	}
	return st
}

// counter returns one counter of the daemon's status.
func (h *host) counter(t testing.TB, name string) uint64 {
	t.Helper()
	st := h.status(t)
	v, ok := st.Counters[name]
	if !ok {
		t.Fatalf("%s: no counter %q in status (have %d counters)", h.name, name, len(st.Counters))
	}
	return v
}

// rules returns `tcpcryptctl rules list --json`.
func (h *host) rules(t testing.TB) []ctl.Rule {
	t.Helper()
	out := h.mustCtl(t, "rules", "list", "--json")
	var rs []ctl.Rule
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("rules list --json on %s: %v\n%s", h.name, err, out)
	}
	return rs
}

// logCounters logs the daemon's non-zero counters that explain trouble:
// drops, aborts, fallbacks, retransmissions, truncated packets.
func (h *host) logCounters(t testing.TB) {
	t.Helper()
	if h.daemon == nil || !h.daemon.running() {
		return
	}
	out, err := h.ctl(t, "status", "--json")
	if err != nil {
		t.Logf("%s: status: %v", h.name, err)
		return
	}
	var st ctl.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(st.Counters)) {
		v := st.Counters[k]
		interesting := strings.Contains(k, "drop") || strings.Contains(k, "abort") || strings.Contains(k, "fallback") ||
			strings.Contains(k, "retransmit") || strings.Contains(k, "truncated") || strings.Contains(k, "encrypted") ||
			strings.Contains(k, "enobufs")
		if v != 0 && interesting {
			parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		}
	}
	t.Logf("%s daemon counters: %s", h.name, strings.Join(parts, " "))
}
