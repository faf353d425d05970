package libtcpcrypt_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/ctl/ctltest"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

// gcc returns the C compiler, or ends t.
func gcc(t *testing.T) string {
	t.Helper()
	return testenv.LookPath(t, "gcc", "Debian: apt-get install gcc libc6-dev")
}

var (
	sanOnce sync.Once
	sanOK   bool
)

// sanitizers returns the sanitizer flags when the compiler can link them.
func sanitizers(t *testing.T, cc string) []string {
	t.Helper()
	flags := []string{"-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"}
	sanOnce.Do(func() {
		dir := t.TempDir()
		src := filepath.Join(dir, "m.c")
		if err := os.WriteFile(src, []byte("int main(void){return 0;}\n"), 0o644); err != nil {
			return
		}
		out, err := exec.Command(cc, append(flags, "-o", filepath.Join(dir, "m"), src)...).CombinedOutput()
		sanOK = err == nil
		if !sanOK {
			t.Logf("building without sanitizers: %v\n%s", err, out)
		}
	})
	if sanOK {
		return flags
	}
	return nil
}

// build compiles C sources (relative to this directory) into a program.
func build(t *testing.T, name string, srcs ...string) string {
	t.Helper()
	cc := gcc(t)
	out := filepath.Join(t.TempDir(), name)
	args := []string{"-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-g", "-pthread",
		"-Iinclude", "-Isrc", "-o", out}
	args = append(args, sanitizers(t, cc)...)
	args = append(args, srcs...)
	if b, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", cc, strings.Join(args, " "), err, b)
	}
	return out
}

// TestCReplyParser runs the C unit tests of the reply reader.
func TestCReplyParser(t *testing.T) {
	bin := build(t, "reply_test", "tests/reply_test.c", "src/reply.c")
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "PASS") {
		t.Fatalf("reply_test: %v\n%s", err, out)
	}
}

// probe is the tcprobe program, built once per test binary.
var (
	probeOnce sync.Once
	probePath string
	probeErr  error
)

func tcprobe(t *testing.T) string {
	t.Helper()
	gcc(t)
	probeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tcprobe")
		if err != nil {
			probeErr = err
			return
		}
		// Shared by the tests; TestMain removes it.
		probePath = filepath.Join(dir, "tcprobe")
		cc := gcc(t)
		args := []string{"-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-g", "-pthread",
			"-Iinclude", "-Isrc", "-o", probePath}
		args = append(args, sanitizers(t, cc)...)
		args = append(args, "tests/tcprobe.c", "src/tcpcrypt.c", "src/reply.c")
		if b, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
			probeErr = errors.New(string(b))
		}
	})
	if probeErr != nil {
		t.Fatalf("building tcprobe: %v", probeErr)
	}
	return probePath
}

// lookup is one JSON line of tcprobe.
type lookup struct {
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
	// fds, threads, setsockopt events
	Before         int      `json:"before"`
	After          int      `json:"after"`
	Want           string   `json:"want"`
	Extra          int      `json:"extra"`
	Without        int      `json:"without"`
	Blocking       int      `json:"blocking"`
	Errno          string   `json:"errno"`
	OK             int      `json:"ok"`
	Total          int      `json:"total"`
	Errnos         []string `json:"errnos"`
	GetErrnos      []string `json:"get_errnos"`
	OtherLevel     string   `json:"other_level"`
	NullOptval     string   `json:"null_optval"`
	BadFD          string   `json:"bad_fd"`
	NotSocket      string   `json:"not_socket"`
	EnableShort    string   `json:"enable_short"`
	ZeroErrno      string   `json:"zero_errno"`
	ShortErrno     string   `json:"short_errno"`
	UnconnErrno    string   `json:"unconnected_errno"`
	EnableShortLen int      `json:"enable_short_len"`
}

