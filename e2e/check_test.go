package e2e

import (
	"testing"
	"time"
)

// TestE2EStartupCheck runs the daemon's start-up checks for real: the
// loopback self-test (the default), and the remote check against another
// host's check server (-s against --check-listen). Both must pass, and the
// result must show in tcpcryptctl status.
func TestE2EStartupCheck(t *testing.T) {
	a, b := pair(t)
	b.startDaemonArgs(t, "--rule", "5001:both", "--check-listen", ":7")
	if c := b.status(t).StartupCheck; c.Result != "passed" {
		t.Errorf("self-test on b: %+v", c)
	}
	a.startDaemonArgs(t, "--rule", "5001:both", "-s", b.v4.String()+":7")
	if c := a.status(t).StartupCheck; c.Result != "passed" {
		t.Errorf("remote check from a against b's check server: %+v", c)
	} else {
		t.Logf("remote check: %s", c.Detail)
	}
	// Neither check leaves a flow behind: the check connections closed
	// through the engines and their flows were forgotten.
	for _, h := range []*host{a, b} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			conns := h.netstat(t)
			if len(conns) == 0 {
				break
			}
			if time.Now().After(deadline) {
				for _, c := range conns {
					t.Errorf("%v: flow left by the checks: %v -> %v %s", h, c.Local, c.Remote, c.State)
				}
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
