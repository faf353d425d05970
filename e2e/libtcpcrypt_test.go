package e2e

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

// probeReport is a JSON line of libtcpcrypt/tests/tcprobe.c.
type probeReport struct {
	Event          string  `json:"event"`
	Local          string  `json:"local"`
	Remote         string  `json:"remote"`
	Sockopt        string  `json:"sockopt"`
	SockoptErrno   string  `json:"sockopt_errno"`
	SockoptLen     int     `json:"sockopt_len"`
	Enable         int     `json:"enable"`
	EnableErrno    string  `json:"enable_errno"`
	Getsessid      string  `json:"getsessid"`
	GetsessidErrno string  `json:"getsessid_errno"`
	Seconds        float64 `json:"seconds"`
}

// buildProbe installs libtcpcrypt into a temporary DESTDIR with `make
// install-libtcpcrypt` and builds tcprobe against the installed copy, as an
// application would: `pkg-config --cflags --libs libtcpcrypt` (with
// PKG_CONFIG_PATH and PKG_CONFIG_SYSROOT_DIR pointing into the DESTDIR),
// linked to the shared library (an rpath finds it at run time).
func buildProbe(t *testing.T) string {
	t.Helper()
	mk := testenv.LookPath(t, "make", "Debian: apt-get install make")
	cc := testenv.LookPath(t, "gcc", "Debian: apt-get install gcc libc6-dev")
	pc := testenv.LookPath(t, "pkg-config", "Debian: apt-get install pkg-config")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dest := filepath.Join(dir, "dest")
	run := func(env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run(nil, mk, "--no-print-directory", "install-libtcpcrypt", "DESTDIR="+dest, "BUILDDIR="+filepath.Join(dir, "build"))
	libdir := filepath.Join(dest, "usr/local/lib")
	flags := run([]string{"PKG_CONFIG_PATH=" + filepath.Join(libdir, "pkgconfig"), "PKG_CONFIG_SYSROOT_DIR=" + dest},
		pc, "--cflags", "--libs", "libtcpcrypt")
	probe := filepath.Join(dir, "tcprobe")
	args := append([]string{"-std=c99", "-Wall", "-Werror", "-o", probe, "libtcpcrypt/tests/tcprobe.c"}, strings.Fields(flags)...)
	run(nil, cc, append(args, "-Wl,-rpath,"+libdir)...)
	f, err := elf.Open(probe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil || !strings.Contains(strings.Join(libs, " "), "libtcpcrypt.so.0") {
		t.Fatalf("tcprobe is not linked to libtcpcrypt.so.0 (needs %v, %v); pkg-config said %q", libs, err, flags)
	}
	return probe
}

// startProbe runs tcprobe on h with its daemon's control socket in
// $TCPCRYPT_CTL.
func (h *host) startProbe(t *testing.T, probe, ctlSock string, stdin bool, args ...string) *proc {
	t.Helper()
	argv := h.argv(append([]string{"env", "TCPCRYPT_CTL=" + ctlSock, probe}, args...)...)
	return startProc(t, "tcprobe@"+h.name, stdin, argv...)
}

// probeEvent waits for tcprobe's line of kind event and returns it.
func probeEvent(t *testing.T, p *proc, event string) probeReport {
	t.Helper()
	if !p.waitFor(30*time.Second, func(stdout, _ string) bool { return strings.Contains(stdout, `"event":"`+event+`"`) }) {
		t.Fatalf("%s printed no %q line (running %v):\n%s\n%s", p.name, event, p.running(), p.out.String(), tail(p.errb.String(), 10))
	}
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
	for sc.Scan() {
		var r probeReport
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Event == event {
			return r
		}
	}
	t.Fatalf("%s: no parsable %q line:\n%s", p.name, event, p.out.String())
	return probeReport{}
}

// TestE2ELibtcpcrypt: a C program built against the installed libtcpcrypt
// makes a connection between two hosts that both run tcpcryptd, over IPv4
// and IPv6. At both ends the session id from TCP_CRYPT_SESSID and from
// tcpcrypt_getsessid() is the one tcnetstat --json lists on that host for
// that connection (33 bytes, the same at both ends), with role A at the
// connecting end and B at the accepting end, and TCP_CRYPT_ENABLE says 1.
// The client also asks right after connect() returns, before sending
// anything, and gets the same session id (the library waits out the key
// exchange).
func TestE2ELibtcpcrypt(t *testing.T) {
	a, b := pair(t)
	probe := buildProbe(t)
	a.startDaemon(t, "--rule", "5001:both")
	b.startDaemon(t, "--rule", "5001:both")
	for _, tc := range []struct {
		name   string
		listen string
	}{{"IPv4", b.v4.String()}, {"IPv6", b.v6.String()}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := b.startProbe(t, probe, b.sock, false, "serve", tc.listen, "5001")
			probeEvent(t, srv, "listening")
			cli := a.startProbe(t, probe, a.sock, true, "-hold", "-early", "connect", tc.listen, "5001")
			early := probeEvent(t, cli, "client_early")
			c := probeEvent(t, cli, "client")
			s := probeEvent(t, srv, "server")
			// Read both hosts' tables while the connection is open.
			cliRows := rowsOf(a.netstat(t), mustAddrPort(t, c.Local), mustAddrPort(t, c.Remote))
			srvRows := rowsOf(b.netstat(t), mustAddrPort(t, s.Local), mustAddrPort(t, s.Remote))
			cli.closeStdin()
			if code := cli.wait(t, 20*time.Second); code != 0 {
				t.Errorf("client exited %d", code)
			}
			if code := srv.wait(t, 20*time.Second); code != 0 {
				t.Errorf("server exited %d", code)
			}
			if c.Local != s.Remote || c.Remote != s.Local {
				t.Fatalf("the ends disagree on the connection: client %s -> %s, server %s -> %s", c.Local, c.Remote, s.Local, s.Remote)
			}
			for _, end := range []struct {
				name, role string
				r          probeReport
				rows       int
				sid, got   string
			}{
				{"client (a)", "A", c, len(cliRows), sidOf(cliRows), roleOf(cliRows)},
				{"server (b)", "B", s, len(srvRows), sidOf(srvRows), roleOf(srvRows)},
			} {
				if end.rows != 1 {
					t.Errorf("%s: tcnetstat lists the connection %d times, want once", end.name, end.rows)
					continue
				}
				if len(end.sid) != 66 {
					t.Errorf("%s: tcnetstat session id %q, want 33 bytes", end.name, end.sid)
				}
				if end.r.Sockopt != end.sid || end.r.SockoptLen != 33 {
					t.Errorf("%s: TCP_CRYPT_SESSID %q (%d bytes, errno %q); tcnetstat %s", end.name, end.r.Sockopt, end.r.SockoptLen, end.r.SockoptErrno, end.sid)
				}
				if end.r.Getsessid != end.sid {
					t.Errorf("%s: tcpcrypt_getsessid %q (errno %q); tcnetstat %s", end.name, end.r.Getsessid, end.r.GetsessidErrno, end.sid)
				}
				if end.r.Enable != 1 {
					t.Errorf("%s: TCP_CRYPT_ENABLE %d (errno %q), want 1", end.name, end.r.Enable, end.r.EnableErrno)
				}
				if end.got != end.role {
					t.Errorf("%s: tcnetstat role %q, want %s", end.name, end.got, end.role)
				}
			}
			if c.Sockopt != s.Sockopt {
				t.Errorf("session ids differ: client %s, server %s", c.Sockopt, s.Sockopt)
			}
			// Asked right after connect(), before the peer's Init2 can
			// have arrived: the library waits for the key exchange.
			if early.Sockopt != c.Sockopt || early.Getsessid != c.Sockopt || early.Enable != 1 {
				t.Errorf("lookups right after connect(): TCP_CRYPT_SESSID %q (errno %q), getsessid %q (errno %q), enable %d (errno %q); want session %s",
					early.Sockopt, early.SockoptErrno, early.Getsessid, early.GetsessidErrno, early.Enable, early.EnableErrno, c.Sockopt)
			}
			t.Logf("%s -> %s: session id %s (lookups %.3fs / %.3fs)", c.Local, c.Remote, c.Sockopt, c.Seconds, s.Seconds)
		})
	}
}

