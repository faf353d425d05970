package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/ctl/ctltest"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
)

// exec runs tcnetstat with args and returns stdout, stderr and exit status.
func exec(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runMain(context.Background(), append([]string{"tcnetstat"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func backendWith(n int) *ctltest.Backend {
	b := &ctltest.Backend{}
	for i := range n {
		b.Conns = append(b.Conns, ctltest.SampleConn(i))
	}
	b.Conns = append(b.Conns, ctl.Conn{
		Local:  netip.MustParseAddrPort("192.0.2.1:5555"),
		Remote: netip.MustParseAddrPort("192.0.2.9:80"), State: "plain", AgeSeconds: 3725,
		LastError: "fell back to plain TCP: the peer has no tcpcrypt", FallbackReason: "no_peer_eno",
	})
	return b
}

func TestTable(t *testing.T) {
	b := backendWith(2)
	path := ctltest.Start(t, ctlserver.Config{Backend: b})
	out, errOut, code := exec(t, "-u", path)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want header + 3:\n%s", len(lines), out)
	}
	header := lines[0]
	cols := []string{"LOCAL", "REMOTE", "STATE", "ROLE", "TEP", "AEAD", "SESSION-ID", "RESUMED", "BYTES-IN", "BYTES-OUT", "AGE", "REASON"}
	if got := strings.Fields(header); !slices.Equal(got, cols) {
		t.Fatalf("header = %q", header)
	}
	// Rows sorted by local address: 192.0.2.1:5555 (plain), 192.0.2.1:10000
	// (sample 0), then [2001:db8::1]:10001 (sample 1).
	s0, s1 := ctltest.SampleConn(0), ctltest.SampleConn(1)
	want := [][]string{
		{"192.0.2.1:5555", "192.0.2.9:80", "plain", "-", "-", "-", "-", "no", "0", "0", "1h2m5s", "no_peer_eno"},
		{"192.0.2.1:10000", "198.51.100.0:443", "encrypted", "A", "TCPCRYPT_ECDHE_Curve25519", "AEAD_AES_128_GCM", s0.SessionID.String(), "yes", "0", "0", "1s", "-"},
		{"[2001:db8::1]:10001", "[2001:db8::3]:443", "encrypted", "B", "TCPCRYPT_ECDHE_Curve25519", "AEAD_AES_128_GCM", s1.SessionID.String(), "no", "1000", "2000", "2s", "-"},
	}
	for i, w := range want {
		if got := strings.Fields(lines[i+1]); !slices.Equal(got, w) {
			t.Errorf("row %d = %q\nwant %q", i, got, w)
		}
	}
	if len(s0.SessionID.String()) != 66 {
		t.Errorf("session id not printed in full")
	}
	// Columns are aligned: every field starts where its header does.
	for _, col := range cols {
		at := strings.Index(header, col)
		for _, l := range lines[1:] {
			if at > 0 && (l[at-1] != ' ' || l[at] == ' ') {
				t.Errorf("column %s misaligned in %q", col, l)
			}
		}
	}
}

func TestManyRowsNoTruncation(t *testing.T) {
	path := ctltest.Start(t, ctlserver.Config{Backend: backendWith(500)})
	out, _, code := exec(t, "-u", path)
	if n := strings.Count(out, "\n"); code != 0 || n != 502 {
		t.Fatalf("exit %d, %d lines; want 502", code, n)
	}
}

func TestJSON(t *testing.T) {
	b := backendWith(3)
	path := ctltest.Start(t, ctlserver.Config{Backend: b})
	out, errOut, code := exec(t, "--json", "-u", path)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var raw []map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	fields := []string{"local", "remote", "state", "role", "tep", "aead", "session_id", "resumed",
		"bytes_in", "bytes_out", "frames_in", "frames_out", "age_seconds", "last_error", "fallback_reason"}
	slices.Sort(fields)
	for i, m := range raw {
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, fields) {
			t.Errorf("object %d has fields %v, want %v", i, keys, fields)
		}
		tep, ok := m["tep"].(map[string]any)
		if _, hasName := tep["name"]; !ok || !hasName || tep["id"] == nil {
			t.Errorf("object %d: tep = %v", i, m["tep"])
		}
	}
	var got []ctl.Conn
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(b.Conns)
	slices.SortFunc(want, func(a, b ctl.Conn) int { return a.Local.Compare(b.Local) })
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// An empty listing is an empty array, not null.
	empty := ctltest.Start(t, ctlserver.Config{Backend: &ctltest.Backend{}})
	if out, _, code := exec(t, "--json", "-u", empty); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("empty: exit %d, %q", code, out)
	}
}

func TestExitStatus(t *testing.T) {
	absent := filepath.Join(t.TempDir(), "nobody")
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"daemon unavailable", []string{"-u", absent}, 1, "daemon unavailable"},
		{"extra argument", []string{"-u", absent, "foo"}, 2, "unexpected argument"},
		{"unknown flag", []string{"--frobnicate"}, 2, "frobnicate"},
		{"bad address", []string{"-u", "8.8.8.8:53"}, 2, "loopback"},
		{"address and netns", []string{"-u", absent, "-n", "blue"}, 2, "exclude each other"},
		{"bad netns name", []string{"-n", "../etc"}, 2, "netns"},
		{"netns without a daemon", []string{"-n", "tcnetstat-test-absent"}, 1, "tcnetstat-test-absent/ctl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := exec(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("exit %d stderr %q; want %d and %q", code, errOut, tt.code, tt.stderr)
			}
		})
	}
	// -V is the version (as in tcpcryptctl and tcpcryptd); -v is no flag here.
	if out, _, code := exec(t, "-V"); code != 0 || !strings.Contains(out, "tcnetstat") {
		t.Errorf("-V: exit %d, %q", code, out)
	}
	if _, _, code := exec(t, "-v"); code != 2 {
		t.Errorf("-v: exit %d, want 2 (not a flag)", code)
	}
	// A daemon that fails internally: exit 1 with its message.
	b := backendWith(0)
	b.SetErr(ctl.ErrInternal)
	path := ctltest.Start(t, ctlserver.Config{Backend: b})
	if _, errOut, code := exec(t, "-u", path); code != 1 || !strings.Contains(errOut, "internal") {
		t.Errorf("backend failure: exit %d, %q", code, errOut)
	}
}
