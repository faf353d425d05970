package daemon

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"443", "443:remote:required", "25:both:exclude@10.0.0.0/8", "80@2001:db8::/32", ":", "1:::", "@", "443:required+noresume+appaware@10.0.0.0/8", "1+", "1++nocache"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseRule(s)
		if err != nil {
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("error %v does not wrap ErrUsage", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParseRule(%q) returned an invalid policy: %v", s, err)
		}
		back, err := ParseRule(FormatRule(p))
		if err != nil || back != p {
			t.Fatalf("round trip %q -> %q -> %+v, %v", s, FormatRule(p), back, err)
		}
	})
}

func FuzzParseConfigFile(f *testing.F) {
	for _, s := range []string{"queue = 1\nrule = 443\n", "# c\n\nverbose=2", "rule=1\nrule=1:remote", "=", "teps = x25519,\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		kvs, err := parseFileBytes("f", b)
		if err != nil {
			if !errors.Is(err, ErrUsage) && !strings.Contains(err.Error(), "config file") {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		c := DefaultConfig()
		for _, kv := range kvs {
			if err := c.Set(kv[0], kv[1]); err != nil {
				t.Fatalf("accepted setting %q = %q fails Set: %v", kv[0], kv[1], err)
			}
		}
	})
}

func FuzzParseState(f *testing.F) {
	for _, s := range []string{`{"version":1,"rules":[]}`, `{"version":1,"rules":[{"port":1,"side":"both","mode":"exclude","prefix":"10.0.0.0/8"}]}`, `{}`, `[]`,
		`{"version":1,"rules":[{"port":2,"side":"local","mode":"required","options":["noresume","appaware"]}]}`, `{"version":1,"rules":[{"port":2,"side":"local","mode":"required","options":null}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := parseState("f", b)
		if err != nil {
			if !errors.Is(err, ErrState) {
				t.Fatalf("error %v does not wrap ErrState", err)
			}
			return
		}
		// What was accepted is written back as SaveState writes it and
		// reads back as the same rules.
		out, err := json.Marshal(stateFile{Version: stateVersion, Rules: ps})
		if err != nil {
			t.Fatalf("accepted rules do not encode: %v", err)
		}
		again, err := parseState("f", out)
		if err != nil {
			t.Fatalf("the rules written back do not parse: %v\n%s", err, out)
		}
		if diff := cmp.Diff(ps, again, cmpopts.EquateEmpty(), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Fatalf("round trip (-accepted +written back):\n%s", diff)
		}
	})
}
