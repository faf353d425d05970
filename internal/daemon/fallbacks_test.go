package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/ctl/ctltest"
	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
	"github.com/tcpcryptd/tcpcrypt/rules"
	"golang.org/x/sys/unix"
)

// fakeSockets is a sockLiveness with a fixed set of live sockets.
type fakeSockets struct {
	live  flowSet
	err   error
	calls int
}

func (f *fakeSockets) alive(local, remote netip.AddrPort) (bool, error) {
	f.calls++
	return f.live.has(local, remote), f.err
}

func (f *fakeSockets) connected() (flowSet, error) {
	f.calls++
	return f.live, f.err
}

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func tuple(i int) (local, remote netip.AddrPort) {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, 1}), uint16(40000+i)),
		netip.MustParseAddrPort("10.0.0.2:443")
}

func fallbackEvent(i int, reason engine.FallbackReason) engine.Event {
	l, r := tuple(i)
	return engine.Event{Kind: engine.EventFallback, Local: l, Remote: r, Mode: engine.Opportunistic, Reason: reason.String()}
}

func counters(r *fallbackRecord) map[string]uint64 {
	m := map[string]uint64{}
	r.addCounters(m)
	return m
}

func TestFallbackRecordBound(t *testing.T) {
	clk := &clock{t: time.Unix(1e6, 0)}
	r := newFallbackRecord(3, time.Hour, clk.now)
	r.socks = &fakeSockets{live: flowSet{}}
	for i := range 5 {
		r.event(fallbackEvent(i, engine.FallbackNoPeerENO))
		clk.t = clk.t.Add(time.Second)
	}
	got := r.list()
	if len(got) != 3 {
		t.Fatalf("%d entries after 5 fallbacks with a cap of 3", len(got))
	}
	for j, fb := range got {
		if l, _ := tuple(j + 2); fb.Local != l || fb.Reason != "no_peer_eno" {
			t.Errorf("entry %d = %+v; want the newest three, oldest first", j, fb)
		}
	}
	if m := counters(r); m["fallback_record_evicted"] != 2 || m["fallback_record_entries"] != 3 {
		t.Errorf("counters %v; want 2 evicted, 3 entries", m)
	}
	// The same tuple again replaces its entry, evicting nothing.
	r.event(fallbackEvent(4, engine.FallbackNoCommonTEP))
	if m := counters(r); m["fallback_record_evicted"] != 2 || m["fallback_record_entries"] != 3 {
		t.Errorf("after a repeat: counters %v", m)
	}
	l, rr := tuple(4)
	if fb, ok := r.get(l, rr); !ok || fb.Reason != "no_common_tep" {
		t.Errorf("repeat: %+v %v", fb, ok)
	}
}

func TestFallbackRecordAgeAndEvents(t *testing.T) {
	clk := &clock{t: time.Unix(1e6, 0)}
	r := newFallbackRecord(10, time.Minute, clk.now)
	r.socks = &fakeSockets{live: flowSet{}}
	r.event(fallbackEvent(0, engine.FallbackNoPeerENO))
	clk.t = clk.t.Add(40 * time.Second)
	r.event(fallbackEvent(1, engine.FallbackNoPeerENO))
	// Required-policy fallbacks are aborted by the engine: not recorded.
	ev := fallbackEvent(2, engine.FallbackNoPeerENO)
	ev.Mode = engine.Required
	r.event(ev)
	if n := len(r.list()); n != 2 {
		t.Fatalf("%d entries, want 2 (the required one is not recorded)", n)
	}
	clk.t = clk.t.Add(30 * time.Second) // entry 0 is 70s old, entry 1 30s
	got := r.list()
	if l, _ := tuple(1); len(got) != 1 || got[0].Local != l {
		t.Fatalf("after 70s: %+v; want only entry 1", got)
	}
	if m := counters(r); m["fallback_record_expired"] != 1 {
		t.Errorf("counters %v; want 1 expired", m)
	}
	// A later encryption or abort of the tuple removes it, uncounted.
	l, rr := tuple(1)
	r.event(engine.Event{Kind: engine.EventEncrypted, Local: l, Remote: rr})
	if _, ok := r.get(l, rr); ok {
		t.Error("entry kept after the tuple was encrypted")
	}
	r.event(fallbackEvent(3, engine.FallbackNoPeerENO))
	l, rr = tuple(3)
	r.event(engine.Event{Kind: engine.EventAbort, Local: l, Remote: rr})
	if m := counters(r); m["fallback_record_entries"] != 0 || m["fallback_record_expired"] != 1 || m["fallback_record_ended"] != 0 {
		t.Errorf("counters %v", m)
	}
}