// runProbe runs tcprobe with the control address in $TCPCRYPT_CTL (ctlEnv)
// and optionally through tcpcrypt_setparam (setparam), returning its lines
// by event.
func runProbe(t *testing.T, ctlEnv, setparam string, args ...string) map[string]lookup {
	t.Helper()
	cmd := exec.Command(tcprobe(t), args...)
	cmd.Env = append(os.Environ(), "TCPCRYPT_CTL="+ctlEnv, "ASAN_OPTIONS=detect_leaks=1")
	if setparam != "" {
		cmd.Env = append(cmd.Env, "TCPROBE_CTL="+setparam)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tcprobe %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, stderr.String())
	}
	res := map[string]lookup{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var l lookup
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("tcprobe line %q: %v", sc.Text(), err)
		}
		res[l.Event] = l
	}
	return res
}

// backend answers sessid for every connection with a session id derived
// from its endpoints (or with the error in mode), and records the requests.
type backend struct {
	ctltest.Backend
	mu      sync.Mutex
	mode    error // nil: a session for everything
	pending int   // answer this many requests first with a key exchange still running
	calls   [][2]netip.AddrPort
	flushed [][2]netip.AddrPort // cache.flush requests
}

// FlushCache records the request and flushes one secret (or fails with
// mode).
func (b *backend) FlushCache(_ context.Context, local, remote netip.AddrPort) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mode != nil {
		return 0, b.mode
	}
	b.flushed = append(b.flushed, [2]netip.AddrPort{local, remote})
	return 1, nil
}

func (b *backend) flushedConns() [][2]netip.AddrPort {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.flushed)
}

// errPending is the daemon's answer while a connection's key exchange runs.
var errPending = &ctl.Error{Code: ctl.CodeNoSession, Pending: true, Message: "key exchange not finished yet (state key-exchange)"}

func sidFor(local, remote netip.AddrPort) []byte {
	h := sha256.Sum256([]byte(local.String() + " " + remote.String()))
	return append([]byte{0x23}, h[:]...)
}

func (b *backend) SessionID(_ context.Context, local, remote netip.AddrPort) (ctl.Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, [2]netip.AddrPort{local, remote})
	if b.mode != nil {
		return ctl.Conn{}, b.mode
	}
	if b.pending > 0 {
		b.pending--
		return ctl.Conn{}, errPending
	}
	return ctl.Conn{Local: local, Remote: remote, State: "established", Role: ctl.RoleA,
		TEP: ctl.TEP{Name: "TCPCRYPT_ECDHE_Curve25519", ID: 0x23}, AEAD: "AEAD_AES_128_GCM",
		SessionID: sidFor(local, remote)}, nil
}

func (b *backend) setPending(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending = n
}

func (b *backend) numCalls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.calls)
}

func (b *backend) setMode(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mode = err
}

func (b *backend) saw(local, remote netip.AddrPort) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.calls {
		if c[0] == local && c[1] == remote {
			return true
		}
	}
	return false
}

func startServer(t *testing.T) (*backend, string) {
	b := &backend{}
	path := ctltest.Start(t, ctlserver.Config{Backend: b, MaxClients: 64, MaxClientsPerUID: 64})
	return b, path
}

// TestSession: a connection of the program's own, over IPv4 and IPv6, gets
// the daemon's session id through TCP_CRYPT_SESSID and tcpcrypt_getsessid
// (the same bytes), TCP_CRYPT_ENABLE says 1, the daemon was asked about
// exactly that connection, and no descriptor is left open.
func TestSession(t *testing.T) {
	b, path := startServer(t)
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			l := runProbe(t, path, "", "self", host)["self"]
			local, err1 := netip.ParseAddrPort(l.Local)
			remote, err2 := netip.ParseAddrPort(l.Remote)
			if err1 != nil || err2 != nil {
				t.Fatalf("endpoints %q %q: %v %v", l.Local, l.Remote, err1, err2)
			}
			want := hex.EncodeToString(sidFor(local, remote))
			if l.Sockopt != want || l.SockoptLen != 33 || l.SockoptErrno != "" {
				t.Errorf("TCP_CRYPT_SESSID: %q (len %d, errno %q), want %s (33 bytes)", l.Sockopt, l.SockoptLen, l.SockoptErrno, want)
			}
			if l.Getsessid != want {
				t.Errorf("tcpcrypt_getsessid: %q (errno %q), want %s", l.Getsessid, l.GetsessidErrno, want)
			}
			if l.Enable != 1 {
				t.Errorf("TCP_CRYPT_ENABLE: %d (errno %q), want 1", l.Enable, l.EnableErrno)
			}
			if !b.saw(local, remote) {
				t.Errorf("the daemon was not asked about %s -> %s", local, remote)
			}
		})
	}
	fds := runProbe(t, path, "", "self", "127.0.0.1")["fds"]
	if fds.Before != fds.After || fds.Before <= 0 {
		t.Errorf("open descriptors before the lookups %d, after %d", fds.Before, fds.After)
	}
}

