package ctl_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/ctl/ctltest"
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
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	client, err = net.DialTCP("tcp4", nil, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
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

func TestConnInfo(t *testing.T) {
	client, server := tcpPair(t, true)
	if la := server.LocalAddr().(*net.TCPAddr); la.IP.To4() == nil || len(la.IP) != 16 {
		t.Logf("accepted end is not 4-in-6 here (%s); unmapping is still exercised by TestOps", la)
	}
	lc, rc, err := ctl.ConnAddrs(client)
	if err != nil {
		t.Fatal(err)
	}
	ls, rs, err := ctl.ConnAddrs(server)
	if err != nil {
		t.Fatal(err)
	}
	if ls != rc || rs != lc || !ls.Addr().Is4() {
		t.Fatalf("ConnAddrs: client %s->%s, server %s->%s; want mirrored plain IPv4", lc, rc, ls, rs)
	}

	b := sampleBackend(0)
	sid := ctltest.SampleConn(5).SessionID
	b.SetConns([]ctl.Conn{
		{Local: lc, Remote: rc, State: "encrypted", Role: "A", TEP: ctl.TEP{Name: "TCPCRYPT_ECDHE_Curve25519", ID: 0x23}, AEAD: "AEAD_AES_128_GCM", SessionID: sid},
		{Local: ls, Remote: rs, State: "plain"},
	})
	path := ctltest.Start(t, ctl.Config{Backend: b})
	t.Setenv(ctl.EnvAddress, path)

	info, err := ctl.ConnInfo(client)
	want := ctl.Info{SessionID: sid, Role: "A", TEP: "TCPCRYPT_ECDHE_Curve25519", AEAD: "AEAD_AES_128_GCM", Encrypted: true}
	if err != nil || !bytes.Equal(info.SessionID, want.SessionID) || info.Role != want.Role || info.TEP != want.TEP ||
		info.AEAD != want.AEAD || !info.Encrypted {
		t.Errorf("ConnInfo(client) = %+v, %v; want %+v", info, err, want)
	}
	got, err := ctl.SessionID(client)
	if err != nil || !bytes.Equal(got, sid) {
		t.Errorf("SessionID(client) = %x, %v", got, err)
	}

	// The server end is tracked but fell back to plain TCP.
	info, err = ctl.ConnInfo(server)
	if !errors.Is(err, ctl.ErrNotEncrypted) || errors.Is(err, ctl.ErrNotFound) || info.Encrypted || info.SessionID != nil {
		t.Errorf("ConnInfo(plain) = %+v, %v; want ErrNotEncrypted", info, err)
	}
	if _, err := ctl.SessionID(server); !errors.Is(err, ctl.ErrNotEncrypted) {
		t.Errorf("SessionID(plain) = %v", err)
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

	// With an explicit client.
	c := dial(t, path)
	if got, err := c.SessionID(context.Background(), client); err != nil || !bytes.Equal(got, sid) {
		t.Errorf("Client.SessionID = %x, %v", got, err)
	}

	// No daemon.
	t.Setenv(ctl.EnvAddress, filepath.Join(t.TempDir(), "nobody"))
	if _, err := ctl.SessionID(client); !errors.Is(err, ctl.ErrDaemonUnavailable) {
		t.Errorf("SessionID without a daemon = %v; want ErrDaemonUnavailable", err)
	}
}