func TestFallbackRecordLiveness(t *testing.T) {
	clk := &clock{t: time.Unix(1e6, 0)}
	r := newFallbackRecord(10, time.Hour, clk.now)
	fs := &fakeSockets{live: flowSet{}}
	r.socks = fs
	for i := range 3 {
		r.event(fallbackEvent(i, engine.FallbackNoPeerENO))
	}
	l0, r0 := tuple(0)
	fs.live.add(l0, r0)
	// Within the grace period the kernel is not asked.
	if n := len(r.live()); n != 3 || fs.calls != 0 {
		t.Fatalf("live within grace: %d entries, %d kernel calls; want 3, 0", n, fs.calls)
	}
	clk.t = clk.t.Add(fallbackGrace)
	got := r.live()
	if len(got) != 1 || got[0].Local != l0 {
		t.Fatalf("live = %+v; want only the connection with a socket", got)
	}
	if m := counters(r); m["fallback_record_ended"] != 2 || m["fallback_record_entries"] != 1 {
		t.Errorf("counters %v; want 2 ended, 1 entry", m)
	}
	if _, ok := r.lookup(l0, r0); !ok {
		t.Error("lookup of a live entry failed")
	}
	fs.live = flowSet{}
	if _, ok := r.lookup(l0, r0); ok {
		t.Error("lookup of an entry whose socket is gone succeeded")
	}
	// If the kernel cannot be asked, entries are believed.
	r.event(fallbackEvent(5, engine.FallbackNoPeerENO))
	clk.t = clk.t.Add(fallbackGrace)
	fs.err = errors.New("no sock_diag")
	l5, r5 := tuple(5)
	if _, ok := r.lookup(l5, r5); !ok || len(r.live()) != 1 {
		t.Error("entries dropped although the kernel could not be asked")
	}
}

// TestBackendFallenBack: a fallen-back connection is listed as plain with
// its reason and ctl answers "not encrypted" with it, in one message.
func TestBackendFallenBack(t *testing.T) {
	d, _, _ := testDaemon(t, 1)
	clk := &clock{t: time.Unix(1e6, 0)}
	d.fallbacks.now = clk.now
	fs := &fakeSockets{live: flowSet{}}
	d.fallbacks.socks = fs
	b := backend{d}
	ctx := context.Background()
	d.onEvent(fallbackEvent(0, engine.FallbackNoPeerENO))
	clk.t = clk.t.Add(time.Minute)
	l, r := tuple(0)
	fs.live.add(l, r)

	conns, err := b.Connections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 1 || conns[0].Local != l || conns[0].State != "plain" || conns[0].FallbackReason != "no_peer_eno" ||
		conns[0].SessionID != nil || conns[0].Role != ctl.RoleNone || conns[0].AgeSeconds < 59 {
		t.Fatalf("Connections = %+v", conns)
	}
	_, err = b.SessionID(ctx, l, r)
	want := "ctl: not encrypted: fell back to plain TCP 1m0s ago: the peer has no tcpcrypt " +
		"(no TCP-ENO option in its SYN or SYN-ACK) (no_peer_eno)"
	if !errors.Is(err, ctl.ErrNotEncrypted) || errors.Is(err, ctl.ErrPending) || err.Error() != want {
		t.Errorf("SessionID = %v;\nwant %q", err, want)
	}
	st, err := b.Status(ctx)
	if err != nil || st.Counters["fallback_record_entries"] != 1 {
		t.Errorf("status counters %v, %v", st.Counters, err)
	}

	// Once the socket is gone, the connection is not tracked.
	fs.live = flowSet{}
	_, err = b.SessionID(ctx, l, r)
	want = "ctl: not tracked by tcpcryptd (no rule covers its port, or it began before the daemon started)"
	if !errors.Is(err, ctl.ErrNotFound) || err.Error() != want {
		t.Errorf("SessionID after the socket closed = %v;\nwant %q", err, want)
	}
	if conns, _ := b.Connections(ctx); len(conns) != 0 {
		t.Errorf("Connections after the socket closed = %+v", conns)
	}
}