// TestPendingSession: a connection whose key exchange is still running when
// the application asks (a client right after connect()) gets its session id
// once the daemon has it, within the same call: each call asks again while
// the daemon answers pending, not failing with ENOENT as if the connection
// were plain TCP.
func TestPendingSession(t *testing.T) {
	b, path := startServer(t)
	// Three lookups in the probe (SESSID, ENABLE, getsessid): the first
	// one sees three pending answers before the session.
	b.setPending(3)
	l := runProbe(t, path, "", "self", "127.0.0.1")["self"]
	local, err1 := netip.ParseAddrPort(l.Local)
	remote, err2 := netip.ParseAddrPort(l.Remote)
	if err1 != nil || err2 != nil {
		t.Fatalf("endpoints %q %q: %v %v", l.Local, l.Remote, err1, err2)
	}
	want := hex.EncodeToString(sidFor(local, remote))
	if l.Sockopt != want || l.SockoptErrno != "" {
		t.Errorf("TCP_CRYPT_SESSID after a pending key exchange: %q errno %q, want %s", l.Sockopt, l.SockoptErrno, want)
	}
	if l.Enable != 1 || l.EnableErrno != "" {
		t.Errorf("TCP_CRYPT_ENABLE: %d errno %q, want 1", l.Enable, l.EnableErrno)
	}
	if l.Getsessid != want {
		t.Errorf("tcpcrypt_getsessid: %q errno %q, want %s", l.Getsessid, l.GetsessidErrno, want)
	}
	if n := b.numCalls(); n != 3+3 {
		t.Errorf("the daemon was asked %d times, want 6 (3 pending answers, then one per lookup)", n)
	}
	// The pauses start at 5 ms and double: 5+10+20 ms, well under a second.
	if l.Seconds > 1.5 {
		t.Errorf("the lookups took %.3fs", l.Seconds)
	}
}

// TestNoCache: TCP_CRYPT_NOCACHE set on a connected socket asks the daemon
// to flush that connection's cache state (cache.flush of exactly its
// endpoints), which removes its cached secret; the value 0, a short optlen
// and an unconnected socket are refused without asking. The daemon's
// refusal (another user's connection) comes back as EACCES, a connection it
// does not track as ENOENT.
func TestNoCache(t *testing.T) {
	b := &backend{}
	path := ctltest.Start(t, ctlserver.Config{Backend: b, MaxClients: 64, MaxClientsPerUID: 64,
		// The probe's connection belongs to this process's uid; the
		// server lets it flush without root.
		SocketOwner: func(context.Context, netip.AddrPort, netip.AddrPort) (uint32, error) {
			return uint32(os.Getuid()), nil
		}})
	l := runProbe(t, path, "", "nocache", "127.0.0.1")["nocache"]
	local, remote := netip.MustParseAddrPort(l.Local), netip.MustParseAddrPort(l.Remote)
	if l.Errno != "" {
		t.Errorf("TCP_CRYPT_NOCACHE: errno %q, want success", l.Errno)
	}
	if got := b.flushedConns(); len(got) != 1 || got[0] != [2]netip.AddrPort{local, remote} {
		t.Errorf("the daemon flushed %v, want exactly %v -> %v", got, local, remote)
	}
	if l.ZeroErrno != "EINVAL" || l.ShortErrno != "EINVAL" || l.UnconnErrno != "ENOTCONN" {
		t.Errorf("value 0: %s (want EINVAL), short optlen: %s (want EINVAL), unconnected: %s (want ENOTCONN)",
			l.ZeroErrno, l.ShortErrno, l.UnconnErrno)
	}

	// Refusals from the daemon.
	for _, tc := range []struct {
		mode error
		want string
	}{{ctl.ErrForbidden, "EACCES"}, {ctl.ErrNotFound, "ENOENT"}} {
		b.setMode(tc.mode)
		if l := runProbe(t, path, "", "nocache", "127.0.0.1")["nocache"]; l.Errno != tc.want {
			t.Errorf("daemon answers %v: errno %q, want %s", tc.mode, l.Errno, tc.want)
		}
	}
	b.setMode(nil)
}

