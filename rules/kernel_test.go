package rules

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/internal/netns"
	"golang.org/x/sys/unix"
)

// TestKernelQueueVerdicts checks, on the real kernel inside a fresh namespace,
// that covered traffic really goes to NFQUEUE: with no process reading the
// queue, a fail-open (bypass) rule lets a loopback connection through, and a
// fail-closed rule drops its SYN so the connect times out. Packets carrying
// the daemon's mark skip the rules.
func TestKernelQueueVerdicts(t *testing.T) {
	ns, conn := newNSConn(t)
	m := NewManager(conn, nil)

	const port = 4433
	tests := []struct {
		name     string
		policies []Policy
		mark     bool // client and server sockets carry cfg.Mark
		want4    bool // connecting over 127.0.0.1 works
		want6    bool // connecting over ::1 works
		edit     func(*Config)
	}{
		{"no rules", nil, false, true, true, nil},
		{"opportunistic bypass fails open", []Policy{{Port: port, Side: SideLocal}}, false, true, true, nil},
		{"required fails closed", []Policy{{Port: port, Side: SideLocal, Mode: ModeRequired}}, false, false, false, nil},
		{"required remote side fails closed", []Policy{{Port: port, Side: SideRemote, Mode: ModeRequired}}, false, false, false, nil},
		{"required other port untouched", []Policy{{Port: port + 1, Side: SideBoth, Mode: ModeRequired}}, false, true, true, nil},
		{"exclude before required", []Policy{
			{Port: port, Side: SideBoth, Mode: ModeRequired},
			{Port: port, Side: SideBoth, Mode: ModeExclude, Prefix: netip.MustParsePrefix("127.0.0.0/8")},
			{Port: port, Side: SideBoth, Mode: ModeExclude, Prefix: netip.MustParsePrefix("::1/128")},
		}, false, true, true, nil},
		{"exclude covers one side only", []Policy{
			{Port: port, Side: SideBoth, Mode: ModeRequired},
			{Port: port, Side: SideLocal, Mode: ModeExclude, Prefix: netip.MustParsePrefix("127.0.0.0/8")},
			{Port: port, Side: SideLocal, Mode: ModeExclude, Prefix: netip.MustParsePrefix("::1/128")},
		}, false, false, false, nil},
		{"IPv4 /0 exclude leaves IPv6 required", []Policy{
			{Port: port, Side: SideBoth, Mode: ModeRequired, Prefix: netip.MustParsePrefix("::/0")},
			{Port: port, Side: SideBoth, Mode: ModeExclude, Prefix: netip.MustParsePrefix("0.0.0.0/0")},
		}, false, true, false, nil},
		{"required prefix elsewhere untouched", []Policy{{Port: port, Side: SideBoth, Mode: ModeRequired, Prefix: netip.MustParsePrefix("192.0.2.0/24")}}, false, true, true, nil},
		{"marked packets skip", []Policy{{Port: port, Side: SideBoth, Mode: ModeRequired}}, true, true, true, nil},
		{"required with bypass configured fails open", []Policy{{Port: port, Side: SideBoth, Mode: ModeRequired}}, false, true, true,
			func(c *Config) { c.Bypass.Required = true }},
		{"opportunistic without bypass fails closed", []Policy{{Port: port, Side: SideBoth}}, false, false, false,
			func(c *Config) { c.Bypass.Opportunistic = false }},
		{"queue range with bypass fails open", []Policy{{Port: port, Side: SideBoth}}, false, true, true,
			func(c *Config) { c.QueueNum, c.QueueCount = 100, 4 }},
		{"queue range fanout without bypass fails closed", []Policy{{Port: port, Side: SideBoth, Mode: ModeRequired}}, false, false, false,
			func(c *Config) { c.QueueNum, c.QueueCount, c.CPUFanout = 100, 4, true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			if err := m.Apply(cfg, tt.policies); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			t.Logf("queue kind %v", m.QueueKind())
			for _, a := range []struct {
				addr   string
				wantOK bool
			}{{"127.0.0.1", tt.want4}, {"::1", tt.want6}} {
				addr := a.addr
				err := dialIn(t, ns, net.JoinHostPort(addr, "4433"), tt.mark, cfg.Mark)
				if a.wantOK && err != nil {
					t.Errorf("dial %s: %v, want success", addr, err)
				}
				if !a.wantOK {
					var ne net.Error
					if !errors.As(err, &ne) || !ne.Timeout() {
						t.Errorf("dial %s: %v, want a timeout (SYN dropped)", addr, err)
					}
				}
			}
		})
	}
	if err := m.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := dialIn(t, ns, "127.0.0.1:4433", false, 0); err != nil {
		t.Errorf("after Remove: dial: %v, want success", err)
	}
}

// dialIn listens on addr inside ns and connects to it with a short deadline,
// exchanging one byte. With mark, both sockets get SO_MARK mark.
func dialIn(t *testing.T, ns *netns.NS, addr string, mark bool, markVal uint32) error {
	t.Helper()
	control := func(_, _ string, c syscall.RawConn) error {
		if !mark {
			return nil
		}
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(markVal))
		}); err != nil {
			return err
		}
		return serr
	}
	var ln net.Listener
	var c net.Conn
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	var dialErr error
	err := ns.Do(func() error {
		var err error
		lc := net.ListenConfig{Control: control}
		ln, err = lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		// Dial from this thread: the socket is created in ns. On loopback the
		// handshake takes microseconds, and a dropped SYN is only retransmitted
		// after 1 s, so a 500 ms deadline separates the two cases.
		d := net.Dialer{Control: control}
		c, dialErr = d.DialContext(ctx, "tcp", addr)
		return nil
	})
	if err != nil {
		t.Fatalf("in netns: %v", err)
	}
	defer ln.Close()
	if dialErr != nil {
		return dialErr
	}
	defer c.Close()
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Second))
	s, err := ln.Accept()
	if err != nil {
		return err
	}
	defer s.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	_ = s.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte{1}); err != nil {
		return err
	}
	var b [1]byte
	if _, err := s.Read(b[:]); err != nil {
		return err
	}
	return nil
}

// TestKernelQueueMapMissDrops: with flow balancing, a packet whose hash had
// no entry in the queue map is dropped by the select chain, not passed on to
// the rules below (which would let it through untouched). The map is cut to
// its first entry, so connections that hash to the second queue must time
// out, while the others reach the first queue, which nobody reads, and pass
// by the bypass flag.
func TestKernelQueueMapMissDrops(t *testing.T) {
	ns, conn := newNSConn(t)
	cfg := DefaultConfig()
	cfg.QueueNum, cfg.QueueCount = 100, 2
	rs, err := Build(cfg, []Policy{{Port: 4433, Side: SideLocal}}, QueueCompat)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rs.Maps {
		rs.Maps[i].Chains = rs.Maps[i].Chains[:1]
	}
	if err := rs.Replace(conn); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	t.Cleanup(func() { _ = Remove(conn) })
	passed, dropped := 0, 0
	for range 16 {
		err := dialIn(t, ns, "127.0.0.1:4433", false, 0)
		var ne net.Error
		switch {
		case err == nil:
			passed++
		case errors.As(err, &ne) && ne.Timeout():
			dropped++
		default:
			t.Fatalf("dial: %v", err)
		}
	}
	if passed == 0 || dropped == 0 {
		t.Errorf("%d connections passed and %d were dropped: want some of each (a hash without a map entry must drop)", passed, dropped)
	}
}
