package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/eno"
	"github.com/tcpcryptd/tcpcrypt/nfq"
	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

// fakeEngines runs Inspect directly on real engines.
type fakeEngines struct {
	engs  []*engine.Engine
	stats nfq.Stats
	err   error
}

func (f *fakeEngines) Inspect(_ context.Context, fn func(int, nfq.Engine)) error {
	if f.err != nil {
		return f.err
	}
	for i, e := range f.engs {
		fn(i, e)
	}
	return nil
}

func (f *fakeEngines) Stats() nfq.Stats { return f.stats }

// fakeTable records the rule sets applied.
type fakeTable struct {
	applied [][]rules.Policy
	fail    error
	removed int
}

func (f *fakeTable) Apply(_ rules.Config, ps []rules.Policy) error {
	if f.fail != nil {
		return f.fail
	}
	f.applied = append(f.applied, append([]rules.Policy(nil), ps...))
	return nil
}

func (f *fakeTable) Remove() error { f.removed++; return nil }

func (f *fakeTable) Balance() string { return "flow" }

func testDaemon(t *testing.T, nEngines int) (*Daemon, *fakeEngines, *fakeTable) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Version = "test"
	cfg.StateFile = filepath.Join(t.TempDir(), "state", "rules.json")
	cfg.QueueNum, cfg.QueueCount = 100, 2
	d := newDaemon(cfg, slog.New(slog.DiscardHandler))
	fe := &fakeEngines{stats: nfq.Stats{PacketsOut: 5, HeldNow: 2}}
	for range nEngines {
		e, err := engine.New(d.engineConfig(cfg, crypto.NewCache(8, nil, 0)))
		if err != nil {
			t.Fatal(err)
		}
		fe.engs = append(fe.engs, e)
	}
	ft := &fakeTable{}
	d.disp, d.table = fe, ft
	return d, fe, ft
}

