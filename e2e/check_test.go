package e2e

import (
	"testing"
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
}
