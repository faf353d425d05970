package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/tcpcryptd/tcpcrypt/internal/netns"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

// TestTableKernel installs and removes the chaosbox table in a fresh
// namespace (root only) and reads it back with nft.
func TestTableKernel(t *testing.T) {
	ns := netns.NewForTest(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatalf("nft command missing (Debian: apt-get install nftables): %v", err)
	}
	conn, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	kind, err := rules.DetectQueue(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	list := func() string {
		out, _ := exec.Command("ip", "netns", "exec", ns.Name(), "nft", "list", "ruleset").CombinedOutput()
		return string(out)
	}
	for _, tc := range []struct {
		cfg    tableConfig
		chains []string
		rules  int // queue rules per chain
	}{
		{tableConfig{hook: hookForward, port: 5001, queue: 7400, mark: defaultMark, kind: kind}, []string{"chain forward"}, 2},
		{tableConfig{hook: hookLocal, queue: 7401, mark: defaultMark, kind: kind}, []string{"chain output", "chain input"}, 1},
	} {
		// A second install replaces the first (no duplicate table error).
		if err := installTable(conn, tc.cfg); err != nil {
			t.Fatalf("%s: %v", tc.cfg.hook, err)
		}
		got := list()
		for _, c := range tc.chains {
			if !strings.Contains(got, c) {
				t.Errorf("%s: no %q in\n%s", tc.cfg.hook, c, got)
			}
		}
		if n := strings.Count(got, "meta mark"); n != len(tc.chains) {
			t.Errorf("%s: %d mark rules, want %d:\n%s", tc.cfg.hook, n, len(tc.chains), got)
		}
		if tc.cfg.port != 0 && (!strings.Contains(got, "sport 5001") || !strings.Contains(got, "dport 5001")) {
			t.Errorf("%s: port match missing:\n%s", tc.cfg.hook, got)
		}
		for _, c := range tc.chains {
			rs, err := conn.GetRules(chaosTable(), &nftables.Chain{Name: strings.TrimPrefix(c, "chain "), Table: chaosTable()})
			if err != nil || len(rs) != 1+tc.rules {
				t.Errorf("%s %s: %d rules (%v), want the mark rule and %d queue rules", tc.cfg.hook, c, len(rs), err, tc.rules)
			}
		}
	}
	if err := removeTable(conn); err != nil {
		t.Fatal(err)
	}
	if got := list(); strings.Contains(got, "chaosbox") {
		t.Errorf("table left after removeTable:\n%s", got)
	}
	if err := removeTable(conn); err != nil {
		t.Errorf("removing an absent table: %v", err)
	}
}
