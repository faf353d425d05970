package rules

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/tcpcryptd/tcpcrypt/internal/netns"
)

func TestGuardKey(t *testing.T) {
	tests := []struct {
		local, remote string
		v6            bool
		key           []byte
	}{
		{"192.0.2.1:40000", "198.51.100.2:443", false, []byte{
			192, 0, 2, 1, 198, 51, 100, 2, 0x9c, 0x40, 0, 0, 0x01, 0xbb, 0, 0}},
		{"[2001:db8::1]:1", "[2001:db8::2]:65535", true, append(append(
			netip.MustParseAddr("2001:db8::1").AsSlice(), netip.MustParseAddr("2001:db8::2").AsSlice()...),
			0, 1, 0, 0, 0xff, 0xff, 0, 0)},
	}
	for _, tt := range tests {
		l, r := netip.MustParseAddrPort(tt.local), netip.MustParseAddrPort(tt.remote)
		key, v6, err := guardKey(l, r)
		if err != nil || v6 != tt.v6 || !slices.Equal(key, tt.key) {
			t.Errorf("guardKey(%v, %v) = %x, %v, %v; want %x, %v", l, r, key, v6, err, tt.key, tt.v6)
		}
		gl, gr, err := parseGuardKey(key)
		if err != nil || gl != l || gr != r {
			t.Errorf("parseGuardKey(%x) = %v, %v, %v", key, gl, gr, err)
		}
	}
	// An IPv4-mapped address joins the IPv4 set.
	if _, v6, err := guardKey(netip.MustParseAddrPort("[::ffff:192.0.2.1]:1"), netip.MustParseAddrPort("192.0.2.2:2")); err != nil || v6 {
		t.Errorf("mapped address: v6 %v, %v", v6, err)
	}
	if _, _, err := guardKey(netip.MustParseAddrPort("192.0.2.1:1"), netip.MustParseAddrPort("[2001:db8::2]:2")); !errors.Is(err, ErrConfig) {
		t.Errorf("mixed families: %v, want ErrConfig", err)
	}
	for _, n := range []int{0, 15, 17, 39, 41} {
		if _, _, err := parseGuardKey(make([]byte, n)); err == nil {
			t.Errorf("parseGuardKey of %d bytes: no error", n)
		}
	}
}

// TestGuardBatch: Protect sends one batch of new elements per family;
// Unprotect of flows already gone (ENOENT) is not an error.
func TestGuardBatch(t *testing.T) {
	rec := &recorder{}
	m := NewManager(rec.conn(t), nil)
	f4 := Flow{netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("192.0.2.2:443")}
	f6 := Flow{netip.MustParseAddrPort("[2001:db8::1]:40000"), netip.MustParseAddrPort("[2001:db8::2]:443")}
	if err := m.Protect(f4, f6); err != nil {
		t.Fatal(err)
	}
	want := []string{"batch", "newsetelem inet tcpcrypt protected4", "newsetelem inet tcpcrypt protected6", "batch"}
	if diff := cmp.Diff(want, names(t, rec.reqs)); diff != "" {
		t.Errorf("Protect batch (-want +got):\n%s", diff)
	}
	rec.reqs = nil
	rec.fail = failType(unix.NFT_MSG_DELSETELEM, unix.ENOENT)
	if err := m.Unprotect(f4, f6); err != nil {
		t.Errorf("Unprotect of gone flows: %v", err)
	}
	rec.fail = failType(unix.NFT_MSG_NEWSETELEM, unix.ENOENT) // no table
	if err := m.Protect(f4); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Protect without the table: %v, want ENOENT", err)
	}
	if err := m.Protect(); err != nil {
		t.Errorf("Protect of nothing: %v", err)
	}
}

