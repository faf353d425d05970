package rules

import (
	"encoding/json"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want error
	}{
		{"ok local", Policy{Port: 443, Side: SideLocal}, nil},
		{"ok remote required v6", Policy{Port: 1, Side: SideRemote, Mode: ModeRequired, Prefix: mustPrefix("2001:db8::/32")}, nil},
		{"ok both exclude v4 /0", Policy{Port: 65535, Side: SideBoth, Mode: ModeExclude, Prefix: mustPrefix("0.0.0.0/0")}, nil},
		{"port 0", Policy{Port: 0, Side: SideLocal}, ErrPort},
		{"side 0", Policy{Port: 1}, ErrSide},
		{"side 4", Policy{Port: 1, Side: 4}, ErrSide},
		{"mode 3", Policy{Port: 1, Side: SideLocal, Mode: 3}, ErrMode},
		{"4in6 prefix", Policy{Port: 1, Side: SideLocal, Prefix: mustPrefix("::ffff:10.0.0.0/104")}, ErrPrefix},
		{"bad bits", Policy{Port: 1, Side: SideLocal, Prefix: netip.PrefixFrom(netip.MustParseAddr("10.0.0.1"), 33)}, ErrPrefix},
		{"host bits v4", Policy{Port: 1, Side: SideLocal, Prefix: mustPrefix("10.1.2.3/8")}, ErrPrefix},
		{"host bits v6", Policy{Port: 1, Side: SideLocal, Prefix: mustPrefix("2001:db8::1/32")}, ErrPrefix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.want == nil && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Validate = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	in := []Policy{
		{Port: 443, Side: SideBoth},
		{Port: 80, Side: SideLocal, Prefix: mustPrefix("10.0.0.0/8")},
		{Port: 80, Side: SideLocal, Prefix: mustPrefix("10.1.0.0/16"), Mode: ModeRequired},
		{Port: 25, Side: SideRemote, Mode: ModeExclude},
		{Port: 22, Side: SideLocal, Mode: ModeExclude, Prefix: mustPrefix("2001:db8::/32")},
		{Port: 22, Side: SideLocal, Mode: ModeExclude, Prefix: mustPrefix("192.0.2.0/32")},
		{Port: 443, Side: SideLocal, Prefix: mustPrefix("::/0")},
	}
	want := []Policy{
		// Excludes first; equal lengths ordered by port, then IPv4 before IPv6.
		{Port: 22, Side: SideLocal, Mode: ModeExclude, Prefix: mustPrefix("192.0.2.0/32")},
		{Port: 22, Side: SideLocal, Mode: ModeExclude, Prefix: mustPrefix("2001:db8::/32")},
		{Port: 25, Side: SideRemote, Mode: ModeExclude},
		// Then longest prefix first.
		{Port: 80, Side: SideLocal, Prefix: mustPrefix("10.1.0.0/16"), Mode: ModeRequired},
		{Port: 80, Side: SideLocal, Prefix: mustPrefix("10.0.0.0/8")},
		{Port: 443, Side: SideLocal, Prefix: mustPrefix("::/0")},
		{Port: 443, Side: SideBoth},
	}
	got, err := Normalize(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Normalize (-want +got):\n%s", diff)
	}
	// Deterministic whatever the input order.
	rev := make([]Policy, len(in))
	for i := range in {
		rev[i] = in[len(in)-1-i]
	}
	got2, err := Normalize(rev)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, got2, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("order depends on input (-fwd +rev):\n%s", diff)
	}
	if in[0] != (Policy{Port: 443, Side: SideBoth}) {
		t.Error("Normalize modified its input")
	}
}

