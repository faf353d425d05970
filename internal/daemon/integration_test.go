package daemon_test

// The TestIntegration* tests run the real daemon binary inside fresh network
// namespaces (`ip netns exec NAME tcpcryptd ...`) and talk to it over its
// control socket. They need root; without it they skip with a message. A
// daemon is a subprocess so that every goroutine it starts lives in the
// namespace. Every wait is bounded, and daemons and namespaces are removed
// even when a test fails.

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/internal/daemon"
	"github.com/tcpcryptd/tcpcrypt/internal/netns"
	"github.com/tcpcryptd/tcpcrypt/internal/syncbuf"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 15 * time.Second
	ioTimeout    = 5 * time.Second
	testPort     = 5001
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// daemonBinary builds cmd/tcpcryptd once per test run.
func daemonBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tcpcryptd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "tcpcryptd")
		out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/tcpcryptd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	daemon.RunTestHelper() // a child process of a test, when asked to be one
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// daemonProc is one daemon subprocess.
type daemonProc struct {
	t    *testing.T
	ns   *netns.NS
	cmd  *exec.Cmd
	log  *syncbuf.Buffer
	sock string
	done chan struct{}
	err  error // Wait's result, once done is closed
}

// startDaemon starts the daemon in ns with -v, a control socket and a state
// file in dir, and args; it waits until the daemon logs "ready".
func startDaemon(t *testing.T, ns *netns.NS, dir string, args ...string) *daemonProc {
	t.Helper()
	sock := filepath.Join(dir, "ctl")
	full := append([]string{"netns", "exec", ns.Name(), daemonBinary(t), "-v",
		"-u", sock, "--state", filepath.Join(dir, "rules.json"), "--workers", "2"}, args...)
	p := &daemonProc{t: t, ns: ns, cmd: exec.Command("ip", full...), log: &syncbuf.Buffer{}, sock: sock,
		done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("daemon log (%s):\n%s", ns.Name(), p.log.String())
		}
	})
	deadline := time.After(readyTimeout)
	for !strings.Contains(p.log.String(), "msg=ready") {
		select {
		case <-p.done:
			t.Fatalf("daemon exited before ready (%v):\n%s", p.err, p.log.String())
		case <-deadline:
			t.Fatalf("daemon not ready after %v:\n%s", readyTimeout, p.log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return p
}

func (p *daemonProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.t.Errorf("daemon did not die after SIGKILL")
	}
}

// stop sends sig and waits for the exit; it returns the exit error.
func (p *daemonProc) stop(sig os.Signal) error {
	p.t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(stopTimeout):
		p.t.Fatalf("daemon did not stop within %v after %v", stopTimeout, sig)
		return nil
	}
}

func (p *daemonProc) client() *ctl.Client {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	c, err := ctl.Dial(ctx, p.sock)
	if err != nil {
		p.t.Fatalf("ctl dial: %v", err)
	}
	p.t.Cleanup(func() { c.Close() })
	return c
}

func (p *daemonProc) status() ctl.Status {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	st, err := p.client().Status(ctx)
	if err != nil {
		p.t.Fatalf("status: %v", err)
	}
	return st
}

// sessionFor returns the daemon's Conn for (local, remote), waiting up to
// ioTimeout for a session id.
func (p *daemonProc) sessionFor(local, remote net.Addr) (ctl.Conn, error) {
	c := p.client()
	l, r := local.(*net.TCPAddr).AddrPort(), remote.(*net.TCPAddr).AddrPort()
	deadline := time.Now().Add(ioTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		conn, err := c.SessionIDFor(ctx, l, r)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return conn, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hasTable reports whether ns has the daemon's nftables table.
func hasTable(t *testing.T, ns *netns.NS) bool {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns.Name(), "nft", "list", "tables").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list tables: %v\n%s", err, out)
	}
	return strings.Contains(string(out), "inet tcpcrypt")
}

// listen opens a TCP listener inside ns.
func listen(t *testing.T, ns *netns.NS, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dial connects from inside ns.
func dial(t *testing.T, ns *netns.NS, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	if err := ns.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", addr, ioTimeout)
		return err
	}); err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// accept accepts one connection, bounded.
