package rules

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"github.com/tcpcryptd/tcpcrypt/internal/netns"
)

var update = flag.Bool("update", false, "rewrite rules/testdata/*.nft golden files from the kernel's listing")

// goldenCases are the rule sets compared with testdata/NAME.nft.
var goldenCases = []struct {
	name     string
	edit     func(*Config)
	policies []Policy
}{
	{"local_opportunistic", nil, []Policy{{Port: 443, Side: SideLocal}}},
	{"remote_required_ipv6", nil, []Policy{
		{Port: 25, Side: SideRemote, Mode: ModeRequired, Prefix: netip.MustParsePrefix("2001:db8::/32")},
	}},
	{"exclude_both_sides", nil, []Policy{
		{Port: 443, Side: SideBoth},
		{Port: 443, Side: SideBoth, Mode: ModeExclude, Prefix: netip.MustParsePrefix("192.0.2.0/24")},
		{Port: 22, Side: SideLocal, Mode: ModeExclude},
		{Port: 8443, Side: SideBoth, Mode: ModeRequired, Prefix: netip.MustParsePrefix("10.1.2.3/32")},
	}},
	{"queue_range", func(c *Config) { c.QueueNum, c.QueueCount = 100, 4 }, []Policy{
		{Port: 443, Side: SideBoth},
		{Port: 993, Side: SideLocal, Mode: ModeRequired},
	}},
	{"queue_range_fanout", func(c *Config) { c.QueueNum, c.QueueCount, c.CPUFanout = 65532, 4, true }, []Policy{
		{Port: 443, Side: SideRemote, Prefix: netip.MustParsePrefix("::/0")},
	}},
}

// TestIntegrationGolden applies each golden rule set in a fresh namespace and
// compares the kernel's view with testdata/NAME.nft: the output of `nft list
// table inet tcpcrypt`, followed by the queue expressions read back over
// netlink and decoded (nft cannot print the compat NFQUEUE target).
//
// The rule sets use QueueCompat, the mechanism of our machines' kernels, so the
// goldens do not depend on which one DetectQueue picks.
func TestIntegrationGolden(t *testing.T) {
	for _, gc := range goldenCases {
		t.Run(gc.name, func(t *testing.T) {
			ns, conn := newNSConn(t)
			cfg := DefaultConfig()
			if gc.edit != nil {
				gc.edit(&cfg)
			}
			rs, err := Build(cfg, gc.policies, QueueCompat)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if err := rs.Apply(conn); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			got := kernelView(t, ns, conn)
			checkGolden(t, filepath.Join("testdata", gc.name+".nft"), got)

			// Applying the same rule set again (a replace) gives the same table.
			if err := rs.Apply(conn); err != nil {
				t.Fatalf("second Apply: %v", err)
			}
			if again := kernelView(t, ns, conn); again != got {
				t.Errorf("after a second Apply (-first +second):\n%s", cmp.Diff(got, again))
			}
		})
	}
}

// kernelView is the golden text for the namespace's tcpcrypt table.
func kernelView(t *testing.T, ns *netns.NS, conn *nftables.Conn) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(mustNft(t, ns, "list", "table", "inet", TableName))
	b.WriteString("\n# queue expressions read back from the kernel\n")
	tbl := table()
	names := []string{OutputChainName, InputChainName}
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatalf("ListChains: %v", err)
	}
	var queueChains []string
	for _, c := range chains {
		if c.Table.Name == TableName && c.Hooknum == nil {
			queueChains = append(queueChains, c.Name)
		}
	}
	slices.Sort(queueChains)
	for _, name := range append(names, queueChains...) {
		rules, err := conn.GetRules(tbl, &nftables.Chain{Name: name, Table: tbl})
		if err != nil {
			t.Fatalf("GetRules %s: %v", name, err)
		}
		for i, r := range rules {
			for _, e := range r.Exprs {
				if d := describeQueue(e); d != "" {
					fmt.Fprintf(&b, "# %s rule %d: %s\n", name, i, d)
				}
			}
		}
	}
	return b.String()
}

