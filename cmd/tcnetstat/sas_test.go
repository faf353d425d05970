package main

import (
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/ctl/bind"
	"github.com/tcpcryptd/tcpcrypt/ctl/ctltest"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
)

func TestSASColumn(t *testing.T) {
	path := ctltest.Start(t, ctlserver.Config{Backend: backendWith(2)})
	plain, _, _ := exec(t, "-u", path)
	out, errOut, code := exec(t, "--sas", "-u", path)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	plainLines := strings.Split(strings.TrimSuffix(plain, "\n"), "\n")
	if len(lines) != 4 || len(plainLines) != 4 {
		t.Fatalf("got %d and %d lines, want 4:\n%s", len(lines), len(plainLines), out)
	}
	if h := strings.Fields(lines[0]); h[len(h)-1] != "SAS" || !slices.Equal(h[:len(h)-1], strings.Fields(plainLines[0])) {
		t.Fatalf("header %q: want the usual columns and SAS", lines[0])
	}
	sawSAS := 0
	for i, l := range lines[1:] {
		f := strings.Fields(l)
		if !slices.Equal(f[:len(f)-1], strings.Fields(plainLines[i+1])) {
			t.Errorf("row %d: %q; the other columns changed from %q", i, l, plainLines[i+1])
		}
		var sid []byte
		var err error
		if f[6] != "-" {
			sid, err = hex.DecodeString(f[6])
		}
		if err != nil {
			t.Fatalf("row %d: session id %q: %v", i, f[6], err)
		}
		want := bind.SAS(sid)
		if want == "" {
			want = "-"
		} else {
			sawSAS++
		}
		if got := f[len(f)-1]; got != want {
			t.Errorf("row %d: SAS %q, want %q", i, got, want)
		}
		if at := strings.Index(lines[0], "SAS"); l[at-1] != ' ' || l[at] == ' ' {
			t.Errorf("SAS column misaligned in %q", l)
		}
	}
	if sawSAS != 2 {
		t.Errorf("%d rows with a SAS, want 2", sawSAS)
	}
}

func TestSASJSON(t *testing.T) {
	b := backendWith(2)
	path := ctltest.Start(t, ctlserver.Config{Backend: b})
	out, errOut, code := exec(t, "--json", "--sas", "-u", path)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var rows []struct {
		ctl.Conn
		SAS *string `json:"sas"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rows) != 3 {
		t.Fatalf("%d objects, want 3", len(rows))
	}
	for i, r := range rows {
		if r.SAS == nil {
			t.Fatalf("object %d has no sas member", i)
		}
		if want := bind.SAS(r.SessionID); *r.SAS != want {
			t.Errorf("object %d: sas %q, want %q", i, *r.SAS, want)
		}
	}
	// The other members are those of --json without --sas, which has no
	// sas member.
	plain, _, _ := exec(t, "--json", "-u", path)
	if strings.Contains(plain, `"sas"`) {
		t.Errorf("--json without --sas has a sas member")
	}
	var want []ctl.Conn
	if err := json.Unmarshal([]byte(plain), &want); err != nil {
		t.Fatal(err)
	}
	var got []ctl.Conn
	for _, r := range rows {
		got = append(got, r.Conn)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
		t.Errorf("--sas changed the connection members (-want +got):\n%s", diff)
	}
}