func accept(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(ioTimeout))
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends a message each way and checks it arrives intact.
func exchange(a, b net.Conn) error {
	for _, dir := range []struct {
		from, to net.Conn
		msg      string
	}{{a, b, "hello from the client\n"}, {b, a, "hello from the server\n"}} {
		dir.from.SetDeadline(time.Now().Add(ioTimeout))
		dir.to.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := io.WriteString(dir.from, dir.msg); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		got := make([]byte, len(dir.msg))
		if _, err := io.ReadFull(dir.to, got); err != nil {
			return fmt.Errorf("read %q: %w (got %q)", dir.msg, err, got)
		}
		if string(got) != dir.msg {
			return fmt.Errorf("sent %q, received %q", dir.msg, got)
		}
	}
	return nil
}

// checkSameSession requires both ends' flows to have one session id and
// opposite roles.
func checkSameSession(t *testing.T, pa, pb *daemonProc, client, server net.Conn) {
	t.Helper()
	ca, err := pa.sessionFor(client.LocalAddr(), client.RemoteAddr())
	if err != nil {
		t.Errorf("client end: %v", err)
		return
	}
	cb, err := pb.sessionFor(server.LocalAddr(), server.RemoteAddr())
	if err != nil {
		t.Errorf("server end: %v", err)
		return
	}
	if len(ca.SessionID) < 33 || !bytes.Equal(ca.SessionID, cb.SessionID) {
		t.Errorf("session ids: client %v, server %v", ca.SessionID, cb.SessionID)
	}
	if ca.Role != ctl.RoleA || cb.Role != ctl.RoleB {
		t.Errorf("roles: client %q, server %q; want A and B", ca.Role, cb.Role)
	}
	if ca.TEP.Name == "" || ca.AEAD == "" {
		t.Errorf("client end lacks TEP or AEAD: %+v", ca)
	}
}