func TestNormalizeDuplicates(t *testing.T) {
	tests := []struct {
		name string
		in   []Policy
		want error
	}{
		{"same", []Policy{{Port: 1, Side: SideLocal}, {Port: 1, Side: SideLocal}}, ErrDuplicate},
		{"both overlaps local", []Policy{{Port: 1, Side: SideBoth}, {Port: 1, Side: SideLocal, Mode: ModeRequired}}, ErrDuplicate},
		{"same prefix", []Policy{
			{Port: 1, Side: SideRemote, Prefix: mustPrefix("10.0.0.0/8")},
			{Port: 1, Side: SideRemote, Mode: ModeExclude, Prefix: mustPrefix("10.0.0.0/8")},
		}, ErrDuplicate},
		{"host bits refused, not masked", []Policy{
			{Port: 1, Side: SideRemote, Prefix: mustPrefix("10.0.0.1/8")},
		}, ErrPrefix},
		{"local and remote ok", []Policy{{Port: 1, Side: SideLocal}, {Port: 1, Side: SideRemote}}, nil},
		{"different prefixes ok", []Policy{{Port: 1, Side: SideBoth}, {Port: 1, Side: SideBoth, Prefix: mustPrefix("::/0")}}, nil},
		{"invalid entry", []Policy{{Port: 1, Side: SideLocal}, {Port: 0, Side: SideLocal}}, ErrPort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Normalize(tt.in)
			if tt.want == nil && err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Normalize = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestNormalizeMessages pins the error text: each part said once.
func TestNormalizeMessages(t *testing.T) {
	_, err := Normalize([]Policy{{Port: 22, Side: SideLocal}, {Port: 22, Side: SideBoth, Mode: ModeRequired}})
	if want := "rules: duplicate rule: both 22 required overlaps local 22 opportunistic (same port and prefix, overlapping sides)"; err == nil || err.Error() != want {
		t.Errorf("duplicate: %v\nwant %s", err, want)
	}
	_, err = Normalize([]Policy{{Port: 22, Side: SideLocal, Prefix: mustPrefix("10.1.2.3/8")}})
	if want := "rule local 22 10.1.2.3/8 opportunistic: rules: bad address prefix 10.1.2.3/8: host bits set (did you mean 10.0.0.0/8?)"; err == nil || err.Error() != want {
		t.Errorf("host bits: %v\nwant %s", err, want)
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		in      string
		want    netip.Prefix
		wantErr string
	}{
		{"10.0.0.0/8", mustPrefix("10.0.0.0/8"), ""},
		{"2001:db8::/32", mustPrefix("2001:db8::/32"), ""},
		{"192.0.2.7/32", mustPrefix("192.0.2.7/32"), ""},
		{"banana", netip.Prefix{}, `rules: bad address prefix "banana": want ADDRESS/BITS, such as 10.0.0.0/8 or 2001:db8::/32`},
		{"10.0.0.0", netip.Prefix{}, `rules: bad address prefix "10.0.0.0": want ADDRESS/BITS, such as 10.0.0.0/8 or 2001:db8::/32`},
		{"10.1.2.3/8", netip.Prefix{}, "rules: bad address prefix 10.1.2.3/8: host bits set (did you mean 10.0.0.0/8?)"},
		{"::ffff:10.0.0.0/104", netip.Prefix{}, "rules: bad address prefix ::ffff:10.0.0.0/104: an IPv4-mapped IPv6 prefix; write it as IPv4"},
	}
	for _, tt := range tests {
		got, err := ParsePrefix(tt.in)
		if tt.wantErr == "" {
			if err != nil || got != tt.want {
				t.Errorf("ParsePrefix(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			continue
		}
		if err == nil || err.Error() != tt.wantErr || !errors.Is(err, ErrPrefix) {
			t.Errorf("ParsePrefix(%q) error = %v\nwant %s (wrapping ErrPrefix)", tt.in, err, tt.wantErr)
		}
	}
}

func TestPolicyJSON(t *testing.T) {
	p := Policy{Port: 25, Side: SideRemote, Mode: ModeRequired, Prefix: mustPrefix("2001:db8::/32")}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"port":25,"side":"remote","prefix":"2001:db8::/32","mode":"required"}`; string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	var back Policy
	if err := json.Unmarshal(b, &back); err != nil || back != p {
		t.Errorf("round trip = %+v, %v", back, err)
	}
	b, _ = json.Marshal(Policy{Port: 1, Side: SideLocal})
	if want := `{"port":1,"side":"local","mode":"opportunistic"}`; string(b) != want {
		t.Errorf("json without prefix = %s, want %s", b, want)
	}
	if err := json.Unmarshal([]byte(`{"port":1,"side":"left"}`), &back); !errors.Is(err, ErrSide) {
		t.Errorf("bad side: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"port":1,"side":"local","mode":"maybe"}`), &back); !errors.Is(err, ErrMode) {
		t.Errorf("bad mode: %v", err)
	}
	if _, err := json.Marshal(Policy{Port: 1, Side: 7}); !errors.Is(err, ErrSide) {
		t.Errorf("marshal bad side: %v", err)
	}
	if got := (Policy{Port: 1, Side: 9, Mode: 7}).String(); got != "side(9) 1 mode(7)" {
		t.Errorf("String = %q", got)
	}
}