// TestControlAddress: tcpcrypt_setparam wins over $TCPCRYPT_CTL, which wins
// over the default; TCP loopback addresses work as in the Go client; other
// addresses are refused.
func TestControlAddress(t *testing.T) {
	_, path := startServer(t)
	srv, err := ctlserver.NewServer(ctlserver.Config{Backend: &backend{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	port := srv.Addrs()[0].(*net.TCPAddr).Port
	tcpAddr := "127.0.0.1:" + itoa(port)
	missing := filepath.Join(t.TempDir(), "absent", "ctl")
	for _, tc := range []struct {
		name, env, setparam, want string
	}{
		{"env", path, "", ""},
		{"unix: prefix", "unix:" + path, "", ""},
		{"setparam over env", missing, path, ""},
		{"env without setparam", missing, "", "ECONNREFUSED"},
		{"tcp", tcpAddr, "", ""},
		{"localhost", "localhost:" + itoa(port), "", ""},
		{"tcp port without host", ":" + itoa(port), "", ""},
		{"bracketed IPv4", "[127.0.0.1]:" + itoa(port), "", ""},
		{"IPv4-mapped loopback", "[::ffff:127.0.0.1]:" + itoa(port), "", ""},
		{"IPv6 loopback, nobody listening", "[::1]:" + itoa(port), "", "ECONNREFUSED"},
		{"abstract socket, nobody listening", "unix:@tcpcrypt-test-none", "", "ECONNREFUSED"},
		{"not loopback", "192.0.2.1:" + itoa(port), "", "EINVAL"},
		{"ipv6 without brackets", "::1:" + itoa(port), "", "EINVAL"},
		{"port 0", "127.0.0.1:0", "", "EINVAL"},
		{"no port", "localhost", "", "EINVAL"},
		{"path too long", "/" + strings.Repeat("x", 200), "", "EINVAL"},
		{"setparam too long", path, "/" + strings.Repeat("x", 5000), "EINVAL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := runProbe(t, tc.env, tc.setparam, "self", "127.0.0.1")["self"]
			if l.SockoptErrno != tc.want || (tc.want == "" && len(l.Sockopt) != 66) {
				t.Errorf("TCP_CRYPT_SESSID: %q errno %q, want errno %q", l.Sockopt, l.SockoptErrno, tc.want)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// fakeDaemon listens on a unix socket and handles each connection with fn.
func fakeDaemon(t *testing.T, fn func(c net.Conn)) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tcfake")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "ctl")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				fn(c)
			}()
		}
	}()
	return path
}

// replyWith returns a fake daemon handler that reads the request and
// answers with reply verbatim.
func replyWith(reply string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			return
		}
		c.Write([]byte(reply))
	}
}

// TestErrnos checks every documented failure of TCP_CRYPT_SESSID and
// tcpcrypt_getsessid (libtcpcrypt(3), ERRORS).
func TestErrnos(t *testing.T) {
	b, path := startServer(t)
	stale := filepath.Join(t.TempDir(), "stale")
	if l, err := net.Listen("unix", stale); err != nil {
		t.Fatal(err)
	} else {
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		l.Close() // the socket file stays; nobody listens
	}
	silent := fakeDaemon(t, func(c net.Conn) { c.Read(make([]byte, 4096)); time.Sleep(5 * time.Second) })
	closing := fakeDaemon(t, func(c net.Conn) { bufio.NewReader(c).ReadString('\n') })
	garbage := fakeDaemon(t, replyWith("garbage\n"))
	truncated := fakeDaemon(t, replyWith(`{"v":1,"id":1,"ok":true,"result":{"session_id":"23`))
	noNewline := fakeDaemon(t, replyWith(`{"v":1,"id":1,"ok":true,"result":{"session_id":"23ab","role":"B"}}`))
	huge := fakeDaemon(t, replyWith(`{"v":1,"id":1,"x":"`+strings.Repeat("a", 70000)+`"}`+"\n"))
	busy := fakeDaemon(t, replyWith(`{"v":1,"id":0,"ok":false,"error":{"code":"busy","message":"too many control clients"}}`+"\n"))
	forbidden := fakeDaemon(t, replyWith(`{"v":1,"id":1,"ok":false,"error":{"code":"forbidden","message":"no"}}`+"\n"))

	for _, tc := range []struct {
		name, ctl string
		mode      error
		args      []string
		want      string  // errno of TCP_CRYPT_SESSID and tcpcrypt_getsessid
		enable    int     // TCP_CRYPT_ENABLE value, -1 when it fails with want too
		minS      float64 // bounds of the lookup's duration
		maxS      float64
	}{
		{name: "not tracked", ctl: path, mode: ctl.ErrNotFound, want: "ENOENT", enable: 0},
		{name: "not encrypted", ctl: path, mode: ctl.ErrNoSession, want: "ENOENT", enable: 0},
		// Each call asks again until its 2 s are over, then says pending.
		{name: "key exchange never ends", ctl: path, mode: errPending, want: "EINPROGRESS", enable: -1, minS: 3 * 1.9, maxS: 3 * 2.5},
		{name: "daemon failure", ctl: path, mode: errors.New("boom"), want: "EIO", enable: -1},
		{name: "buffer too small", ctl: path, args: []string{"-len", "32"}, want: "ERANGE", enable: 1},
		{name: "no daemon", ctl: filepath.Join(t.TempDir(), "none"), want: "ECONNREFUSED", enable: -1, maxS: 0.5},
		{name: "no directory", ctl: "/nonexistent/tcpcrypt/ctl", want: "ECONNREFUSED", enable: -1, maxS: 0.5},
		{name: "stale socket", ctl: stale, want: "ECONNREFUSED", enable: -1, maxS: 0.5},
		{name: "silent daemon", ctl: silent, want: "ETIMEDOUT", enable: -1, minS: 3 * 1.9, maxS: 3 * 2.5},
		{name: "closes without reply", ctl: closing, want: "ECONNRESET", enable: -1},
		{name: "garbage", ctl: garbage, want: "EPROTO", enable: -1},
		{name: "truncated reply", ctl: truncated, want: "EPROTO", enable: -1},
		{name: "reply over 64 KiB", ctl: huge, want: "EPROTO", enable: -1},
		{name: "busy", ctl: busy, want: "EAGAIN", enable: -1},
		{name: "forbidden", ctl: forbidden, want: "EACCES", enable: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.setMode(tc.mode)
			defer b.setMode(nil)
			l := runProbe(t, tc.ctl, "", append(tc.args, "self", "127.0.0.1")...)["self"]
			if l.SockoptErrno != tc.want || l.Sockopt != "" {
				t.Errorf("TCP_CRYPT_SESSID: %q errno %q, want %s", l.Sockopt, l.SockoptErrno, tc.want)
			}
			if tc.want == "ERANGE" {
				if l.SockoptLen != 33 {
					t.Errorf("ERANGE: optlen set to %d, want the 33 needed", l.SockoptLen)
				}
			} else if l.GetsessidErrno != tc.want || l.Getsessid != "" {
				t.Errorf("tcpcrypt_getsessid: %q errno %q, want %s", l.Getsessid, l.GetsessidErrno, tc.want)
			}
			switch {
			case tc.enable >= 0 && (l.Enable != tc.enable || l.EnableErrno != ""):
				t.Errorf("TCP_CRYPT_ENABLE: %d errno %q, want %d", l.Enable, l.EnableErrno, tc.enable)
			case tc.enable < 0 && l.EnableErrno != tc.want:
				t.Errorf("TCP_CRYPT_ENABLE: %d errno %q, want errno %s", l.Enable, l.EnableErrno, tc.want)
			}
			// Three lookups (SESSID, ENABLE, getsessid) per run.
			if tc.maxS > 0 && (l.Seconds < tc.minS || l.Seconds > tc.maxS) {
				t.Errorf("the three lookups took %.3fs, want %.1f..%.1fs", l.Seconds, tc.minS, tc.maxS)
			}
		})
	}
	// A final line without a newline is a complete reply.
	l := runProbe(t, noNewline, "", "self", "127.0.0.1")["self"]
	if l.Sockopt != "23ab" {
		t.Errorf("reply without newline: %q errno %q, want 23ab", l.Sockopt, l.SockoptErrno)
	}
}