// TestIntegrationLoopback: one daemon, loopback connections in one
// namespace. The start-up self-test must pass, a transfer on a covered port
// must be encrypted with the same session id at both ends, and SIGTERM must
// remove the table and exit 0.
func TestIntegrationLoopback(t *testing.T) {
	ns := netns.NewForTest(t)
	keylog := filepath.Join(t.TempDir(), "keys.log")
	p := startDaemon(t, ns, t.TempDir(), "--rule", fmt.Sprintf("%d:both", testPort), "--keylog", keylog)
	if !hasTable(t, ns) {
		t.Fatal("no table while running")
	}
	st := p.status()
	if st.StartupCheck.Result != "passed" {
		t.Errorf("start-up check %q: %s", st.StartupCheck.Result, st.StartupCheck.Detail)
	}
	if st.Rules != 1 || len(st.Queues) != 2 { // --workers 2: two queues, one engine each
		t.Errorf("status: %+v", st)
	}

	ln := listen(t, ns, fmt.Sprintf("127.0.0.1:%d", testPort))
	client := dial(t, ns, ln.Addr().String())
	server := accept(t, ln)
	if err := exchange(client, server); err != nil {
		t.Errorf("loopback transfer: %v", err)
	} else {
		checkSameSession(t, p, p, client, server)
		// The key log holds this session's secret: both ends log it.
		if c, err := p.sessionFor(client.LocalAddr(), client.RemoteAddr()); err == nil {
			b, _ := os.ReadFile(keylog)
			line := "TCPCRYPT_SS " + hex.EncodeToString(c.SessionID) + " "
			if n := strings.Count(string(b), line); n != 2 {
				t.Errorf("key log has %d %q lines, want 2 (one per end):\n%s", n, line, b)
			}
			if !strings.Contains(string(b), "TCPCRYPT_ES ") {
				t.Errorf("key log has no TCPCRYPT_ES line:\n%s", b)
			}
			// The warning says what happens: secrets are written, not "stays empty".
			if l := p.log.String(); !strings.Contains(l, "KEY LOG ENABLED: the secrets of every encrypted connection") || strings.Contains(l, "stays empty") {
				t.Errorf("daemon log does not warn that the key log receives secrets:\n%s", l)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	conns, err := p.client().Netstat(ctx)
	if err != nil || len(conns) < 2 {
		t.Errorf("netstat: %d connections, %v; want both ends", len(conns), err)
	}

	client.Close()
	server.Close()
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if hasTable(t, ns) {
		t.Error("table left behind after SIGTERM")
	}
	if !strings.Contains(p.log.String(), "tcpcryptd stopped") {
		t.Errorf("no clean-stop message")
	}
}

// veth joins two namespaces with addresses 10.201.0.1 (a) and 10.201.0.2 (b).
func veth(t *testing.T, a, b *netns.NS) {
	t.Helper()
	run := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	run("link", "add", "tcdva", "netns", a.Name(), "type", "veth", "peer", "name", "tcdvb", "netns", b.Name())
	run("-n", a.Name(), "addr", "add", "10.201.0.1/24", "dev", "tcdva")
	run("-n", b.Name(), "addr", "add", "10.201.0.2/24", "dev", "tcdvb")
	run("-n", a.Name(), "link", "set", "tcdva", "up")
	run("-n", b.Name(), "link", "set", "tcdvb", "up")
}

// TestIntegrationTwoHosts: two daemons over a veth pair. B runs a check
// server; A's start-up check uses it (-s); a transfer from A to B must carry
// the same session id at both ends.
func TestIntegrationTwoHosts(t *testing.T) {
	nsA, nsB := netns.NewForTest(t), netns.NewForTest(t)
	veth(t, nsA, nsB)
	pb := startDaemon(t, nsB, t.TempDir(), "-f", "--check-listen", "10.201.0.2:7",
		"--rule", fmt.Sprintf("%d:local", testPort))
	pa := startDaemon(t, nsA, t.TempDir(), "-s", "10.201.0.2", "--rule", fmt.Sprintf("%d:remote:required", testPort))
	if st := pa.status(); st.StartupCheck.Result != "passed" {
		t.Errorf("A's check against B's check server: %q: %s", st.StartupCheck.Result, st.StartupCheck.Detail)
	}
	if st := pb.status(); st.StartupCheck.Result != "skipped" {
		t.Errorf("B's check with -f: %+v", st.StartupCheck)
	}

	ln := listen(t, nsB, fmt.Sprintf("10.201.0.2:%d", testPort))
	client := dial(t, nsA, ln.Addr().String())
	server := accept(t, ln)
	if err := exchange(client, server); err != nil {
		t.Fatalf("transfer: %v", err)
	}
	checkSameSession(t, pa, pb, client, server)
	// A rule added over the control socket applies to new connections.
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := pb.client().AddRule(ctx, ctl.Rule{Port: testPort + 1, Side: ctl.SideLocal, Mode: ctl.ModeOpportunistic}); err != nil {
		t.Fatalf("add rule: %v", err)
	}
	if err := pa.client().AddRule(ctx, ctl.Rule{Port: testPort + 1, Side: ctl.SideRemote, Mode: ctl.ModeOpportunistic}); err != nil {
		t.Fatalf("add rule: %v", err)
	}
	ln2 := listen(t, nsB, fmt.Sprintf("10.201.0.2:%d", testPort+1))
	c2 := dial(t, nsA, ln2.Addr().String())
	s2 := accept(t, ln2)
	if err := exchange(c2, s2); err != nil {
		t.Fatalf("transfer on the added port: %v", err)
	}
	checkSameSession(t, pa, pb, c2, s2)
	for _, p := range []*daemonProc{pa, pb} {
		if err := p.stop(syscall.SIGTERM); err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	}
	if hasTable(t, nsA) || hasTable(t, nsB) {
		t.Error("table left behind after SIGTERM")
	}
}

// TestIntegrationRestart: connections that predate any daemon pass
// untouched; after a SIGKILL the table stays, and the next instance removes
// it and destroys the covered connections the dead one may have encrypted,
// before its own rules go live.
func TestIntegrationRestart(t *testing.T) {
	ns := netns.NewForTest(t)
	dir := t.TempDir()
	ln := listen(t, ns, fmt.Sprintf("127.0.0.1:%d", testPort))
	oldClient := dial(t, ns, ln.Addr().String())
	oldServer := accept(t, ln)

	p := startDaemon(t, ns, dir, "-f", "--rule", fmt.Sprintf("%d:both", testPort))
	if strings.Contains(p.log.String(), "restart safety") {
		t.Error("restart safety ran without a previous instance")
	}
	if err := exchange(oldClient, oldServer); err != nil {
		t.Errorf("a connection that predates the daemon was disturbed: %v", err)
	}

	client := dial(t, ns, ln.Addr().String())
	server := accept(t, ln)
	p.cmd.Process.Kill()
	<-p.done
	if !hasTable(t, ns) {
		t.Fatal("table gone after SIGKILL; nothing to test")
	}

	p2 := startDaemon(t, ns, dir, "-f", "--rule", fmt.Sprintf("%d:both", testPort))
	log := p2.log.String()
	if !strings.Contains(log, "previous instance") || !strings.Contains(log, "restart safety") {
		t.Errorf("restarted daemon did not notice the stale table:\n%s", log)
	}
	if !strings.Contains(log, "found=4") || strings.Contains(log, "level=ERROR") {
		t.Errorf("want 4 connection ends found and destroyed (2 connections, both ends covered):\n%s", log)
	}
	if !strings.Contains(log, `msg="nftables rules removed"`) || !hasTable(t, ns) {
		t.Error("stale table not replaced")
	}
	for name, c := range map[string]net.Conn{"client": client, "server": server, "old client": oldClient} {
		c.SetReadDeadline(time.Now().Add(ioTimeout))
		_, err := c.Read(make([]byte, 1))
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s socket still alive after the restart: %v", name, err)
		}
	}
	if err := p2.stop(syscall.SIGINT); err != nil {
		t.Errorf("exit after SIGINT: %v", err)
	}
	if hasTable(t, ns) {
		t.Error("table left behind after SIGINT")
	}
}

// TestIntegrationSecondInstance: a second daemon in the same namespace must
// refuse to start and leave the first one's table alone.
func TestIntegrationSecondInstance(t *testing.T) {
	ns := netns.NewForTest(t)
	startDaemon(t, ns, t.TempDir(), "-f", "--rule", fmt.Sprintf("%d", testPort))
	out, err := exec.Command("ip", "netns", "exec", ns.Name(), daemonBinary(t), "-f",
		"-u", filepath.Join(t.TempDir(), "ctl"), "--state", filepath.Join(t.TempDir(), "r.json")).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "another tcpcryptd") {
		t.Errorf("second instance: %v\n%s", err, out)
	}
	if !hasTable(t, ns) {
		t.Error("the second instance removed the first one's table")
	}
}

// TestIntegrationStartupCheckLeavesNoFlows: the default start-up check (the
// loopback self-test) passes, and once the daemon is ready no flow of its
// check connections is left in the engines: they were closed with their
// FINs through the engines and forgotten, not left "encrypted" until the
// idle timeout, nor lingering.
func TestIntegrationStartupCheckLeavesNoFlows(t *testing.T) {
	ns := netns.NewForTest(t)
	p := startDaemon(t, ns, t.TempDir(), "--rule", fmt.Sprintf("%d:both", testPort))
	st := p.status()
	if st.StartupCheck.Result != "passed" {
		t.Fatalf("start-up check %q: %s", st.StartupCheck.Result, st.StartupCheck.Detail)
	}
	// This kernel has nftables' hash: several queues are balanced by flow.
	if wantBalance := map[bool]string{false: "none", true: "flow"}[len(st.Queues) > 1]; st.Balance != wantBalance {
		t.Errorf("status balance %q with queues %v, want %q", st.Balance, st.Queues, wantBalance)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	conns, err := p.client().Netstat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		t.Errorf("flow left by the check: %v -> %v %s", c.Local, c.Remote, c.State)
	}
	if n := st.Counters["engine_flows_tracked"]; n < 2 {
		t.Errorf("engine_flows_tracked = %d: the check's flows were never tracked?", n)
	}
	// Nor in the guard sets (the release is asynchronous: poll a little).
	deadline := time.Now().Add(ioTimeout)
	for {
		var out []byte
		for _, set := range []string{rules.GuardSet4, rules.GuardSet6} {
			o, err := exec.Command("ip", "netns", "exec", ns.Name(), "nft", "list", "set", "inet", "tcpcrypt", set).CombinedOutput()
			if err != nil {
				t.Fatalf("nft list set %s: %v\n%s", set, err, o)
			}
			out = append(out, o...)
		}
		if !strings.Contains(string(out), "elements") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("guard sets still hold the check's flows:\n%s", out)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The rules were applied three times: at start, with the check's
	// temporary rules (both families at once), and without them.
	if n := strings.Count(p.log.String(), `msg="nftables rules applied"`); n != 3 {
		t.Errorf("rules applied %d times before ready, want 3:\n%s", n, p.log.String())
	}
}