// TestIntegrationGuard checks on the real kernel, in a fresh namespace with
// no queue reader, that a protected flow's packets are dropped although its
// port's rule bypasses (fail-open), and stay dropped after the rule is
// deleted (the table updated in place); other connections still pass;
// ProtectedFlows reads the sets back; unprotecting lets the flow resume.
func TestIntegrationGuard(t *testing.T) {
	ns, conn := newNSConn(t)
	m := NewManager(conn, nil)
	cfg := DefaultConfig()
	cover := []Policy{{Port: 4433, Side: SideBoth}, {Port: 4434, Side: SideBoth}} // opportunistic: bypass
	if err := m.Apply(cfg, cover); err != nil {
		t.Fatal(err)
	}
	type pair struct {
		c, s net.Conn
		ln   net.Listener
	}
	var p pair
	if err := ns.Do(func() error {
		var err error
		p.ln, err = net.Listen("tcp", "127.0.0.1:4433")
		if err != nil {
			return err
		}
		p.c, err = net.DialTimeout("tcp", "127.0.0.1:4433", time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer p.ln.Close()
	defer p.c.Close()
	var err error
	if p.s, err = p.ln.Accept(); err != nil {
		t.Fatal(err)
	}
	defer p.s.Close()
	// exchange sends one byte each way and reports whether both arrived
	// within d.
	exchange := func(d time.Duration) bool {
		t.Helper()
		ok := true
		for _, ends := range [][2]net.Conn{{p.c, p.s}, {p.s, p.c}} {
			_ = ends[1].SetReadDeadline(time.Now().Add(d))
			if _, err := ends[0].Write([]byte{7}); err != nil {
				t.Fatalf("write: %v", err)
			}
			var b [1]byte
			if _, err := ends[1].Read(b[:]); err != nil {
				ok = false
			}
		}
		return ok
	}
	if !exchange(time.Second) {
		t.Fatal("fail-open connection does not pass before it is protected")
	}
	cli := netip.MustParseAddrPort(p.c.LocalAddr().String())
	srv := netip.MustParseAddrPort(p.s.LocalAddr().String())
	flows := []Flow{{cli, srv}, {srv, cli}} // loopback: both ends are local
	if err := m.Protect(flows...); err != nil {
		t.Fatalf("Protect: %v", err)
	}
	if exchange(300 * time.Millisecond) {
		t.Fatal("protected flow passed with no daemon reading the queue (fail-open leaked it)")
	}
	if err := dialIn(t, ns, "127.0.0.1:4434", false, 0); err != nil {
		t.Errorf("another connection on a covered port: %v, want it to fail open", err)
	}
	// Delete the port's rule: the table is updated in place, the sets kept.
	if err := m.Apply(cfg, nil); err != nil {
		t.Fatal(err)
	}
	got, err := ProtectedFlows(conn)
	if err != nil {
		t.Fatal(err)
	}
	sortFlows := func(f []Flow) {
		slices.SortFunc(f, func(a, b Flow) int { return strings.Compare(a.Local.String(), b.Local.String()) })
	}
	sortFlows(got)
	sortFlows(flows)
	if diff := cmp.Diff(flows, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("ProtectedFlows after a rule change (-want +got):\n%s", diff)
	}
	if exchange(300 * time.Millisecond) {
		t.Fatal("protected flow passed after its port's rule was deleted")
	}
	if err := m.Unprotect(flows...); err != nil {
		t.Fatalf("Unprotect: %v", err)
	}
	if err := m.Unprotect(flows...); err != nil {
		t.Errorf("second Unprotect: %v", err)
	}
	// TCP retransmits what was dropped; with no rule left it arrives.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for !exchange(time.Second) {
		if ctx.Err() != nil {
			t.Fatal("unprotected flow did not resume")
		}
	}
	// A replace (what a new instance does) starts with empty sets.
	if err := m.Protect(flows...); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(); err != nil {
		t.Fatal(err)
	}
	if got, err := ProtectedFlows(conn); err != nil || len(got) != 0 {
		t.Errorf("ProtectedFlows without the table: %v, %v", got, err)
	}
	if err := m.Apply(cfg, cover); err != nil {
		t.Fatal(err)
	}
	if got, err := ProtectedFlows(conn); err != nil || len(got) != 0 {
		t.Errorf("ProtectedFlows after a replace: %v, %v", got, err)
	}
}

// BenchmarkIntegrationGuardProtect measures what the guard costs per
// encrypted connection: one Protect and one Unprotect (two netlink batches
// on a lasting socket), with 10,000 other flows in the set.
func BenchmarkIntegrationGuardProtect(b *testing.B) {
	ns := netns.NewForTest(b)
	conn, err := nftables.New(nftables.WithNetNSFd(ns.Fd()), nftables.AsLasting())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.CloseLasting()
	m := NewManager(conn, nil)
	if err := m.Apply(DefaultConfig(), []Policy{{Port: 443, Side: SideBoth}}); err != nil {
		b.Fatal(err)
	}
	fill := make([]Flow, 0, 10000)
	for i := range 10000 {
		fill = append(fill, Flow{netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 443),
			netip.MustParseAddrPort("10.2.0.1:50000")})
	}
	if err := m.Protect(fill...); err != nil {
		b.Fatal(err)
	}
	f := Flow{netip.MustParseAddrPort("10.0.0.1:443"), netip.MustParseAddrPort("10.0.0.2:40000")}
	b.ResetTimer()
	for range b.N {
		if err := m.Protect(f); err != nil {
			b.Fatal(err)
		}
		if err := m.Unprotect(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIntegrationGuardPath measures what the guard rules cost every
// packet that passes the table: a loopback TCP bulk transfer on a port no
// rule covers, through the table with its guard rules (and 10,000 protected
// flows) and through the same table without them, in the same run.
func BenchmarkIntegrationGuardPath(b *testing.B) {
	for _, withGuard := range []bool{false, true} {
		name := map[bool]string{false: "no-guard", true: "guard"}[withGuard]
		b.Run(name, func(b *testing.B) {
			ns := netns.NewForTest(b)
			conn, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
			if err != nil {
				b.Fatal(err)
			}
			rs, err := Build(DefaultConfig(), []Policy{{Port: 443, Side: SideBoth}}, QueueCompat)
			if err != nil {
				b.Fatal(err)
			}
			if !withGuard {
				for i := range rs.Chains {
					rs.Chains[i].Rules = slices.DeleteFunc(rs.Chains[i].Rules, func(r Rule) bool {
						return strings.HasPrefix(r.Comment, "flows tcpcryptd encrypted")
					})
				}
			}
			if err := rs.Replace(conn); err != nil {
				b.Fatal(err)
			}
			m := NewManager(conn, nil)
			m.applied, m.queue = true, QueueCompat
			fill := make([]Flow, 0, 10000)
			for i := range 10000 {
				fill = append(fill, Flow{netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), 9000),
					netip.MustParseAddrPort("127.0.0.1:50000")})
			}
			if err := m.Protect(fill...); err != nil {
				b.Fatal(err)
			}
			bulkIn(b, ns, "127.0.0.1:9000")
		})
	}
}

// bulkIn sends b.N chunks of 64 KiB over one loopback connection inside ns.
func bulkIn(b *testing.B, ns *netns.NS, addr string) {
	var ln net.Listener
	var c net.Conn
	if err := ns.Do(func() error {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return err
		}
		c, err = net.Dial("tcp", addr)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	done := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, s)
		done <- n
	}()
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	if n := <-done; n != int64(b.N)*int64(len(buf)) {
		b.Fatalf("received %d bytes, want %d", n, int64(b.N)*int64(len(buf)))
	}
}