// TestSocketErrnos: sockets the library cannot ask about, and options it
// does not support.
func TestSocketErrnos(t *testing.T) {
	_, path := startServer(t)
	if l := runProbe(t, path, "", "unconnected")["unconnected"]; l.SockoptErrno != "ENOTCONN" || l.EnableErrno != "ENOTCONN" {
		t.Errorf("unconnected socket: %q / %q, want ENOTCONN", l.SockoptErrno, l.EnableErrno)
	}
	if l := runProbe(t, path, "", "udp")["udp"]; l.SockoptErrno != "ENOPROTOOPT" {
		t.Errorf("UDP socket: %q, want ENOPROTOOPT", l.SockoptErrno)
	}
	s := runProbe(t, path, "", "setsockopt")["setsockopt"]
	for i, e := range s.Errnos {
		// TCP_CRYPT_NOCACHE (#6) is supported on a connected socket.
		if want := map[bool]string{false: "ENOPROTOOPT", true: "ENOTCONN"}[i == 6]; e != want {
			t.Errorf("setsockopt option #%d on an unconnected socket: %s, want %s", i, e, want)
		}
	}
	// ENABLE (0) and SESSID (2) are supported (ENOTCONN: the socket is not
	// connected); the others are not.
	wantGet := []string{"ENOTCONN", "ENOPROTOOPT", "ENOTCONN", "ENOPROTOOPT", "ENOPROTOOPT", "ENOPROTOOPT", "ENOPROTOOPT", "ENOPROTOOPT"}
	if strings.Join(s.GetErrnos, ",") != strings.Join(wantGet, ",") {
		t.Errorf("getsockopt of each option: %v, want %v", s.GetErrnos, wantGet)
	}
	if s.OtherLevel != "ENOPROTOOPT" || s.NullOptval != "EINVAL" || s.BadFD != "EBADF" || s.NotSocket != "ENOTSOCK" {
		t.Errorf("other level %s (want ENOPROTOOPT), NULL optval %s (want EINVAL), fd -1 %s (want EBADF), standard input %s (want ENOTSOCK)",
			s.OtherLevel, s.NullOptval, s.BadFD, s.NotSocket)
	}
	if s.EnableShort != "ERANGE" || s.EnableShortLen != 4 {
		t.Errorf("TCP_CRYPT_ENABLE with a 1-byte buffer: %s, optlen %d; want ERANGE and the 4 bytes of an int", s.EnableShort, s.EnableShortLen)
	}
}

