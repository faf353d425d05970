package daemon

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/rules"
)

func TestStartupCheckSkippedWithoutLookup(t *testing.T) {
	d, _, ft := testDaemon(t, 1)
	cfg := d.cfg
	cfg.NoCheck = true
	cfg.CheckServer = "check-server.invalid" // must not even be resolved
	start := time.Now()
	d.startupCheck(context.Background(), cfg)
	if c := d.checkResult(); c.Result != CheckSkipped || !strings.Contains(c.Detail, "no-check") {
		t.Errorf("check = %+v", c)
	}
	if time.Since(start) > time.Second || len(ft.applied) != 0 {
		t.Errorf("a skipped check did work: %v, %d rule sets applied", time.Since(start), len(ft.applied))
	}
}

func TestRemoteCheckFailures(t *testing.T) {
	d, _, ft := testDaemon(t, 1)
	// Nobody listens on this port: connection refused, and the temporary
	// rule is gone afterwards.
	ln, _ := net.Listen("tcp4", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c := d.remoteCheck(context.Background(), addr)
	if c.Result != CheckFailed || !strings.Contains(c.Detail, "connect") {
		t.Errorf("refused: %+v", c)
	}
	if n := len(ft.applied); n != 2 || len(ft.applied[1]) != 0 {
		t.Errorf("temporary rule not removed: %v", ft.applied)
	}
	if c := d.remoteCheck(context.Background(), "host:0"); c.Result != CheckFailed {
		t.Errorf("bad address: %+v", c)
	}
	// A server that reports no session id.
	ln, _ = net.Listen("tcp4", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "none: plain\n")
	}()
	c = d.remoteCheck(context.Background(), ln.Addr().String())
	if c.Result != CheckFailed || !strings.Contains(c.Detail, "not tracked") {
		t.Errorf("no session: %+v", c)
	}
}

// TestSelfTestFailsWithoutEncryption: engines that never see the check's
// traffic fail the self-test. Its temporary rules, one per loopback family
// the host has, are applied in one apply and removed in one more.
func TestSelfTestFailsWithoutEncryption(t *testing.T) {
	d, _, ft := testDaemon(t, 1) // engines that never see the traffic
	families := 1
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		ln.Close()
		families = 2
	}
	c := d.selfTest(context.Background())
	if c.Result != CheckFailed || !strings.Contains(c.Detail, "not tracked") {
		t.Errorf("self-test = %+v", c)
	}
	if len(ft.applied) != 2 {
		t.Fatalf("%d applies, want 2 (add, remove): %v", len(ft.applied), ft.applied)
	}
	if n := len(ft.applied[0]); n != families {
		t.Errorf("the first apply holds %d rules, want the temporary rules of %d families: %v", n, families, ft.applied[0])
	}
	for _, p := range ft.applied[0] {
		if p.Side != rules.SideBoth || p.Mode != rules.ModeOpportunistic || p.Prefix.IsValid() {
			t.Errorf("temporary rule %+v", p)
		}
	}
	if len(ft.applied[1]) != 0 {
		t.Errorf("temporary rules left: %v", ft.applied[1])
	}
}

func TestCheckServerAnswersNone(t *testing.T) {
	d, _, _ := testDaemon(t, 1)
	cs, err := d.listenCheckServer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cs.serve(ctx); close(done) }()
	c, err := net.Dial("tcp", cs.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, checkHello)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "none: ") {
		t.Errorf("answer %q, %v", line, err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("check server did not stop")
	}
	if got := checkListenRule(Config{CheckListen: ":7"}, nil); len(got) != 1 || got[0].Port != 7 {
		t.Errorf("checkListenRule = %v", got)
	}
}
