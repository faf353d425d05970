package bind

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/ctl/ctltest"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
)

// These tests run sessionOf against an in-process control server
// (ctltest), the one place where package ctl is used.

func addrs(c net.Conn) (local, remote netip.AddrPort) {
	return c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
}

func TestSessionOf(t *testing.T) {
	client, server := tcpPair(t)
	plain, _ := tcpPair(t)
	cl, cr := addrs(client)
	pl, pr := addrs(plain)
	sid := testSID(20)
	b := &ctltest.Backend{Conns: []ctl.Conn{
		{Local: cl, Remote: cr, State: "established", Role: ctl.RoleA, SessionID: sid},
		{Local: cr, Remote: cl, State: "established", Role: ctl.RoleB, SessionID: sid},
		{Local: pl, Remote: pr, State: "aborted"}, // tracked, no session id
	}}
	t.Setenv(ctl.EnvAddress, ctltest.Start(t, ctlserver.Config{Backend: b}))
	ctx := timeout(t, 5*time.Second)

	for _, end := range []struct {
		conn net.Conn
		isA  bool
	}{{client, true}, {server, false}} {
		got, isA, err := sessionOf(ctx, end.conn)
		if err != nil || string(got) != string(sid) || isA != end.isA {
			t.Errorf("%v: sid % x, A=%v, %v; want the session, A=%v", end.conn.LocalAddr(), got, isA, err, end.isA)
		}
	}

	// Not tracked by the daemon: plain TCP, at once.
	untracked, _ := tcpPair(t)
	start := time.Now()
	_, _, err := sessionOf(ctx, untracked)
	if !errors.Is(err, ErrNotEncrypted) || !errors.Is(err, ctl.ErrNotEncrypted) || !errors.Is(err, ctl.ErrNotFound) {
		t.Errorf("untracked: %v; want ErrNotEncrypted, ctl.ErrNotEncrypted and ctl.ErrNotFound", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("untracked: %v before the answer", took)
	}

	// Not a TCP connection: no session id either.
	pipe, _ := net.Pipe()
	defer pipe.Close()
	if _, _, err := sessionOf(ctx, pipe); !errors.Is(err, ErrNotEncrypted) || !errors.Is(err, ctl.ErrNotTCP) {
		t.Errorf("net.Pipe: %v; want ErrNotEncrypted and ctl.ErrNotTCP", err)
	}

	// Tracked without a session id until the deadline.
	short, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_, _, err = sessionOf(short, plain)
	if !errors.Is(err, ErrNotEncrypted) || !errors.Is(err, ctl.ErrPending) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("no session: %v; want ErrNotEncrypted, ctl.ErrPending, context.DeadlineExceeded", err)
	}
}

// TestSessionOfWaitsForKeyExchange: right after connect the daemon has no
// session id yet; sessionOf asks again until it has one.
func TestSessionOfWaitsForKeyExchange(t *testing.T) {
	client, _ := tcpPair(t)
	l, r := addrs(client)
	b := &ctltest.Backend{Conns: []ctl.Conn{{Local: l, Remote: r, State: "key-exchange", Role: ctl.RoleA}}}
	t.Setenv(ctl.EnvAddress, ctltest.Start(t, ctlserver.Config{Backend: b}))
	sid := testSID(21)
	done := time.AfterFunc(200*time.Millisecond, func() {
		b.SetConns([]ctl.Conn{{Local: l, Remote: r, State: "established", Role: ctl.RoleA, SessionID: sid}})
	})
	defer done.Stop()
	start := time.Now()
	got, isA, err := sessionOf(timeout(t, 5*time.Second), client)
	if err != nil || string(got) != string(sid) || !isA {
		t.Fatalf("sid % x, A=%v, %v; want the session once the exchange finished", got, isA, err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("answered after %v, before the session existed", took)
	}
}

func TestSessionOfNoDaemon(t *testing.T) {
	client, _ := tcpPair(t)
	t.Setenv(ctl.EnvAddress, t.TempDir()+"/absent.sock")
	_, _, err := sessionOf(timeout(t, 2*time.Second), client)
	if !errors.Is(err, ctl.ErrDaemonUnavailable) || errors.Is(err, ErrNotEncrypted) {
		t.Errorf("no daemon: %v; want ctl.ErrDaemonUnavailable", err)
	}
}

// TestPSKThroughControlServer runs PSK end to end with the real session
// source and an in-process control server.
func TestPSKThroughControlServer(t *testing.T) {
	checkNoLeak(t)
	client, server := tcpPair(t)
	cl, cr := addrs(client)
	sid := testSID(22)
	b := &ctltest.Backend{Conns: []ctl.Conn{
		{Local: cl, Remote: cr, State: "established", Role: ctl.RoleA, SessionID: sid},
		{Local: cr, Remote: cl, State: "established", Role: ctl.RoleB, SessionID: sid},
	}}
	t.Setenv(ctl.EnvAddress, ctltest.Start(t, ctlserver.Config{Backend: b}))
	errA, errB := both(timeout(t, 5*time.Second), client, server, key1, key1)
	if errA != nil || errB != nil {
		t.Fatalf("A: %v, B: %v", errA, errB)
	}
	sa, err := ConnSAS(context.Background(), server)
	if err != nil || sa != SAS(sid) {
		t.Errorf("ConnSAS = %q, %v; want %q", sa, err, SAS(sid))
	}
}