// TestGetsessid: addresses in text, in either family, with brackets, zones
// and IPv4-mapped IPv6, reach the daemon in its canonical form; bad ones
// fail with EINVAL before any request.
func TestGetsessid(t *testing.T) {
	b, path := startServer(t)
	for _, tc := range []struct {
		rip, rport, lip, lport string
		local, remote          string // as the daemon must see them; "" for EINVAL
	}{
		{"192.0.2.7", "443", "192.0.2.1", "40000", "192.0.2.1:40000", "192.0.2.7:443"},
		{"2001:db8::7", "443", "2001:db8::1", "40000", "[2001:db8::1]:40000", "[2001:db8::7]:443"},
		{"[2001:db8::7]", "443", "fe80::1%eth0", "1", "[fe80::1]:1", "[2001:db8::7]:443"},
		{"::ffff:192.0.2.7", "80", "::ffff:192.0.2.1", "5", "192.0.2.1:5", "192.0.2.7:80"},
		{"192.0.2.300", "1", "192.0.2.1", "1", "", ""},
		{"example.org", "1", "192.0.2.1", "1", "", ""},
		{"192.0.2.1", "1", "", "1", "", ""},
		{"192.0.2.1%eth0", "1", "192.0.2.1", "1", "", ""},
	} {
		l := runProbe(t, path, "", "sessid", tc.rip, tc.rport, tc.lip, tc.lport)["sessid"]
		if tc.local == "" {
			if l.GetsessidErrno != "EINVAL" {
				t.Errorf("getsessid(%s, %s, %q, %s): %q errno %q, want EINVAL", tc.rip, tc.rport, tc.lip, tc.lport, l.Getsessid, l.GetsessidErrno)
			}
			continue
		}
		local, remote := netip.MustParseAddrPort(tc.local), netip.MustParseAddrPort(tc.remote)
		if want := hex.EncodeToString(sidFor(local, remote)); l.Getsessid != want {
			t.Errorf("getsessid(%s, %s, %s, %s) = %q errno %q, want %s", tc.rip, tc.rport, tc.lip, tc.lport, l.Getsessid, l.GetsessidErrno, want)
		}
		if !b.saw(local, remote) {
			t.Errorf("the daemon was not asked about %s -> %s", local, remote)
		}
	}
}