// syn sends an outbound SYN from local to remote through e.
func syn(t *testing.T, e *engine.Engine, local, remote netip.AddrPort) {
	t.Helper()
	var ob packet.OptionBuilder
	ob.Add(packet.OptMSS, []byte{0x05, 0xb4})
	pkt, err := packet.Build(nil, &packet.Fields{Src: local, Dst: remote, Seq: 1000, Flags: packet.FlagSYN,
		Window: 65535, Options: ob.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	e.Process(pkt, engine.Outbound)
}

// coverRemote443 makes d's configured rules cover remote port 443 and
// applies them.
func coverRemote443(t *testing.T, d *Daemon) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg.Rules = []rules.Policy{{Port: 443, Side: rules.SideRemote, Mode: rules.ModeOpportunistic}}
	if err := d.applyLocked(); err != nil {
		t.Fatal(err)
	}
}

func TestBackendConnections(t *testing.T) {
	d, fe, _ := testDaemon(t, 2)
	b := backend{d}
	ctx := context.Background()
	local, remote := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:443")
	if _, err := b.SessionID(ctx, local, remote); !errors.Is(err, ctl.ErrNotFound) {
		t.Fatalf("SessionID of an unknown flow = %v, want ErrNotFound", err)
	}
	coverRemote443(t, d)
	syn(t, fe.engs[1], local, remote)
	conns, err := b.Connections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 1 || conns[0].Local != local || conns[0].Remote != remote || conns[0].State != "syn-sent" {
		t.Fatalf("Connections = %+v", conns)
	}
	_, err = b.SessionID(ctx, local, remote)
	if !errors.Is(err, ctl.ErrPending) || errors.Is(err, ctl.ErrNotEncrypted) ||
		err.Error() != "ctl: key exchange not finished yet (state syn-sent)" {
		t.Fatalf("SessionID during the handshake = %v; want ErrPending", err)
	}
	// Mapped addresses are looked up as plain IPv4.
	mapped := netip.AddrPortFrom(netip.AddrFrom16(local.Addr().As16()), local.Port())
	if _, err := b.SessionID(ctx, mapped, remote); !errors.Is(err, ctl.ErrPending) {
		t.Errorf("SessionID with a mapped local address = %v", err)
	}

	st, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "test" || st.Connections != 1 || st.Rules != 1 || !st.FailOpen ||
		!cmp.Equal(st.Queues, []uint16{100, 101}) || st.Balance != "flow" {
		t.Errorf("Status = %+v", st)
	}
	if st.Counters["engine_packets_out"] != 1 || st.Counters["engine_flows_tracked"] != 1 ||
		st.Counters["nfq_packets_out"] != 5 || st.Counters["nfq_held_now"] != 2 {
		t.Errorf("counters: %v", st.Counters)
	}
	if _, ok := st.Counters["engine_drop_consumed"]; !ok {
		t.Error("engine drop counters missing")
	}
	if st.StartupCheck.Result != CheckSkipped {
		t.Errorf("check before running = %+v", st.StartupCheck)
	}
	fe.err = nfq.ErrNotRunning
	if _, err := b.Status(ctx); err == nil {
		t.Error("Status without engines succeeded")
	}
	if _, err := b.Connections(ctx); err == nil {
		t.Error("Connections without engines succeeded")
	}
}

func TestConnFromFlow(t *testing.T) {
	sid := append([]byte{crypto.TEPX25519}, make([]byte, 32)...)
	sid[5] = 0xaa
	fi := engine.FlowInfo{
		Local:  netip.MustParseAddrPort("[::ffff:192.0.2.1]:443"),
		Remote: netip.MustParseAddrPort("[2001:db8::9]:5000"),
		State:  engine.StateEstablished, Role: eno.RoleB, TEP: crypto.TEPX25519 | 0x80,
		AEAD: crypto.ChaCha20Poly1305, SessionID: sid, Resumed: true,
		BytesIn: 1, BytesOut: 2, FramesIn: 3, FramesOut: 4, Age: 1500 * time.Millisecond,
	}
	want := ctl.Conn{
		Local: netip.MustParseAddrPort("192.0.2.1:443"), Remote: fi.Remote,
		State: "established", Role: ctl.RoleB, TEP: ctl.TEP{Name: "TCPCRYPT_ECDHE_Curve25519", ID: 0x23},
		AEAD: "AEAD_CHACHA20_POLY1305", SessionID: sid, Resumed: true,
		BytesIn: 1, BytesOut: 2, FramesIn: 3, FramesOut: 4, AgeSeconds: 1.5,
	}
	if d := cmp.Diff(want, ConnFromFlow(fi), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	fi = engine.FlowInfo{State: engine.StateAborted, Role: eno.RoleA, Abort: engine.AbortAuth, LastError: "frame at 40"}
	c := ConnFromFlow(fi)
	if c.Role != ctl.RoleA || c.AEAD != "" || c.TEP != (ctl.TEP{}) || c.SessionID != nil || c.LastError != "abort auth_failed: frame at 40" {
		t.Errorf("aborted flow: %+v", c)
	}
}

func TestRuleConversion(t *testing.T) {
	for _, r := range []ctl.Rule{
		{Port: 443, Side: ctl.SideLocal, Mode: ctl.ModeRequired},
		{Port: 80, Side: ctl.SideBoth, Mode: ctl.ModeExclude, Prefix: netip.MustParsePrefix("2001:db8::/32")},
		{Port: 1, Side: ctl.SideRemote, Mode: ctl.ModeOpportunistic},
		{Port: 8443, Side: ctl.SideLocal, Mode: ctl.ModeRequired,
			Options: []ctl.Option{ctl.OptionNoResume, ctl.OptionNoCache, ctl.OptionAppAware}},
	} {
		p, err := PolicyFromRule(r)
		if err != nil {
			t.Fatalf("%v: %v", r, err)
		}
		if back := RuleFromPolicy(p); !back.Equal(r) {
			t.Errorf("round trip %+v -> %+v -> %+v", r, p, back)
		}
	}
	for _, r := range []ctl.Rule{
		{Port: 0, Side: ctl.SideLocal, Mode: ctl.ModeRequired},
		{Port: 1, Side: "up", Mode: ctl.ModeRequired},
		{Port: 1, Side: ctl.SideLocal, Mode: "maybe"},
		{Port: 1, Side: ctl.SideLocal, Mode: ctl.ModeRequired, Prefix: netip.MustParsePrefix("10.1.0.0/8")},
		{Port: 1, Side: ctl.SideLocal, Mode: ctl.ModeRequired, Options: []ctl.Option{"fast"}},
		{Port: 1, Side: ctl.SideLocal, Mode: ctl.ModeRequired, Options: []ctl.Option{ctl.OptionNoCache, ctl.OptionNoCache}},
		{Port: 1, Side: ctl.SideLocal, Mode: ctl.ModeExclude, Options: []ctl.Option{ctl.OptionNoResume}},
	} {
		if _, err := PolicyFromRule(r); !errors.Is(err, ctl.ErrBadRequest) {
			t.Errorf("PolicyFromRule(%+v) = %v, want ErrBadRequest", r, err)
		}
	}
}

func TestBackendRules(t *testing.T) {
	d, _, ft := testDaemon(t, 1)
	b := backend{d}
	ctx := context.Background()
	d.cfg.Rules = []rules.Policy{{Port: 22, Side: rules.SideLocal, Mode: rules.ModeOpportunistic}}
	r443 := ctl.Rule{Port: 443, Side: ctl.SideLocal, Mode: ctl.ModeRequired}
	if err := b.AddRule(ctx, r443); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadState(d.cfg.StateFile); err != nil || len(got) != 1 || got[0].Port != 443 {
		t.Fatalf("state file after add: %v, %v", got, err)
	}
	if len(ft.applied) != 1 || len(ft.applied[0]) != 2 {
		t.Fatalf("applied %v", ft.applied)
	}
	l, r := netip.MustParseAddrPort("10.0.0.1:443"), netip.MustParseAddrPort("10.0.0.2:5000")
	if got := d.policy.Policy(l, r); got != engine.Required {
		t.Errorf("engine policy after add = %v, want required", got)
	}
	list, _ := b.Rules(ctx)
	if !slices.EqualFunc(list, []ctl.Rule{{Port: 22, Side: ctl.SideLocal, Mode: ctl.ModeOpportunistic}, r443}, ctl.Rule.Equal) {
		t.Errorf("Rules = %v", list)
	}
	// Duplicates and overlaps are bad requests and change nothing.
	for _, dup := range []ctl.Rule{r443, {Port: 443, Side: ctl.SideBoth, Mode: ctl.ModeExclude}, {Port: 22, Side: ctl.SideLocal, Mode: ctl.ModeRequired}} {
		if err := b.AddRule(ctx, dup); !errors.Is(err, ctl.ErrBadRequest) {
			t.Errorf("AddRule(%v) = %v, want ErrBadRequest", dup, err)
		}
	}
	if err := b.DelRule(ctx, ctl.Rule{Port: 22, Side: ctl.SideLocal, Mode: ctl.ModeOpportunistic}); !errors.Is(err, ctl.ErrBadRequest) ||
		!strings.Contains(err.Error(), "configuration") {
		t.Errorf("DelRule of a configured rule = %v", err)
	}
	if err := b.DelRule(ctx, ctl.Rule{Port: 444, Side: ctl.SideLocal, Mode: ctl.ModeRequired}); !errors.Is(err, ctl.ErrNotFound) {
		t.Errorf("DelRule of an unknown rule = %v", err)
	}
	// A table that cannot be applied leaves rules, policy and file alone.
	ft.fail = errors.New("netlink says no")
	if err := b.AddRule(ctx, ctl.Rule{Port: 8443, Side: ctl.SideLocal, Mode: ctl.ModeRequired}); err == nil {
		t.Error("AddRule succeeded with a failing table")
	}
	if got := d.policy.Policy(netip.MustParseAddrPort("10.0.0.1:8443"), r); got != engine.Exclude {
		t.Errorf("policy kept a rule the table refused: %v", got)
	}
	if got, _ := LoadState(d.cfg.StateFile); len(got) != 1 {
		t.Errorf("state file changed after a failed apply: %v", got)
	}
	ft.fail = nil
	if err := b.DelRule(ctx, r443); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadState(d.cfg.StateFile); err != nil || len(got) != 0 {
		t.Errorf("state file after del: %v, %v", got, err)
	}
	if got := d.policy.Policy(l, r); got != engine.Exclude {
		t.Errorf("engine policy after del = %v", got)
	}
	// A state file that cannot be written: the rule is refused and the
	// table goes back to what it was.
	os.RemoveAll(filepath.Dir(d.cfg.StateFile))
	os.WriteFile(filepath.Dir(d.cfg.StateFile), nil, 0o600) // a file where the directory should be
	n := len(ft.applied)
	if err := b.AddRule(ctx, r443); !errors.Is(err, ErrState) {
		t.Errorf("AddRule with an unwritable state file = %v", err)
	}
	if len(ft.applied) != n+2 || len(ft.applied[n+1]) != 1 {
		t.Errorf("table not restored: %v", ft.applied[n:])
	}
	if list, _ := b.Rules(ctx); len(list) != 1 {
		t.Errorf("Rules after failed add = %v", list)
	}
}

func TestTempRules(t *testing.T) {
	d, _, ft := testDaemon(t, 1)
	d.cfg.Rules = []rules.Policy{{Port: 7, Side: rules.SideRemote, Mode: rules.ModeExclude}}
	id, err := d.addTemp(rules.Policy{Port: 5000, Side: rules.SideBoth})
	if err != nil {
		t.Fatal(err)
	}
	l, r := netip.MustParseAddrPort("127.0.0.1:5000"), netip.MustParseAddrPort("127.0.0.1:40000")
	if d.policy.Policy(l, r) != engine.Opportunistic || d.policy.Policy(r, l) != engine.Opportunistic {
		t.Error("temporary rule does not cover both ends")
	}
	if _, err := d.addTemp(rules.Policy{Port: 7, Side: rules.SideRemote}); !errors.Is(err, rules.ErrDuplicate) {
		t.Errorf("overlapping temporary rule: %v", err)
	}
	if list, _ := (backend{d}).Rules(context.Background()); len(list) != 1 {
		t.Errorf("temporary rules listed: %v", list)
	}
	d.removeTemp(id)
	d.removeTemp(id) // twice: no-op
	if d.policy.Policy(l, r) != engine.Exclude {
		t.Error("temporary rule still in force")
	}
	if len(ft.applied) != 2 {
		t.Errorf("applied %d times, want 2", len(ft.applied))
	}
}

func TestReload(t *testing.T) {
	d, _, ft := testDaemon(t, 1)
	d.cfg.Rules = []rules.Policy{{Port: 22, Side: rules.SideLocal}}
	SaveState(d.cfg.StateFile, []rules.Policy{{Port: 443, Side: rules.SideLocal, Mode: rules.ModeRequired}})
	next := d.cfg
	next.Rules = []rules.Policy{{Port: 25, Side: rules.SideLocal}}
	next.Workers, next.QueueCount = 7, 0
	d.reload(func() (Config, error) { return next, nil })
	if len(ft.applied) != 1 || len(ft.applied[0]) != 2 {
		t.Fatalf("applied %v", ft.applied)
	}
	if d.cfg.Workers == 7 {
		t.Error("workers changed while running")
	}
	l, r := netip.MustParseAddrPort("10.0.0.1:25"), netip.MustParseAddrPort("10.0.0.2:5000")
	if d.policy.Policy(l, r) != engine.Opportunistic {
		t.Error("reloaded rule not in force")
	}
	// A bad reload keeps everything.
	d.reload(func() (Config, error) { return Config{}, errors.New("file vanished") })
	next.Rules = []rules.Policy{{Port: 443, Side: rules.SideBoth}} // overlaps the state file
	d.reload(func() (Config, error) { return next, nil })
	if len(ft.applied) != 1 || d.policy.Policy(l, r) != engine.Opportunistic {
		t.Errorf("a refused reload changed the rules: %v", ft.applied)
	}
	if got := restartOnly(DefaultConfig(), Config{QueueNum: 1}); len(got) < 3 {
		t.Errorf("restartOnly = %v", got)
	}
	added, removed := diffRules([]rules.Policy{{Port: 1, Side: rules.SideLocal}}, []rules.Policy{{Port: 2, Side: rules.SideLocal}})
	if !cmp.Equal(added, []string{"2:local:opportunistic"}) || !cmp.Equal(removed, []string{"1:local:opportunistic"}) {
		t.Errorf("diffRules = %v, %v", added, removed)
	}
}

// Every worker's engine draws on one memory budget of --memory-limit bytes
// (the engine's default when unset), and a change needs a restart.
func TestEnginesShareMemoryBudget(t *testing.T) {
	for _, tt := range []struct {
		limit uint64
		want  int64
	}{{0, engine.DefaultMemoryLimit}, {64 << 20, 64 << 20}} {
		cfg := DefaultConfig()
		cfg.MemoryLimit = tt.limit
		d := newDaemon(cfg, slog.New(slog.DiscardHandler))
		var budgets []*engine.Budget
		for range 3 {
			e, err := engine.New(d.engineConfig(cfg, nil))
			if err != nil {
				t.Fatal(err)
			}
			budgets = append(budgets, e.Budget())
		}
		for _, b := range budgets {
			if b != budgets[0] || b.Limit() != tt.want {
				t.Errorf("memory-limit %d: engine budget %p of %d bytes, want one shared budget of %d", tt.limit, b, b.Limit(), tt.want)
			}
		}
	}
	b := DefaultConfig()
	b.MemoryLimit = 1 << 30
	if got := restartOnly(DefaultConfig(), b); !slices.Contains(got, "memory-limit") {
		t.Errorf("restartOnly = %v, want memory-limit", got)
	}
}

// TestBackendFlushCache: cache.flush reaches the engine that tracks the
// connection and reports a connection nobody tracks as not found.
func TestBackendFlushCache(t *testing.T) {
	d, fe, _ := testDaemon(t, 2)
	b := backend{d}
	ctx := context.Background()
	local, remote := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:443")
	if _, err := b.FlushCache(ctx, local, remote); !errors.Is(err, ctl.ErrNotFound) {
		t.Fatalf("FlushCache of an unknown flow = %v, want ErrNotFound", err)
	}
	coverRemote443(t, d)
	syn(t, fe.engs[1], local, remote)
	// The flow has no keys yet, so nothing of it is cached.
	if n, err := b.FlushCache(ctx, local, remote); err != nil || n != 0 {
		t.Errorf("FlushCache of a tracked flow = %d, %v; want 0, nil", n, err)
	}
	mapped := netip.AddrPortFrom(netip.AddrFrom16(local.Addr().As16()), local.Port())
	if _, err := b.FlushCache(ctx, mapped, remote); err != nil {
		t.Errorf("FlushCache with a mapped local address = %v", err)
	}
	fe.err = nfq.ErrNotRunning
	if _, err := b.FlushCache(ctx, local, remote); err == nil || errors.Is(err, ctl.ErrNotFound) {
		t.Errorf("FlushCache without engines = %v, want a failure other than not found", err)
	}
}

// TestRuleOptionsReachEngine: a rule's appaware option makes the engine
// send a = 1 in the SYN of a matched connection (RFC 8547 §4.2), and a
// connection of another rule keeps a = 0.
func TestRuleOptionsReachEngine(t *testing.T) {
	d, fe, _ := testDaemon(t, 1)
	d.mu.Lock()
	d.cfg.Rules = []rules.Policy{
		{Port: 443, Side: rules.SideRemote, Mode: rules.ModeOpportunistic, Options: rules.OptAppAware},
		{Port: 80, Side: rules.SideRemote, Mode: rules.ModeOpportunistic},
	}
	if err := d.applyLocked(); err != nil {
		t.Fatal(err)
	}
	d.mu.Unlock()
	for _, tc := range []struct {
		port  uint16
		wantA bool
	}{{443, true}, {80, false}} {
		local, remote := netip.MustParseAddrPort("10.0.0.1:40000"), netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), tc.port)
		var ob packet.OptionBuilder
		ob.Add(packet.OptMSS, []byte{0x05, 0xb4})
		pkt, err := packet.Build(nil, &packet.Fields{Src: local, Dst: remote, Seq: 1000, Flags: packet.FlagSYN,
			Window: 65535, Options: ob.Bytes()})
		if err != nil {
			t.Fatal(err)
		}
		res := fe.engs[0].Process(pkt, engine.Outbound)
		if res.Verdict != engine.Replace {
			t.Fatalf("port %d: verdict %v, want replace (ENO added)", tc.port, res.Verdict)
		}
		var p packet.Packet
		if err := packet.Parse(res.Packet, &p); err != nil {
			t.Fatal(err)
		}
		raw, n, err := eno.FindENO(p.TCP.Options())
		if err != nil || n != 1 {
			t.Fatalf("port %d: ENO options %d, %v", tc.port, n, err)
		}
		o, err := eno.ParseSYN(raw)
		if err != nil {
			t.Fatal(err)
		}
		if o.A() != tc.wantA {
			t.Errorf("port %d: SYN a bit %v, want %v", tc.port, o.A(), tc.wantA)
		}
	}
}
