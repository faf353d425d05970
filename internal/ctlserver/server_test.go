package ctlserver_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/ctl/ctltest"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

// shortDir returns a fresh directory with a short path (unix socket paths
// are limited to 108 bytes), removed at cleanup.
func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// running is a Server being served in the background.
type running struct {
	srv    *ctlserver.Server
	cancel context.CancelFunc
	done   chan struct{} // closed when Serve returned
	err    error         // Serve's result, valid after done
}

// stop cancels Serve and waits for it, failing if it takes long.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("Serve: %v", r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

// serve starts cfg's server on addrs.
func serve(t testing.TB, cfg ctlserver.Config, addrs ...string) *running {
	t.Helper()
	srv, err := ctlserver.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if err := srv.Listen(a); err != nil {
			srv.Close()
			t.Fatalf("Listen(%s): %v", a, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{srv: srv, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = srv.Serve(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// checkNoLeaks fails if the goroutine count does not return to base.
func checkNoLeaks(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutine leak: %d > %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dial(t testing.TB, addr string) *ctl.Client {
	t.Helper()
	c, err := ctl.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClientOverUnixSocket(t *testing.T) {
	testenv.RequireRoot(t, "mutations need root on the unix socket")
	ctx := context.Background()
	b := sampleBackend(1001)
	path := ctltest.Start(t, ctlserver.Config{Backend: b, DaemonVersion: "9.9"})
	c := dial(t, path)

	v, err := c.Version(ctx)
	if err != nil || v != (ctl.VersionInfo{Protocol: 1, Daemon: "9.9"}) {
		t.Errorf("Version = %+v, %v", v, err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Connections != 1002 || st.Counters["frames_in"] != 7 || st.StartupCheck.Result != "passed" {
		t.Errorf("Status = %+v, %v", st, err)
	}
	conns, err := c.Netstat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(b.Conns, conns, cmpOpts); diff != "" {
		t.Errorf("Netstat (-want +got):\n%s", diff)
	}
	c7 := ctltest.SampleConn(7)
	got, err := c.SessionIDFor(ctx, c7.Local, c7.Remote)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c7, got, cmpOpts); diff != "" {
		t.Errorf("SessionIDFor (-want +got):\n%s", diff)
	}
	_, err = c.SessionIDFor(ctx, netip.MustParseAddrPort("192.0.2.1:5555"), netip.MustParseAddrPort("192.0.2.9:80"))
	if !errors.Is(err, ctl.ErrNotEncrypted) || errors.Is(err, ctl.ErrPending) || errors.Is(err, ctl.ErrNotFound) {
		t.Errorf("SessionIDFor(plain) = %v, want ErrNotEncrypted", err)
	}
	_, err = c.SessionIDFor(ctx, netip.MustParseAddrPort("192.0.2.1:1"), netip.MustParseAddrPort("192.0.2.9:80"))
	if !errors.Is(err, ctl.ErrNotFound) || errors.Is(err, ctl.ErrNotEncrypted) {
		t.Errorf("SessionIDFor(unknown) = %v, want ErrNotFound", err)
	}
	c0 := ctltest.SampleConn(0)
	if n, err := c.FlushCache(ctx, c0.Local, c0.Remote); err != nil || n != 1 {
		t.Errorf("FlushCache = %d, %v; want 1, nil", n, err)
	}
	if n, err := c.FlushCache(ctx, c0.Local, c0.Remote); err != nil || n != 0 {
		t.Errorf("FlushCache again = %d, %v; want 0, nil", n, err)
	}
	if _, err := c.FlushCache(ctx, netip.MustParseAddrPort("192.0.2.1:1"), netip.MustParseAddrPort("192.0.2.9:80")); !errors.Is(err, ctl.ErrNotFound) {
		t.Errorf("FlushCache(unknown) = %v, want ErrNotFound", err)
	}
	r := ctl.Rule{Port: 8443, Side: ctl.SideRemote, Prefix: netip.MustParsePrefix("10.0.0.0/8"), Mode: ctl.ModeRequired,
		Options: []ctl.Option{ctl.OptionNoCache}}
	if err := c.AddRule(ctx, r); err != nil {
		t.Fatalf("AddRule as root: %v", err)
	}
	if err := c.AddRule(ctx, ctl.Rule{Port: 1, Side: "up", Mode: ctl.ModeRequired}); !errors.Is(err, ctl.ErrBadRequest) {
		t.Errorf("AddRule(invalid) = %v", err)
	}
	if err := c.DelRule(ctx, ctl.Rule{Port: 443, Side: ctl.SideLocal, Mode: ctl.ModeOpportunistic}); err != nil {
		t.Fatalf("DelRule: %v", err)
	}
	if err := c.DelRule(ctx, ctl.Rule{Port: 443, Side: ctl.SideLocal, Mode: ctl.ModeOpportunistic}); !errors.Is(err, ctl.ErrNotFound) {
		t.Errorf("DelRule(missing) = %v", err)
	}
	rules, err := c.Rules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]ctl.Rule{r}, rules, cmpOpts); diff != "" {
		t.Errorf("Rules (-want +got):\n%s", diff)
	}
}

func TestSocketFileAndCleanup(t *testing.T) {
	dir := filepath.Join(shortDir(t), "run", "tcpcrypt")
	path := filepath.Join(dir, "ctl")
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	r := serve(t, ctlserver.Config{Backend: sampleBackend(0)}, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o666 {
		t.Errorf("socket mode = %v, want socket 0666", fi.Mode())
	}
	di, err := os.Stat(dir)
	if err != nil || di.Mode().Perm() != 0o755 {
		t.Errorf("socket dir mode = %v, %v; want 0755", di.Mode(), err)
	}
	if got := syscall.Umask(0o022); got != 0o022 {
		t.Errorf("umask left at %#o", got)
	}
	r.stop(t)
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still present after Serve returned: %v", err)
	}

	// A configured mode is applied; Close without Serve removes the socket.
	srv, err := ctlserver.NewServer(ctlserver.Config{Backend: sampleBackend(0), SocketMode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode with SocketMode 0600: %v %v", fi.Mode(), err)
	}
	srv.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still present after Close: %v", err)
	}
}

func TestStaleSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "ctl")
	// A dead daemon's socket: bound, then closed without unlinking.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("test setup: %v", err)
	}
	serve(t, ctlserver.Config{Backend: sampleBackend(0)}, path)
	c := dial(t, path)
	if _, err := c.Version(context.Background()); err != nil {
		t.Fatalf("server on a reclaimed stale socket: %v", err)
	}

	// A live one is not taken over.
	srv2, err := ctlserver.NewServer(ctlserver.Config{Backend: sampleBackend(0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv2.Listen(path); !errors.Is(err, ctlserver.ErrInUse) {
		t.Errorf("Listen on a live socket = %v, want ErrInUse", err)
	}
	if _, err := c.Version(context.Background()); err != nil {
		t.Errorf("first server harmed by the second: %v", err)
	}

	// Something that is not a socket is never removed.
	file := filepath.Join(shortDir(t), "ctl")
	if err := os.WriteFile(file, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := srv2.Listen(file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen on a regular file = %v", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious" {
		t.Errorf("regular file damaged: %q %v", b, err)
	}
}

func TestTCPListenerIsLoopbackAndReadOnly(t *testing.T) {
	r := serve(t, ctlserver.Config{Backend: sampleBackend(3)}, ":0")
	addrs := r.srv.Addrs()
	var port int
	var fams []string
	for _, a := range addrs {
		ta := a.(*net.TCPAddr)
		ap := ta.AddrPort()
		if !ap.Addr().IsLoopback() {
			t.Errorf("listening on non-loopback %s", a)
		}
		if port != 0 && ta.Port != port {
			t.Errorf("families on different ports: %v", addrs)
		}
		port = ta.Port
		fams = append(fams, map[bool]string{true: "4", false: "6"}[ap.Addr().Is4()])
	}
	if len(addrs) == 2 && fams[0] == fams[1] || len(addrs) == 0 || len(addrs) > 2 {
		t.Fatalf("listeners: %v", addrs)
	}
	if len(addrs) == 1 {
		t.Logf("no IPv6 loopback here; only %v tested", addrs)
	}
	for _, a := range addrs {
		c := dial(t, a.String())
		ctx := context.Background()
		if conns, err := c.Netstat(ctx); err != nil || len(conns) != 4 {
			t.Errorf("%s: Netstat = %d conns, %v", a, len(conns), err)
		}
		err := c.AddRule(ctx, ctl.Rule{Port: 1, Side: ctl.SideLocal, Mode: ctl.ModeRequired})
		if !errors.Is(err, ctl.ErrForbidden) {
			t.Errorf("%s: AddRule over TCP = %v, want ErrForbidden", a, err)
		}
		if err := c.DelRule(ctx, ctl.Rule{Port: 443, Side: ctl.SideLocal, Mode: ctl.ModeOpportunistic}); !errors.Is(err, ctl.ErrForbidden) {
			t.Errorf("%s: DelRule over TCP = %v, want ErrForbidden", a, err)
		}
		c0 := ctltest.SampleConn(0)
		if _, err := c.FlushCache(ctx, c0.Local, c0.Remote); !errors.Is(err, ctl.ErrForbidden) {
			t.Errorf("%s: FlushCache over TCP = %v, want ErrForbidden", a, err)
		}
	}
	// ":port" reaches the daemon too.
	c := dial(t, fmt.Sprintf(":%d", port))
	if _, err := c.Version(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestClientDisconnectMidStreamAndNoLeaks(t *testing.T) {
	base := runtime.NumGoroutine()
	path := filepath.Join(shortDir(t), "ctl")
	b := sampleBackend(0)
	var conns []ctl.Conn
	for i := range 50000 {
		conns = append(conns, ctltest.SampleConn(i))
	}
	b.SetConns(conns)
	r := serve(t, ctlserver.Config{Backend: b}, path)

	for range 5 {
		raw, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(raw, `{"v":1,"id":1,"op":"netstat"}`+"\n"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 300)
		if _, err := io.ReadFull(raw, buf); err != nil {
			t.Fatal(err)
		}
		raw.Close() // gone in the middle of a ~20 MB reply
	}
	// The daemon still serves everyone else, in full.
	c := dial(t, path)
	got, err := c.Netstat(context.Background())
	if err != nil || len(got) != len(conns) {
		t.Fatalf("Netstat after disconnects: %d conns, %v", len(got), err)
	}
	c.Close()

	// Idle clients and a half-sent request are cut off by shutdown.
	for range 3 {
		raw, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
	}
	half, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	io.WriteString(half, `{"v":1,"id":1,`)
	time.Sleep(50 * time.Millisecond)
	r.stop(t)
	checkNoLeaks(t, base)
}

func TestConcurrentClients(t *testing.T) {
	b := sampleBackend(200)
	// 16 clients at once: past the default per-uid bound (8) when the test does
	// not run as root, so the bound is raised; the bound has its own tests.
	path := ctltest.Start(t, ctlserver.Config{Backend: b, MaxClientsPerUID: 32})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Go(func() {
			c, err := ctl.Dial(context.Background(), path)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for i := range 20 {
				ctx := context.Background()
				switch i % 3 {
				case 0:
					conns, err := c.Netstat(ctx)
					if err == nil && len(conns) != 201 {
						err = fmt.Errorf("netstat: %d conns", len(conns))
					}
					if err != nil {
						errs <- err
						return
					}
				case 1:
					sc := ctltest.SampleConn((g*20 + i) % 200)
					got, err := c.SessionIDFor(ctx, sc.Local, sc.Remote)
					if err == nil && got.SessionID.String() != sc.SessionID.String() {
						err = fmt.Errorf("sessid mismatch for %s", sc.Local)
					}
					if err != nil {
						errs <- err
						return
					}
				case 2:
					if _, err := c.Status(ctx); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestMaxClients(t *testing.T) {
	path := ctltest.Start(t, ctlserver.Config{Backend: sampleBackend(0), MaxClients: 1})
	ctx := context.Background()
	c1 := dial(t, path)
	if _, err := c1.Version(ctx); err != nil {
		t.Fatal(err)
	}
	c2 := dial(t, path)
	if _, err := c2.Version(ctx); !errors.Is(err, ctl.ErrBusy) {
		t.Fatalf("second client = %v, want ErrBusy", err)
	}
	c1.Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		c3 := dial(t, path)
		_, err := c3.Version(ctx)
		if err == nil {
			break
		}
		// Until the server notices the first client left, we are refused.
		if !errors.Is(err, ctl.ErrBusy) && !errors.Is(err, ctl.ErrDaemonUnavailable) || time.Now().After(deadline) {
			t.Fatalf("after the first client left: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIdleTimeout: a client that was answered and then stays silent is
// closed after IdleTimeout.
func TestIdleTimeout(t *testing.T) {
	path := ctltest.Start(t, ctlserver.Config{Backend: sampleBackend(0), FirstRequestTimeout: time.Minute,
		IdleTimeout: 100 * time.Millisecond})
	raw, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := raw.Write([]byte(`{"v":1,"id":1,"op":"version"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(raw).ReadString('\n'); err != nil || !strings.Contains(line, `"ok":true`) {
		t.Fatalf("version reply %q, %v", line, err)
	}
	start := time.Now()
	if n, err := raw.Read(make([]byte, 10)); !errors.Is(err, io.EOF) {
		t.Fatalf("idle client: read %d, %v; want EOF", n, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle client dropped after %v", d)
	}
}

func TestClientTimeoutAndUnavailable(t *testing.T) {
	// A "daemon" that accepts and never answers.
	path := filepath.Join(shortDir(t), "mute")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c := dial(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Status(ctx)
	if !errors.Is(err, ctl.ErrDaemonUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Status against a mute daemon = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout took %v", d)
	}
	if _, err := c.Version(context.Background()); !errors.Is(err, ctl.ErrDaemonUnavailable) {
		t.Errorf("call on a broken client = %v", err)
	}

	// Cancelling the context unblocks a call at once.
	c2 := dial(t, path)
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel2)
	if _, err := c2.Status(ctx2); !errors.Is(err, context.Canceled) || !errors.Is(err, ctl.ErrDaemonUnavailable) {
		t.Errorf("cancelled Status = %v", err)
	}

	// Close unblocks a call in progress, and later calls say the client is closed.
	c3 := dial(t, path)
	time.AfterFunc(50*time.Millisecond, func() { c3.Close() })
	start = time.Now()
	if _, err := c3.Status(context.Background()); err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("Status during Close = %v after %v", err, time.Since(start))
	}
	if _, err := c3.Status(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Status after Close = %v, want net.ErrClosed", err)
	}

	for _, addr := range []string{filepath.Join(shortDir(t), "absent"), "127.0.0.1:1"} {
		if _, err := ctl.Dial(context.Background(), addr); !errors.Is(err, ctl.ErrDaemonUnavailable) {
			t.Errorf("Dial(%s) = %v, want ErrDaemonUnavailable", addr, err)
		}
	}
	if _, err := ctl.Dial(context.Background(), "example.com:1"); !errors.Is(err, ctl.ErrBadAddress) {
		t.Errorf("Dial(non-loopback) = %v, want ErrBadAddress", err)
	}
}

func TestServerMisuse(t *testing.T) {
	if _, err := ctlserver.NewServer(ctlserver.Config{}); err == nil {
		t.Error("NewServer without a backend succeeded")
	}
	srv, err := ctlserver.NewServer(ctlserver.Config{Backend: sampleBackend(0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(context.Background()); err == nil {
		t.Error("Serve without listeners succeeded")
	}
	if err := srv.Listen("0.0.0.0:7000"); !errors.Is(err, ctl.ErrBadAddress) {
		t.Errorf("Listen on a public address = %v", err)
	}
	r := serve(t, ctlserver.Config{Backend: sampleBackend(0)}, "127.0.0.1:0")
	// Once a client is served, Serve is certainly running.
	if _, err := dial(t, r.srv.Addrs()[0].String()).Version(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Listen("127.0.0.1:0"); err == nil {
		t.Error("Listen after Serve succeeded")
	}
	if err := r.srv.Serve(context.Background()); err == nil {
		t.Error("second Serve succeeded")
	}
}

// The non-root client half of TestPeerCredentials: it runs in a subprocess
// started with uid 65534.
func TestHelperNonRootClient(t *testing.T) {
	addr := os.Getenv("CTL_TEST_NONROOT_ADDR")
	if addr == "" {
		t.Skip("helper for TestPeerCredentials")
	}
	if os.Getuid() == 0 {
		t.Fatal("helper runs as root")
	}
	c := dial(t, addr)
	ctx := context.Background()
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("read-only query as uid %d: %v", os.Getuid(), err)
	}
	err := c.AddRule(ctx, ctl.Rule{Port: 9, Side: ctl.SideLocal, Mode: ctl.ModeRequired})
	if !errors.Is(err, ctl.ErrForbidden) || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("AddRule as uid %d = %v, want forbidden", os.Getuid(), err)
	}
	fmt.Println("NONROOT-CHECKS-PASSED")
}

func TestPeerCredentials(t *testing.T) {
	testenv.RequireRoot(t, "a client with another uid")
	// The child must be able to reach both the socket and its own binary.
	dir := shortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "ctl.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	b := sampleBackend(0)
	path := filepath.Join(dir, "ctl")
	serve(t, ctlserver.Config{Backend: b}, path)

	cmd := exec.Command(bin, "-test.run=^TestHelperNonRootClient$", "-test.v")
	cmd.Env = append(os.Environ(), "CTL_TEST_NONROOT_ADDR="+path, "HOME=/")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "NONROOT-CHECKS-PASSED") {
		t.Fatalf("non-root client: %v\n%s", err, out)
	}
	// And root, on the same socket, may change rules.
	c := dial(t, path)
	if err := c.AddRule(context.Background(), ctl.Rule{Port: 9, Side: ctl.SideLocal, Mode: ctl.ModeRequired}); err != nil {
		t.Fatalf("AddRule as root: %v", err)
	}
	if rules, _ := b.Rules(context.Background()); len(rules) != 2 {
		t.Errorf("rules after root AddRule: %v", rules)
	}
}