// TestThreadsAndFork: lookups from 8 threads at once, while the control
// address is set again and again, all succeed; a child process looks up
// after fork() and gets the same session id.
func TestThreadsAndFork(t *testing.T) {
	_, path := startServer(t)
	th := runProbe(t, path, path, "threads", "127.0.0.1", "8", "25")["threads"]
	if th.Total != 200 || th.OK != th.Total || len(th.Want) != 66 {
		t.Errorf("threads: %d of %d lookups right (session %q)", th.OK, th.Total, th.Want)
	}
	res := runProbe(t, path, "", "fork", "127.0.0.1")
	p, c := res["parent"], res["child"]
	if len(p.Sockopt) != 66 || c.Sockopt != p.Sockopt {
		t.Errorf("fork: parent %q (%s), child %q (%s)", p.Sockopt, p.SockoptErrno, c.Sockopt, c.SockoptErrno)
	}
}

// TestCloseOnExec: while a call waits for the daemon, the one descriptor the
// library opened is close-on-exec and non-blocking.
func TestCloseOnExec(t *testing.T) {
	silent := fakeDaemon(t, func(c net.Conn) { c.Read(make([]byte, 4096)); time.Sleep(3 * time.Second) })
	l := runProbe(t, silent, "", "cloexec", "127.0.0.1")["cloexec"]
	if l.Extra != 1 || l.Without != 0 || l.Blocking != 0 || l.Errno != "ETIMEDOUT" {
		t.Errorf("mid-call: %d descriptors opened by the library, %d without FD_CLOEXEC, %d blocking; the call ended with %q (want 1, 0, 0, ETIMEDOUT)",
			l.Extra, l.Without, l.Blocking, l.Errno)
	}
}

