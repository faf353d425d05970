package daemon

import (
	"net/netip"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

func TestMatcher(t *testing.T) {
	ap := netip.MustParseAddrPort
	ps := []rules.Policy{
		{Port: 443, Side: rules.SideLocal, Mode: rules.ModeRequired},
		{Port: 443, Side: rules.SideLocal, Prefix: netip.MustParsePrefix("10.0.0.0/8"), Mode: rules.ModeExclude},
		{Port: 80, Side: rules.SideRemote, Mode: rules.ModeOpportunistic},
		{Port: 80, Side: rules.SideRemote, Prefix: netip.MustParsePrefix("2001:db8::/32"), Mode: rules.ModeRequired},
		{Port: 25, Side: rules.SideBoth, Mode: rules.ModeOpportunistic},
		{Port: 7, Side: rules.SideLocal, Prefix: netip.MustParsePrefix("0.0.0.0/0"), Mode: rules.ModeRequired},
	}
	m, err := NewMatcher(ps)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		local, remote string
		want          engine.Mode
	}{
		{"192.0.2.1:443", "198.51.100.1:5000", engine.Required},
		{"192.0.2.1:443", "10.1.1.1:5000", engine.Exclude},           // exclude wins by prefix
		{"[2001:db8::1]:443", "[2001:db8::2]:5000", engine.Required}, // v4 prefix does not match v6
		{"192.0.2.1:5000", "198.51.100.1:443", engine.Exclude},       // 443 is a local-side rule only
		{"192.0.2.1:5000", "198.51.100.1:80", engine.Opportunistic},
		{"[2001:db8::1]:5000", "[2001:db8::2]:80", engine.Required}, // longer prefix first
		{"[2001:db9::1]:5000", "[2001:db9::2]:80", engine.Opportunistic},
		{"192.0.2.1:80", "198.51.100.1:5000", engine.Exclude},
		{"192.0.2.1:25", "198.51.100.1:5000", engine.Opportunistic},
		{"192.0.2.1:5000", "198.51.100.1:25", engine.Opportunistic},
		{"192.0.2.1:7", "198.51.100.1:5000", engine.Required},
		{"[::1]:7", "[::1]:5000", engine.Exclude}, // 0.0.0.0/0 is IPv4 only
		{"[::ffff:192.0.2.1]:7", "[::ffff:198.51.100.1]:5000", engine.Required},
		{"192.0.2.1:1", "198.51.100.1:2", engine.Exclude},
	}
	for _, tt := range tests {
		if got := m.Mode(ap(tt.local), ap(tt.remote)); got != tt.want {
			t.Errorf("Mode(%s, %s) = %v, want %v", tt.local, tt.remote, got, tt.want)
		}
	}
	var nilM *Matcher
	if nilM.Covered(ap("1.2.3.4:1"), ap("1.2.3.4:2")) {
		t.Error("nil matcher covers a connection")
	}
	if _, err := NewMatcher([]rules.Policy{{Port: 1, Side: rules.SideLocal}, {Port: 1, Side: rules.SideBoth}}); err == nil {
		t.Error("NewMatcher accepted overlapping entries")
	}
}

func TestPolicySwitch(t *testing.T) {
	var s policySwitch
	s.cur.Store(&Matcher{})
	l, r := netip.MustParseAddrPort("127.0.0.1:443"), netip.MustParseAddrPort("127.0.0.1:5000")
	if got := s.Policy(l, r); got != engine.Exclude {
		t.Fatalf("empty policy = %v", got)
	}
	m, _ := NewMatcher([]rules.Policy{{Port: 443, Side: rules.SideLocal, Mode: rules.ModeRequired}})
	s.cur.Store(m)
	if got := s.Policy(l, r); got != engine.Required {
		t.Fatalf("after swap = %v, want required", got)
	}
}

// TestMatcherDecide: the engine decision carries the matching rule's
// options, mapped one to one, and none for a rule without them.
func TestMatcherDecide(t *testing.T) {
	m, err := NewMatcher([]rules.Policy{
		{Port: 443, Side: rules.SideLocal, Mode: rules.ModeRequired, Options: rules.OptNoResume | rules.OptAppAware},
		{Port: 80, Side: rules.SideRemote, Mode: rules.ModeOpportunistic, Options: rules.OptNoCache},
		{Port: 22, Side: rules.SideLocal, Mode: rules.ModeOpportunistic},
	})
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort
	for _, tt := range []struct {
		local, remote string
		want          engine.Decision
	}{
		{"10.0.0.1:443", "10.0.0.2:5000", engine.Decision{Mode: engine.Required, Options: engine.Options{NoResume: true, MandatoryAppAware: true}}},
		{"10.0.0.1:5000", "10.0.0.2:80", engine.Decision{Mode: engine.Opportunistic, Options: engine.Options{NoCache: true}}},
		{"10.0.0.1:22", "10.0.0.2:5000", engine.Decision{Mode: engine.Opportunistic}},
		{"10.0.0.1:9", "10.0.0.2:9", engine.Decision{Mode: engine.Exclude}},
	} {
		if got := m.Decide(ap(tt.local), ap(tt.remote)); got != tt.want {
			t.Errorf("Decide(%s, %s) = %+v, want %+v", tt.local, tt.remote, got, tt.want)
		}
	}
	var s policySwitch
	s.cur.Store(m)
	if got := s.Decide(ap("10.0.0.1:443"), ap("10.0.0.2:1")); !got.Options.NoResume || got.Mode != engine.Required {
		t.Errorf("policySwitch.Decide = %+v", got)
	}
}
