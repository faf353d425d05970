package libtcpcrypt_test

import (
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

// docExample returns the first code block in lang of docs/libtcpcrypt.md.
func docExample(t *testing.T, lang string) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/libtcpcrypt.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```"+lang+"\n")
	code, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatalf("docs/libtcpcrypt.md has no %s code block", lang)
	}
	return code
}

// sharedLib builds libtcpcrypt.so.0 the way mk/libtcpcrypt.mk does, into a
// temporary directory, and returns the directory.
func sharedLib(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"-std=c99", "-Wall", "-Werror", "-O2", "-fPIC", "-fvisibility=hidden", "-pthread", "-Iinclude",
		"-shared", "-Wl,-soname,libtcpcrypt.so.0", "-Wl,--version-script=src/libtcpcrypt.map", "-Wl,-z,defs",
		"-o", filepath.Join(dir, "libtcpcrypt.so.0"), "src/tcpcrypt.c", "src/reply.c"}
	if out, err := exec.Command(gcc(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %v: %v\n%s", args, err, out)
	}
	return dir
}

// TestPythonExample runs the ctypes example of docs/libtcpcrypt.md on a
// connection to a local listener, against a control server, over IPv4 and
// IPv6: it must print the session id the daemon has for that connection
// (and its own assertion checks that both calls agree).
func TestPythonExample(t *testing.T) {
	python := testenv.LookPath(t, "python3", "Debian: apt-get install python3")
	libdir := sharedLib(t)
	script := filepath.Join(t.TempDir(), "example.py")
	if err := os.WriteFile(script, []byte(docExample(t, "python")), 0o644); err != nil {
		t.Fatal(err)
	}
	_, path := startServer(t)
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := l.Accept()
				if err == nil {
					accepted <- c
				}
				close(accepted)
			}()
			srv := netip.MustParseAddrPort(l.Addr().String())
			cmd := exec.Command(python, script, host, itoa(int(srv.Port())))
			cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+libdir, "TCPCRYPT_CTL="+path)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("python example: %v\n%s", err, out)
			}
			c := <-accepted
			if c == nil {
				t.Fatal("no connection accepted")
			}
			defer c.Close()
			client := netip.MustParseAddrPort(c.RemoteAddr().String())
			if want := hex.EncodeToString(sidFor(client, srv)); strings.TrimSpace(string(out)) != want {
				t.Errorf("python example printed %q, want %s", out, want)
			}
		})
	}
}

// TestCExample compiles the C example of docs/libtcpcrypt.md against the
// header, with every warning an error.
func TestCExample(t *testing.T) {
	src := filepath.Join(t.TempDir(), "example.c")
	if err := os.WriteFile(src, []byte(docExample(t, "c")), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-Iinclude", "-c", "-o", src + ".o", src}
	if out, err := exec.Command(gcc(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %v: %v\n%s", args, err, out)
	}
}
