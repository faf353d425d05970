package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/engine/enginetest"
	"github.com/tcpcryptd/tcpcrypt/internal/pcapio"
)

// testdata/two.pcap holds two connections made by two engines through
// enginetest (internal/cryptdump TestWriteGolden): a fresh one and a resumed
// one, each sending enginetest.RandomBytes(1, 20000) from A and
// RandomBytes(2, 8000) from B, with rekeys every 8 KiB.
const (
	capFile = "testdata/two.pcap"
	keyFile = "testdata/two.keylog"
	nAB     = 20000
	nBA     = 8000
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = runMain(context.Background(), append([]string{"tcpcryptdump"}, args...), &o, &e)
	return code, o.String(), e.String()
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestJSON(t *testing.T) {
	code, out, errOut := runCmd(t, "-r", capFile, "-k", keyFile, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), out)
	}
	wantAB, wantBA := hexSum(enginetest.RandomBytes(1, nAB)), hexSum(enginetest.RandomBytes(2, nBA))
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		for _, k := range []string{"client", "server", "tep", "aead", "session_id", "resumed", "bytes_a_to_b", "bytes_b_to_a", "sha256_a_to_b", "sha256_b_to_a", "violations"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d lacks %q", i, k)
			}
		}
		if m["sha256_a_to_b"] != wantAB || m["sha256_b_to_a"] != wantBA {
			t.Errorf("line %d: sha256 %v / %v, want %s / %s", i, m["sha256_a_to_b"], m["sha256_b_to_a"], wantAB, wantBA)
		}
		if m["bytes_a_to_b"] != float64(nAB) || m["bytes_b_to_a"] != float64(nBA) {
			t.Errorf("line %d: bytes %v / %v", i, m["bytes_a_to_b"], m["bytes_b_to_a"])
		}
		if v, ok := m["violations"].([]any); !ok || len(v) != 0 {
			t.Errorf("line %d: violations %v", i, m["violations"])
		}
		if m["resumed"] != (i == 1) {
			t.Errorf("line %d: resumed %v", i, m["resumed"])
		}
		if sid, _ := m["session_id"].(string); len(sid) != 66 || sid != strings.ToLower(sid) {
			t.Errorf("line %d: session id %q", i, sid)
		}
	}
}

func TestTextAndDump(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCmd(t, "-r", capFile, "-k", keyFile, "--dump", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	if n := strings.Count(out, "  verified\n"); n != 2 {
		t.Errorf("%d verified connections in:\n%s", n, out)
	}
	if !strings.Contains(out, "2 tcpcrypt, 2 verified") {
		t.Errorf("summary missing:\n%s", out)
	}
	for c := 1; c <= 2; c++ {
		for name, want := range map[string][]byte{"a_to_b": enginetest.RandomBytes(1, nAB), "b_to_a": enginetest.RandomBytes(2, nBA)} {
			got, err := os.ReadFile(filepath.Join(dir, "conn"+string(rune('0'+c))+"."+name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("conn%d.%s: %d bytes differ from the plaintext sent", c, name, len(got))
			}
		}
	}
}

// TestViolationExit: a capture with one flipped bit in a frame exits 1 and
// names the failure.
func TestViolationExit(t *testing.T) {
	b, err := os.ReadFile(capFile)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a bit near the end of the largest record: inside a frame.
	b[len(b)/2] ^= 0x10
	p := filepath.Join(t.TempDir(), "bad.pcap")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCmd(t, "-r", p, "-k", keyFile)
	if code != 1 || !strings.Contains(out, "VIOLATION") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-k", keyFile},
		{"-r", capFile},
		{"-r", capFile, "-k", "testdata/absent"},
		{"-r", "testdata/absent", "-k", keyFile},
		{"-r", capFile, "-k", keyFile, "extra"},
		{"--no-such-flag"},
	} {
		if code, _, errOut := runCmd(t, args...); code != 2 || errOut == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, errOut)
		}
	}
	for _, v := range []string{"--version", "-V"} {
		if code, out, _ := runCmd(t, v); code != 0 || out != "tcpcryptdump version "+version+"\n" {
			t.Errorf("%s: exit %d, %q", v, code, out)
		}
	}
	// -v is --verbose in tcpcryptd, so it is no version flag here.
	if code, _, errOut := runCmd(t, "-v"); code != 2 || errOut != "tcpcryptdump: flag provided but not defined: -v\n" {
		t.Errorf("-v: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCmd(t); code != 2 || errOut != "tcpcryptdump: no capture given (-r CAPTURE)\n" {
		t.Errorf("no arguments: exit %d, %q", code, errOut)
	}
	p := filepath.Join(t.TempDir(), "junk")
	if err := os.WriteFile(p, []byte("not a capture at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCmd(t, "-r", p, "-k", keyFile); code != 1 || !strings.Contains(errOut, "pcap") {
		t.Errorf("junk capture: exit %d, %q", code, errOut)
	}
}

// TestWrite: -w writes every packet, with plaintext payloads.
func TestWrite(t *testing.T) {
	out := filepath.Join(t.TempDir(), "plain.pcap")
	if code, o, e := runCmd(t, "-r", capFile, "-k", keyFile, "-w", out); code != 0 {
		t.Fatalf("exit %d: %s%s", code, o, e)
	}
	count := func(name string) (n int, payloads [][]byte) {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rd, err := pcapio.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		for {
			p, err := rd.Next()
			if err != nil {
				return n, payloads
			}
			n++
			if pl, ok := enginetest.TCPPayload(p.Data); ok && len(pl) > 0 {
				payloads = append(payloads, bytes.Clone(pl))
			}
		}
	}
	nIn, _ := count(capFile)
	nOut, pls := count(out)
	if nIn != nOut || len(pls) == 0 {
		t.Fatalf("%d packets in, %d out, %d payloads", nIn, nOut, len(pls))
	}
	up, down := enginetest.RandomBytes(1, nAB), enginetest.RandomBytes(2, nBA)
	for i, pl := range pls {
		if !bytes.Contains(up, pl) && !bytes.Contains(down, pl) {
			t.Fatalf("payload %d (%d bytes) is not plaintext", i, len(pl))
		}
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("output mode: %v %v", st, err)
	}
}