// TestKernelSocketsAlive asks the real kernel about a loopback connection:
// alive while open, gone once reset, and owned by whoever made each socket.
func TestKernelSocketsAlive(t *testing.T) {
	testenv.RequireRoot(t, "sock_diag lookups of this host's sockets")
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	local := c.LocalAddr().(*net.TCPAddr).AddrPort()
	remote := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	var k kernelSockets
	if ok, err := k.alive(local, remote); !ok || err != nil {
		t.Fatalf("alive(open) = %v, %v", ok, err)
	}
	if uid, err := k.owner(local, remote); err != nil || uid != uint32(os.Getuid()) {
		t.Errorf("owner(open) = %d, %v; want %d", uid, err, os.Getuid())
	}
	// A socket made while this thread's fsuid is nobody's belongs to
	// nobody: owner reads the owner, not the asker.
	nc := dialAs(t, 65534, l.Addr().String())
	defer nc.Close()
	ns, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	nl, nr := nc.LocalAddr().(*net.TCPAddr).AddrPort(), nc.RemoteAddr().(*net.TCPAddr).AddrPort()
	if uid, err := k.owner(nl, nr); err != nil || uid != 65534 {
		t.Errorf("owner(nobody's socket) = %d, %v; want 65534", uid, err)
	}
	if uid, err := k.owner(nr, nl); err != nil || uid != uint32(os.Getuid()) {
		t.Errorf("owner(the accepting end) = %d, %v; want %d", uid, err, os.Getuid())
	}
	if _, err := k.owner(netip.MustParseAddrPort("127.0.0.1:1"), remote); !errors.Is(err, errNoSocket) {
		t.Errorf("owner(never existed) = %v, want errNoSocket", err)
	}
	set, err := k.connected()
	if err != nil || !set.has(local, remote) || !set.has(remote, local) {
		t.Fatalf("connected() lacks the connection (%v)", err)
	}
	// SO_LINGER 0: close resets, and the socket is gone at once.
	if err := c.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if ok, err := k.alive(local, remote); ok || err != nil {
		t.Errorf("alive(reset) = %v, %v; want false", ok, err)
	}
	if ok, err := k.alive(netip.MustParseAddrPort("127.0.0.1:1"), remote); ok || err != nil {
		t.Errorf("alive(never existed) = %v, %v", ok, err)
	}
}

