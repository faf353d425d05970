package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/ctl/ctltest"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

// flushHelperEnv names the control socket on which the test binary, run
// with it set, asks for one cache.flush (the tuple in flushHelperConn) and
// prints the answer instead of running the tests.
const (
	flushHelperEnv  = "TCPCRYPT_TEST_FLUSH_SOCKET"
	flushHelperConn = "TCPCRYPT_TEST_FLUSH_CONN" // "LOCAL REMOTE"
)

// RunTestHelper, called first by the test binary's TestMain, becomes the
// flush helper and exits when flushHelperEnv is set; else it returns.
func RunTestHelper() {
	if path := os.Getenv(flushHelperEnv); path != "" {
		flushHelper(path)
	}
}

func flushHelper(path string) {
	local, remote, _ := strings.Cut(os.Getenv(flushHelperConn), " ")
	c, err := ctl.Dial(context.Background(), path)
	if err == nil {
		var n int
		n, err = c.FlushCache(context.Background(), netip.MustParseAddrPort(local), netip.MustParseAddrPort(remote))
		if err == nil {
			fmt.Printf("flushed %d\n", n)
		}
	}
	if err != nil {
		fmt.Printf("error: %v\n", err)
	}
	os.Exit(0)
}

// TestCacheFlushOwnerKernel: with the daemon's own owner lookup (sock_diag)
// behind the control server, a process running as nobody may flush the
// cache state of a connection whose socket nobody owns, and not of one
// root owns; both the server's SO_PEERCRED and the socket owners come from
// the real kernel.
func TestCacheFlushOwnerKernel(t *testing.T) {
	testenv.RequireRoot(t, "it runs a control client as user nobody (65534)")
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mine := dialAs(t, 65534, l.Addr().String()) // nobody's socket
	defer mine.Close()
	theirs, err := net.Dial("tcp4", l.Addr().String()) // root's
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Close()
	tuple := func(c net.Conn) [2]netip.AddrPort {
		return [2]netip.AddrPort{c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()}
	}
	b := &ctltest.Backend{Cached: map[[2]netip.AddrPort]int{}}
	for _, c := range []net.Conn{mine, theirs} {
		k := tuple(c)
		b.Conns = append(b.Conns, ctl.Conn{Local: k[0], Remote: k[1], State: "established"})
		b.Cached[k] = 1
	}

	dir, err := os.MkdirTemp("", "flushowner")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	srv, err := ctlserver.NewServer(ctlserver.Config{Backend: b,
		SocketOwner: func(_ context.Context, local, remote netip.AddrPort) (uint32, error) {
			return kernelSockets{}.owner(local, remote)
		}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ctl")
	if err := srv.Listen(path); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	bin := testenv.SelfCopy(t, dir)
	flushAsNobody := func(c net.Conn) string {
		t.Helper()
		k := tuple(c)
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), flushHelperEnv+"="+path, flushHelperConn+"="+k[0].String()+" "+k[1].String())
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if out := flushAsNobody(mine); out != "flushed 1" {
		t.Errorf("nobody flushing its own connection: %q, want flushed 1", out)
	}
	if out := flushAsNobody(theirs); !strings.Contains(out, "forbidden") || !strings.Contains(out, "belongs to uid 0") {
		t.Errorf("nobody flushing root's connection: %q, want forbidden (belongs to uid 0)", out)
	}
	if b.Cached[tuple(theirs)] != 1 {
		t.Error("root's connection lost its cached secret")
	}
}