// describeQueue renders a native queue expression or an NFQUEUE target; "" for
// any other expression.
func describeQueue(e expr.Any) string {
	flagNames := func(f uint16) string {
		var s []string
		if f&nfqFlagBypass != 0 {
			s = append(s, "bypass")
		}
		if f&nfqFlagCPUFanout != 0 {
			s = append(s, "fanout")
		}
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, ",")
	}
	switch e := e.(type) {
	case *expr.Queue:
		return fmt.Sprintf("queue num %d total %d flags %s", e.Num, e.Total, flagNames(uint16(e.Flag)))
	case *expr.Target:
		raw, ok := e.Info.(*xt.Unknown)
		if !ok {
			return fmt.Sprintf("target %s rev %d info %T", e.Name, e.Rev, e.Info)
		}
		info, err := parseNFQInfoV3(*raw)
		if err != nil {
			return fmt.Sprintf("target %s rev %d: %v", e.Name, e.Rev, err)
		}
		return fmt.Sprintf("target %s rev %d queuenum %d queues_total %d flags %s",
			e.Name, e.Rev, info.QueueNum, info.QueuesTotal, flagNames(info.Flags))
	}
	return ""
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update as root to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// TestIntegrationOwnership checks that Apply and Remove touch only inet
// tcpcrypt: an unrelated table, and a table named tcpcrypt of another family,
// stay as they were; a stale inet tcpcrypt table with foreign content is
// replaced as a whole; Remove leaves no tcpcrypt table and may be repeated.
func TestIntegrationOwnership(t *testing.T) {
	ns, conn := newNSConn(t)
	mustNft(t, ns, "-f", "testdata/preexisting.nft")
	others := func() string {
		return mustNft(t, ns, "list", "table", "ip", "other") + mustNft(t, ns, "list", "table", "ip", TableName)
	}
	before := others()
	if !strings.Contains(mustNft(t, ns, "list", "table", "inet", TableName), "chain stale") {
		t.Fatal("setup: stale table missing")
	}

	m := NewManager(conn, nil)
	policies := goldenCases[0].policies
	if err := m.Apply(DefaultConfig(), policies); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if m.QueueKind() == QueueCompat {
		// The stale content is gone and the table is exactly ours.
		checkGolden(t, filepath.Join("testdata", "local_opportunistic.nft"), kernelView(t, ns, conn))
	} else {
		t.Logf("queue kind %v: skipping golden comparison (goldens use compat)", m.QueueKind())
	}
	if got := mustNft(t, ns, "list", "table", "inet", TableName); strings.Contains(got, "stale") {
		t.Errorf("stale content survived Apply:\n%s", got)
	}
	if diff := cmp.Diff(before, others()); diff != "" {
		t.Errorf("Apply changed other tables (-before +after):\n%s", diff)
	}

	for i := range 2 {
		if err := m.Remove(); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	if _, err := nftIn(t, ns, "list", "table", "inet", TableName); err == nil {
		t.Error("inet tcpcrypt still listed after Remove")
	}
	if diff := cmp.Diff(before, others()); diff != "" {
		t.Errorf("Remove changed other tables (-before +after):\n%s", diff)
	}
	tables := mustNft(t, ns, "list", "tables")
	if want := "table ip other\ntable ip tcpcrypt\n"; tables != want {
		t.Errorf("tables after Remove = %q, want %q", tables, want)
	}
}

// TestIntegrationDetectQueue runs the probe against the kernel: it must answer
// without error, leave no table behind, and the answer must be usable.
func TestIntegrationDetectQueue(t *testing.T) {
	ns, conn := newNSConn(t)
	k, err := DetectQueue(conn, nil)
	if err != nil {
		t.Fatalf("DetectQueue: %v", err)
	}
	t.Logf("kernel queue mechanism: %v", k)
	if got := mustNft(t, ns, "list", "tables"); got != "" {
		t.Errorf("probe left tables behind: %q", got)
	}
	rs, err := Build(DefaultConfig(), []Policy{{Port: 443, Side: SideBoth}}, k)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Apply(conn); err != nil {
		t.Fatalf("Apply with detected %v: %v", k, err)
	}
	// The other mechanism must fail cleanly when it is not available, and leave
	// the applied table intact.
	if k == QueueCompat {
		rs, err := Build(DefaultConfig(), nil, QueueNative)
		if err != nil {
			t.Fatal(err)
		}
		rs.Chains[0].Rules = append(rs.Chains[0].Rules, Rule{Comment: "native", Exprs: []expr.Any{queueExpr(QueueNative, DefaultConfig(), true)}})
		if err := rs.Apply(conn); err == nil {
			t.Error("Apply with native queue succeeded, but DetectQueue said compat")
		}
		if got := mustNft(t, ns, "list", "table", "inet", TableName); !strings.Contains(got, "local 443") {
			t.Errorf("failed Apply disturbed the table:\n%s", got)
		}
	}
}