func TestMain(m *testing.M) {
	if path := os.Getenv(fakeServerEnv); path != "" {
		fakeServer(path)
	}
	code := m.Run()
	if probePath != "" {
		os.RemoveAll(filepath.Dir(probePath))
	}
	os.Exit(code)
}

// fakeServerEnv names the unix socket path on which the test binary, run
// with it set, serves as a fake control server (fakeServer) instead of
// running the tests.
const fakeServerEnv = "LIBTCPCRYPT_FAKE_SERVER"

// fakeServer answers every request line with a session, on the unix socket
// path and on a loopback TCP port (printed first), until stdin closes.
func fakeServer(path string) {
	u, err := net.Listen("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lns := []net.Listener{u, l}
	port6 := 0
	if l6, err := net.Listen("tcp6", "[::1]:0"); err == nil { // IPv6 may be off
		lns, port6 = append(lns, l6), l6.Addr().(*net.TCPAddr).Port
	}
	fmt.Println(l.Addr().(*net.TCPAddr).Port, port6)
	for _, ln := range lns {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				bufio.NewReader(c).ReadString('\n')
				c.Write([]byte(`{"v":1,"id":1,"ok":true,"result":{"session_id":"23ab","role":"A"}}` + "\n"))
				c.Close()
			}
		}()
	}
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// startFakeServer runs a copy of the test binary as fakeServer, as uid
// (when not nil), and returns its control addresses: the unix socket path,
// then TCP over IPv4 and, where it has IPv6, over IPv6.
func startFakeServer(t *testing.T, uid *uint32) []string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tcfake")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bin := testenv.SelfCopy(t, dir)
	path := filepath.Join(dir, "ctl")
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), fakeServerEnv+"="+path)
	if uid != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: *uid, Gid: *uid}}
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	ports := strings.Fields(line)
	if err != nil || len(ports) != 2 {
		t.Fatalf("fake server: %q %v", line, err)
	}
	addrs := []string{path, "127.0.0.1:" + ports[0]}
	if ports[1] != "0" {
		addrs = append(addrs, "[::1]:"+ports[1])
	}
	return addrs
}

// TestUntrustedServer: session ids are believed only from a control server
// run by root or by the caller's own uid, as in the Go client. A server of
// another user (here nobody, which any local user could start on a TCP
// control port, or on the socket path while the daemon is down) is refused
// with EPERM, over the unix socket (SO_PEERCRED) and over TCP (sock_diag,
// IPv4 and IPv6); the same server run as this process's uid is believed.
func TestUntrustedServer(t *testing.T) {
	testenv.RequireRoot(t, "it runs a fake control server as user nobody (65534)")
	nobody := uint32(65534)
	for _, tc := range []struct {
		name string
		uid  *uint32
		want string
	}{
		{"own uid", nil, ""},
		{"another user", &nobody, "EPERM"},
	} {
		for _, addr := range startFakeServer(t, tc.uid) {
			l := runProbe(t, addr, "", "self", "127.0.0.1")["self"]
			switch {
			case tc.want == "" && (l.Sockopt != "23ab" || l.Getsessid != "23ab" || l.Enable != 1):
				t.Errorf("%s, %s: TCP_CRYPT_SESSID %q errno %q, getsessid %q errno %q, enable %d; want the session 23ab",
					tc.name, addr, l.Sockopt, l.SockoptErrno, l.Getsessid, l.GetsessidErrno, l.Enable)
			case tc.want != "" && (l.SockoptErrno != tc.want || l.GetsessidErrno != tc.want || l.EnableErrno != tc.want || l.Sockopt != ""):
				t.Errorf("%s, %s: TCP_CRYPT_SESSID %q errno %q, getsessid errno %q, enable errno %q; want %s",
					tc.name, addr, l.Sockopt, l.SockoptErrno, l.GetsessidErrno, l.EnableErrno, tc.want)
			}
		}
	}
}