// TestSessIDMessages: through the real server and client, each answer is
// one message naming the connection once.
func TestSessIDMessages(t *testing.T) {
	d, fe, _ := testDaemon(t, 1)
	clk := &clock{t: time.Unix(1e6, 0)}
	d.fallbacks.now = clk.now
	d.fallbacks.socks = &fakeSockets{live: flowSet{}}
	path := ctltest.Start(t, ctlserver.Config{Backend: backend{d}})
	c, err := ctl.Dialer{Address: path, DaemonUID: uint32(os.Getuid())}.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	local, remote := netip.MustParseAddrPort("10.77.0.2:59884"), netip.MustParseAddrPort("10.77.0.1:8095")
	fb := netip.MustParseAddrPort("10.77.0.2:59885")
	d.onEvent(engine.Event{Kind: engine.EventFallback, Local: fb, Remote: remote, Mode: engine.Opportunistic,
		Reason: engine.FallbackNoPeerENO.String()})
	clk.t = clk.t.Add(3 * time.Second)
	pend := netip.MustParseAddrPort("10.77.0.2:59886")
	d.mu.Lock()
	d.cfg.Rules = []rules.Policy{{Port: 8095, Side: rules.SideRemote, Mode: rules.ModeOpportunistic}}
	if err := d.applyLocked(); err != nil {
		t.Fatal(err)
	}
	d.mu.Unlock()
	syn(t, fe.engs[0], pend, remote)

	for _, tt := range []struct {
		local netip.AddrPort
		is    error
		want  string
	}{
		{local, ctl.ErrNotFound, "ctl: 10.77.0.2:59884 -> 10.77.0.1:8095: not tracked by tcpcryptd " +
			"(no rule covers its port, or it began before the daemon started)"},
		{fb, ctl.ErrNotEncrypted, "ctl: 10.77.0.2:59885 -> 10.77.0.1:8095: not encrypted: fell back to plain TCP 3s ago: " +
			"the peer has no tcpcrypt (no TCP-ENO option in its SYN or SYN-ACK) (no_peer_eno)"},
		{pend, ctl.ErrPending, "ctl: 10.77.0.2:59886 -> 10.77.0.1:8095: key exchange not finished yet (state syn-sent)"},
	} {
		_, err := c.SessionIDFor(ctx, tt.local, remote)
		if err == nil || err.Error() != tt.want || !errors.Is(err, tt.is) {
			t.Errorf("SessionIDFor(%s) = %v;\nwant %q matching %v", tt.local, err, tt.want, tt.is)
		}
	}
}

// TestRuleErrorMessages: a refused rule change says the rule once and
// "ctl:" once (through the real server and client).
func TestRuleErrorMessages(t *testing.T) {
	d, _, _ := testDaemon(t, 1)
	path := ctltest.Start(t, ctlserver.Config{Backend: backend{d}})
	c, err := ctl.Dialer{Address: path, DaemonUID: uint32(os.Getuid())}.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	r := ctl.Rule{Port: 444, Side: ctl.SideLocal, Mode: ctl.ModeRequired}
	err = c.DelRule(ctx, r)
	if os.Getuid() != 0 {
		// Rule changes need root on the unix socket: the refusal is one
		// message too.
		if want := fmt.Sprintf("ctl: rules.del is forbidden: it needs root (peer uid %d)", os.Getuid()); err == nil || err.Error() != want {
			t.Errorf("DelRule as uid %d = %v; want %q", os.Getuid(), err, want)
		}
		t.Skip("the rule-change messages need root: rule changes are refused to other users")
	}
	if want := "ctl: rules.del 444/local required: no such rule"; err == nil || err.Error() != want || !errors.Is(err, ctl.ErrNotFound) {
		t.Errorf("DelRule(missing) = %v; want %q", err, want)
	}
	if err := c.AddRule(ctx, r); err != nil {
		t.Fatal(err)
	}
	err = c.AddRule(ctx, r)
	if err == nil || !errors.Is(err, ctl.ErrBadRequest) || !strings.HasPrefix(err.Error(), "ctl: rules.add 444/local required: ") ||
		strings.Count(err.Error(), "ctl:") != 1 || strings.Count(err.Error(), "bad request") != 0 {
		t.Errorf("AddRule(duplicate) = %v; want one message naming the rule once", err)
	}
	t.Logf("duplicate: %v", err)
}

// dialAs connects to addr with a socket created while this goroutine's OS
// thread has fsuid uid (the kernel takes a socket's owner from the
// creator's fsuid), then restores the thread's fsuid.
func dialAs(t *testing.T, uid int, addr string) net.Conn {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, err := unix.SetfsuidRetUid(uid)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp4", addr)
	if _, rerr := unix.SetfsuidRetUid(old); rerr != nil {
		t.Fatal(rerr)
	}
	if got, _ := unix.SetfsuidRetUid(old); got != old {
		t.Fatalf("fsuid %d after restoring %d", got, old)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}
