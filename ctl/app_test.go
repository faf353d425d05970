package ctl_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/ctl/ctltest"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
)

// tcpPair returns both ends of a loopback TCP connection. With dual set,
// the listener is an IPv6 dual-stack socket, so the accepted end's addresses
// are IPv4-mapped IPv6 ones.
func tcpPair(t *testing.T, dual bool) (client, server net.Conn) {
	t.Helper()
	network, addr := "tcp4", "127.0.0.1:0"
	if dual {
		network, addr = "tcp", "[::]:0"
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	client, err = net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func addrs(t *testing.T, c net.Conn) (local, remote netip.AddrPort) {
	t.Helper()
	l, r, err := ctl.ConnAddrs(c)
	if err != nil {
		t.Fatal(err)
	}
	return l, r
}

func TestConnInfo(t *testing.T) {
	client, server := tcpPair(t, true)
	if la := server.LocalAddr().(*net.TCPAddr); la.IP.To4() == nil || len(la.IP) != 16 {
		t.Logf("accepted end is not 4-in-6 here (%s); unmapping is still exercised by the server's tests", la)
	}
	lc, rc := addrs(t, client)
	ls, rs := addrs(t, server)
	if ls != rc || rs != lc || !ls.Addr().Is4() {
		t.Fatalf("ConnAddrs: client %s->%s, server %s->%s; want mirrored plain IPv4", lc, rc, ls, rs)
	}
	pending, _ := tcpPair(t, false)
	lp, rp := addrs(t, pending)

	sid := ctltest.SampleConn(5).SessionID
	b := &ctltest.Backend{Conns: []ctl.Conn{
		{Local: lc, Remote: rc, State: "encrypted", Role: ctl.RoleA, TEP: ctl.TEP{Name: "TCPCRYPT_ECDHE_Curve25519", ID: 0x23},
			AEAD: "AEAD_AES_128_GCM", SessionID: sid, Resumed: true},
		{Local: ls, Remote: rs, State: "plain", FallbackReason: "no_peer_eno"},
		{Local: lp, Remote: rp, State: "key-exchange"},
	}}
	path := ctltest.Start(t, ctlserver.Config{Backend: b})
	t.Setenv(ctl.EnvAddress, path)

	info, err := ctl.ConnInfo(client)
	want := ctl.Info{SessionID: sid, Role: ctl.RoleA, TEP: "TCPCRYPT_ECDHE_Curve25519", AEAD: "AEAD_AES_128_GCM", Resumed: true}
	if err != nil || !bytes.Equal(info.SessionID, want.SessionID) || info.Role != want.Role || info.TEP != want.TEP ||
		info.AEAD != want.AEAD || info.Resumed != want.Resumed {
		t.Errorf("ConnInfo(client) = %+v, %v; want %+v", info, err, want)
	}
	got, err := ctl.SessionID(client)
	if err != nil || !bytes.Equal(got, sid) {
		t.Errorf("SessionID(client) = %x, %v", got, err)
	}

	// The server end fell back to plain TCP: not encrypted, with the reason.
	info, err = ctl.ConnInfo(server)
	if !errors.Is(err, ctl.ErrNotEncrypted) || errors.Is(err, ctl.ErrNotFound) || errors.Is(err, ctl.ErrPending) ||
		info.SessionID != nil || !strings.Contains(err.Error(), "no_peer_eno") {
		t.Errorf("ConnInfo(fallen back) = %+v, %v; want ErrNotEncrypted with its reason", info, err)
	}
	if _, err := ctl.SessionID(server); !errors.Is(err, ctl.ErrNoSession) {
		t.Errorf("SessionID(fallen back) = %v; the deprecated ErrNoSession must still match", err)
	}

	// The key exchange is running: pending, which is not "not encrypted".
	if _, err := ctl.ConnInfo(pending); !errors.Is(err, ctl.ErrPending) || errors.Is(err, ctl.ErrNotEncrypted) {
		t.Errorf("ConnInfo(pending) = %v; want ErrPending only", err)
	}

	// Unknown to the daemon.
	other, _ := tcpPair(t, false)
	if _, err := ctl.SessionID(other); !errors.Is(err, ctl.ErrNotFound) || errors.Is(err, ctl.ErrNotEncrypted) {
		t.Errorf("SessionID(untracked) = %v; want ErrNotFound", err)
	}

	// Not TCP.
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if _, err := ctl.SessionID(p1); !errors.Is(err, ctl.ErrNotTCP) {
		t.Errorf("SessionID(pipe) = %v; want ErrNotTCP", err)
	}

	// With an explicit client and a context.
	c, err := ctl.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.SessionID(context.Background(), client); err != nil || !bytes.Equal(got, sid) {
		t.Errorf("Client.SessionID = %x, %v", got, err)
	}
	if info, err := ctl.ConnInfoContext(context.Background(), client); err != nil || info.Role != ctl.RoleA {
		t.Errorf("ConnInfoContext = %+v, %v", info, err)
	}

	// No daemon: the socket is absent.
	t.Setenv(ctl.EnvAddress, filepath.Join(t.TempDir(), "nobody"))
	if _, err := ctl.SessionID(client); !errors.Is(err, ctl.ErrDaemonUnavailable) {
		t.Errorf("SessionID without a daemon = %v; want ErrDaemonUnavailable", err)
	}
}

// TestErrorMessages checks that each failure is said once: the tuple once,
// one "ctl:" prefix, no code names repeated from the sentinel.
func TestErrorMessages(t *testing.T) {
	local, remote := netip.MustParseAddrPort("10.77.0.2:59884"), netip.MustParseAddrPort("10.77.0.1:8095")
	fb := netip.MustParseAddrPort("10.77.0.2:59885")
	b := &ctltest.Backend{Conns: []ctl.Conn{{Local: fb, Remote: remote, State: "plain", FallbackReason: "no_peer_eno"}}}
	c, err := ctl.Dial(context.Background(), ctltest.Start(t, ctlserver.Config{Backend: b}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tests := []struct {
		local netip.AddrPort
		want  string
		is    error
	}{
		{local, "ctl: 10.77.0.2:59884 -> 10.77.0.1:8095: not tracked", ctl.ErrNotFound},
		{fb, "ctl: 10.77.0.2:59885 -> 10.77.0.1:8095: not encrypted: fell back to plain TCP (no_peer_eno)", ctl.ErrNotEncrypted},
	}
	for _, tt := range tests {
		_, err := c.SessionIDFor(context.Background(), tt.local, remote)
		if err == nil || err.Error() != tt.want || !errors.Is(err, tt.is) {
			t.Errorf("SessionIDFor(%s) = %v;\nwant %q matching %v", tt.local, err, tt.want, tt.is)
		}
	}
}

func TestWaitSession(t *testing.T) {
	client, _ := tcpPair(t, false)
	lc, rc := addrs(t, client)
	sid := ctltest.SampleConn(2).SessionID
	b := &ctltest.Backend{Conns: []ctl.Conn{{Local: lc, Remote: rc, State: "key-exchange"}}}
	path := ctltest.Start(t, ctlserver.Config{Backend: b})
	t.Setenv(ctl.EnvAddress, path)

	// Still pending when the context ends: ErrPending and the context's cause.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := ctl.WaitSession(ctx, client)
	cancel()
	if !errors.Is(err, ctl.ErrPending) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitSession while pending = %v; want ErrPending and DeadlineExceeded", err)
	}

	// Keyed a little later: WaitSession returns the session.
	go func() {
		time.Sleep(80 * time.Millisecond)
		b.SetConns([]ctl.Conn{{Local: lc, Remote: rc, State: "encrypted", Role: ctl.RoleA, SessionID: sid}})
	}()
	start := time.Now()
	info, err := ctl.WaitSession(context.Background(), client)
	if err != nil || !bytes.Equal(info.SessionID, sid) || info.Role != ctl.RoleA {
		t.Fatalf("WaitSession = %+v, %v; want the session", info, err)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("WaitSession returned after %v, before the session existed", d)
	}

	// A final answer ends the wait at once.
	b.SetConns([]ctl.Conn{{Local: lc, Remote: rc, State: "plain", FallbackReason: "no_peer_eno"}})
	start = time.Now()
	if _, err := ctl.WaitSession(context.Background(), client); !errors.Is(err, ctl.ErrNotEncrypted) || time.Since(start) > time.Second {
		t.Errorf("WaitSession of a fallen-back connection = %v after %v; want ErrNotEncrypted at once", err, time.Since(start))
	}
}

// TestUntrustedDaemon: a control socket served by another uid than the
// expected one is not believed about session ids; other operations work.
func TestUntrustedDaemon(t *testing.T) {
	client, _ := tcpPair(t, false)
	lc, rc := addrs(t, client)
	b := &ctltest.Backend{Conns: []ctl.Conn{{Local: lc, Remote: rc, State: "encrypted", Role: ctl.RoleA,
		SessionID: ctltest.SampleConn(1).SessionID}}}
	path := ctltest.Start(t, ctlserver.Config{Backend: b})
	me := uint32(os.Getuid())
	c, err := ctl.Dialer{Address: path, DaemonUID: me + 1}.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.ConnInfo(context.Background(), client)
	want := fmt.Sprintf("ctl: control socket is not served by tcpcryptd's user: %s is served by uid %d, not uid %d; not believing its session ids", path, me, me+1)
	if !errors.Is(err, ctl.ErrUntrustedDaemon) || err.Error() != want {
		t.Errorf("ConnInfo from an untrusted daemon = %v;\nwant %q", err, want)
	}
	if _, err := c.SessionIDFor(context.Background(), lc, rc); !errors.Is(err, ctl.ErrUntrustedDaemon) {
		t.Errorf("SessionIDFor from an untrusted daemon = %v", err)
	}
	if conns, err := c.Netstat(context.Background()); err != nil || len(conns) != 1 {
		t.Errorf("Netstat from an untrusted daemon = %d, %v; want it to work", len(conns), err)
	}
	// The expected uid is accepted.
	c2, err := ctl.Dialer{Address: path, DaemonUID: me}.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.ConnInfo(context.Background(), client); err != nil {
		t.Errorf("ConnInfo from the expected uid: %v", err)
	}
	// The zero Dialer believes root and this process's own uid, which the
	// test server runs as.
	c3, err := ctl.Dialer{Address: path}.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if _, err := c3.ConnInfo(context.Background(), client); err != nil {
		t.Errorf("ConnInfo with the zero Dialer from a server of our own uid: %v", err)
	}
}

func TestRole(t *testing.T) {
	for _, tt := range []struct {
		r    ctl.Role
		s    string
		peer ctl.Role
	}{{ctl.RoleA, "A", ctl.RoleB}, {ctl.RoleB, "B", ctl.RoleA}, {ctl.RoleNone, "", ctl.RoleNone}} {
		if tt.r.String() != tt.s || tt.r.Peer() != tt.peer {
			t.Errorf("%d: String %q Peer %v; want %q %v", tt.r, tt.r.String(), tt.r.Peer(), tt.s, tt.peer)
		}
		b, err := tt.r.MarshalText()
		var back ctl.Role
		if err != nil || string(b) != tt.s || back.UnmarshalText(b) != nil || back != tt.r {
			t.Errorf("%v: text %q %v, back %v", tt.r, b, err, back)
		}
	}
	var r ctl.Role
	if err := r.UnmarshalText([]byte("C")); err == nil {
		t.Error(`UnmarshalText("C") succeeded`)
	}
	if _, err := ctl.Role(7).MarshalText(); err == nil {
		t.Error("MarshalText(Role(7)) succeeded")
	}
}

// TestUntrustedDaemonTCP: over the loopback TCP port the owner of the
// server's socket is checked the same way (sock_diag), on IPv4 and IPv6.
func TestUntrustedDaemonTCP(t *testing.T) {
	client, _ := tcpPair(t, false)
	lc, rc := addrs(t, client)
	sid := ctltest.SampleConn(1).SessionID
	b := &ctltest.Backend{Conns: []ctl.Conn{{Local: lc, Remote: rc, State: "encrypted", Role: ctl.RoleB, SessionID: sid}}}
	srv, err := ctlserver.NewServer(ctlserver.Config{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"127.0.0.1:0", "[::1]:0"} {
		if err := srv.Listen(a); err != nil {
			t.Logf("listen %s: %v (skipped)", a, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	me := uint32(os.Getuid())
	for _, la := range srv.Addrs() {
		addr := la.String()
		c, err := ctl.Dialer{Address: addr, DaemonUID: me + 1}.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ConnInfo(context.Background(), client)
		want := fmt.Sprintf("is served by uid %d, not uid %d", me, me+1)
		if !errors.Is(err, ctl.ErrUntrustedDaemon) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: ConnInfo from another uid = %v; want ErrUntrustedDaemon, %q", addr, err, want)
		}
		c.Close()
		c, err = ctl.Dialer{Address: addr, DaemonUID: me}.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info, err := c.ConnInfo(context.Background(), client); err != nil || !bytes.Equal(info.SessionID, sid) {
			t.Errorf("%s: ConnInfo from the expected uid = %+v, %v", addr, info, err)
		}
		c.Close()
	}
}
