package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestKeyLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.log")
	os.WriteFile(path, []byte("earlier line\n"), 0o644)
	k, err := OpenKeyLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	k.Log(KeyLogES, []byte{0x01, 0xab}, []byte{0xff})
	k.Log(KeyLogSS, []byte{0x23}, nil)
	k.Log("BAD KIND", []byte{1}, []byte{2}) // ignored
	k.Log("", []byte{1}, []byte{2})         // ignored
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				k.Log(KeyLogSS, []byte{byte(i)}, make([]byte, 32))
			}
		})
	}
	wg.Wait()
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	k.Log(KeyLogES, []byte{1}, []byte{2}) // after Close: ignored
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3+800 {
		t.Fatalf("%d lines, want %d", len(lines), 803)
	}
	if lines[0] != "earlier line" || lines[1] != "TCPCRYPT_ES 01ab ff" || lines[2] != "TCPCRYPT_SS 23 " {
		t.Errorf("first lines %q", lines[:3])
	}
	for _, l := range lines[3:] {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != KeyLogSS || len(f[1]) != 2 || len(f[2]) != 64 {
			t.Fatalf("interleaved or malformed line %q", l)
		}
	}
	if k.Errors() != 0 {
		t.Errorf("Errors = %d", k.Errors())
	}
	var nilK *KeyLog
	nilK.Log(KeyLogES, nil, nil)
	if nilK.Close() != nil {
		t.Error("nil Close failed")
	}
}