// TestE2ELibtcpcryptPlainPeer: a has tcpcryptd, b has none. On a, a
// connection to or from b is plain TCP and every lookup fails with ENOENT
// (TCP_CRYPT_ENABLE says 0); on b, with no daemon at all, every lookup fails
// at once with ECONNREFUSED.
func TestE2ELibtcpcryptPlainPeer(t *testing.T) {
	a, b := pair(t)
	probe := buildProbe(t)
	a.startDaemon(t, "--rule", "5001:both")
	none := filepath.Join(b.dir, "no-daemon.sock")
	for _, tc := range []struct {
		name               string
		cliHost, srvHost   *host
		cliSock, srvSock   string
		listen             string
		cliErrno, srvErrno string
	}{
		{"daemon host connects", a, b, a.sock, none, b.v4.String(), "ENOENT", "ECONNREFUSED"},
		{"daemon host accepts", b, a, none, a.sock, a.v6.String(), "ECONNREFUSED", "ENOENT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.srvHost.startProbe(t, probe, tc.srvSock, false, "serve", tc.listen, "5001")
			probeEvent(t, srv, "listening")
			cli := tc.cliHost.startProbe(t, probe, tc.cliSock, true, "connect", tc.listen, "5001")
			for _, end := range []struct {
				r     probeReport
				errno string
			}{{probeEvent(t, cli, "client"), tc.cliErrno}, {probeEvent(t, srv, "server"), tc.srvErrno}} {
				r := end.r
				if r.SockoptErrno != end.errno || r.GetsessidErrno != end.errno || r.Sockopt != "" || r.Getsessid != "" {
					t.Errorf("%s: TCP_CRYPT_SESSID %q errno %q, getsessid %q errno %q; want %s", r.Event, r.Sockopt, r.SockoptErrno, r.Getsessid, r.GetsessidErrno, end.errno)
				}
				switch end.errno {
				case "ENOENT":
					if r.Enable != 0 || r.EnableErrno != "" {
						t.Errorf("%s: TCP_CRYPT_ENABLE %d errno %q, want 0", r.Event, r.Enable, r.EnableErrno)
					}
				case "ECONNREFUSED":
					if r.EnableErrno != "ECONNREFUSED" {
						t.Errorf("%s: TCP_CRYPT_ENABLE errno %q, want ECONNREFUSED", r.Event, r.EnableErrno)
					}
					// Three lookups without a daemon: no waiting for a timeout.
					if r.Seconds > 0.5 {
						t.Errorf("%s: the lookups without a daemon took %.3fs", r.Event, r.Seconds)
					}
				}
				t.Logf("%s: %s in %.3fs", r.Event, r.SockoptErrno, r.Seconds)
			}
			cli.wait(t, 20*time.Second)
			srv.wait(t, 20*time.Second)
		})
	}
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatalf("tcprobe endpoint %q: %v", s, err)
	}
	return ap
}

// sidOf and roleOf return the session id (hex) and role of a single row.
func sidOf(rows []ctl.Conn) string {
	if len(rows) != 1 {
		return ""
	}
	return rows[0].SessionID.String()
}

func roleOf(rows []ctl.Conn) string {
	if len(rows) != 1 {
		return ""
	}
	return rows[0].Role.String()
}
