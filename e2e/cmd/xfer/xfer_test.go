package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/ctl/ctltest"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
)

func TestHeaderRoundTrip(t *testing.T) {
	h := header{Up: 100 << 20, Down: 7, ID: 42, Flags: flagRaw}
	got, err := parseHeader(h.marshal())
	if err != nil || got != h {
		t.Fatalf("parseHeader(marshal(%+v)) = %+v, %v", h, got, err)
	}
}

func TestParseHeaderRejects(t *testing.T) {
	good := header{Up: 1, Down: 1, ID: 1}.marshal()
	mod := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	tests := map[string][]byte{
		"short":        good[:headerLen-1],
		"long":         append(bytes.Clone(good), 0),
		"magic":        mod(func(b []byte) { b[0] = 'Y' }),
		"huge up":      header{Up: maxStream + 1}.marshal(),
		"huge down":    header{Down: ^uint64(0)}.marshal(),
		"unknown flag": header{Flags: 4}.marshal(),
		"down bit id":  header{ID: downBit | 1}.marshal(),
	}
	for name, b := range tests {
		if _, err := parseHeader(b); !errors.Is(err, errHeader) {
			t.Errorf("%s: err = %v, want errHeader", name, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true}, {"100", 100, true}, {"16M", 16 << 20, true}, {"16MiB", 16 << 20, true},
		{"1G", 1 << 30, true}, {"2k", 2048, true}, {"5B", 5, true}, {" 3K ", 3072, true},
		{"", 0, false}, {"M", 0, false}, {"-1", 0, false}, {"1T", 0, false}, {"1.5M", 0, false},
		{"1048577M", 0, false}, {"1048576M", 1 << 40, true},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(header{Up: 1, Down: 2, ID: 3}.marshal())
	f.Add([]byte("XFR1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader(b)
		if err != nil {
			return
		}
		if !bytes.Equal(h.marshal(), b) {
			t.Fatalf("round trip of %x gave %x", b, h.marshal())
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "16M", "1GiB", "k", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseSize(s)
		if err == nil && v > maxStream {
			t.Fatalf("parseSize(%q) = %d, over the bound", s, v)
		}
	})
}

// lines collects the JSON lines a printer writes.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lines) reports(t *testing.T) []Report {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Report
	sc := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	for sc.Scan() {
		var r Report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func startServer(t *testing.T, cfg serverConfig) (addr string, out *lines, wait func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	out = &lines{}
	stop := make(chan struct{})
	code := make(chan int, 1)
	go func() { code <- runServer(ln, cfg, newPrinter(out), stop) }()
	var once sync.Once
	wait = func() int {
		once.Do(func() { close(stop) })
		select {
		case c := <-code:
			code <- c
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("server did not stop")
			return -1
		}
	}
	t.Cleanup(func() { wait() })
	return ln.Addr().String(), out, wait
}

func TestTransferLoopback(t *testing.T) {
	addr, srvOut, wait := startServer(t, serverConfig{timeout: 10 * time.Second})
	cliOut := &lines{}
	cfg := clientConfig{addr: addr, up: 300000, down: 123457, n: 5, par: 3, timeout: 10 * time.Second, idBase: 10}
	if code := runClient(cfg, newPrinter(cliOut)); code != 0 {
		t.Fatalf("client exit %d: %s", code, cliOut.buf.String())
	}
	if code := wait(); code != 0 {
		t.Fatalf("server exit %d: %s", code, srvOut.buf.String())
	}
	cli, srv := cliOut.reports(t), srvOut.reports(t)
	if len(cli) != 6 || len(srv) != 7 || srv[0].Event != "listening" {
		t.Fatalf("got %d client and %d server lines", len(cli), len(srv))
	}
	byID := map[uint32]Report{}
	for _, r := range srv[1:6] {
		byID[r.ID] = r
	}
	for _, c := range cli[:5] {
		s, ok := byID[c.ID]
		switch {
		case !ok:
			t.Errorf("no server report for id %d", c.ID)
		case !c.ok() || !s.ok() || !c.Verified || !s.Verified:
			t.Errorf("id %d: client %+v server %+v", c.ID, c, s)
		case c.SentSHA256 != s.RecvSHA256 || c.RecvSHA256 != s.SentSHA256 || c.Sent != 300000 || c.Received != 123457:
			t.Errorf("id %d: digests or counts differ: client %+v server %+v", c.ID, c, s)
		case c.Local != s.Remote:
			t.Errorf("id %d: client local %s, server remote %s", c.ID, c.Local, s.Remote)
		case c.FirstByteMS <= 0 || c.FirstByteMS > c.Seconds*1000:
			t.Errorf("id %d: first byte after %v ms of a %v s connection", c.ID, c.FirstByteMS, c.Seconds)
		}
	}
	sum := cli[5]
	if sum.FirstByteP50MS <= 0 || sum.FirstByteP99MS < sum.FirstByteP50MS {
		t.Errorf("first byte percentiles p50 %v p99 %v", sum.FirstByteP50MS, sum.FirstByteP99MS)
	}
	if sum.Event != "summary" || sum.OK != 5 || sum.Failed != 0 || sum.Bytes != 5*(300000+123457) {
		t.Errorf("client summary %+v", sum)
	}
	if s := srv[6]; s.Event != "summary" || s.OK != 5 {
		t.Errorf("server summary %+v", s)
	}
}

func TestHoldUntilStdinCloses(t *testing.T) {
	addr, _, _ := startServer(t, serverConfig{timeout: 10 * time.Second, quiet: true})
	pr, pw := io.Pipe()
	out := &lines{}
	cfg := clientConfig{addr: addr, up: 1000, down: 1000, n: 3, par: 3, hold: true, raw: true,
		timeout: 10 * time.Second, idBase: 1, stdin: pr}
	code := make(chan int, 1)
	go func() { code <- runClient(cfg, newPrinter(out)) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if rs := out.reports(t); len(rs) == 4 {
			for _, r := range rs[:3] {
				if r.Event != "held" || r.Local == "" || r.Received != 1000 {
					t.Fatalf("held line %+v", r)
				}
			}
			if rs[3].Event != "holding" || rs[3].Conns != 3 {
				t.Fatalf("fourth line %+v", rs[3])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no holding line")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case c := <-code:
		t.Fatalf("client exited (%d) before stdin closed", c)
	case <-time.After(100 * time.Millisecond):
	}
	pw.Close()
	select {
	case c := <-code:
		rs := out.reports(t)
		if c != 0 || len(rs) != 8 || rs[7].Event != "summary" || rs[7].OK != 3 {
			t.Fatalf("exit %d, lines %+v", c, rs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client did not finish after stdin closed")
	}
}

func TestServerRejectsBadHeader(t *testing.T) {
	addr, out, wait := startServer(t, serverConfig{timeout: 5 * time.Second, max: 1})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(strings.Repeat("x", headerLen))); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if code := wait(); code != 1 {
		t.Errorf("server exit %d, want 1", code)
	}
	rs := out.reports(t)
	if len(rs) != 3 || rs[1].Phase != "header" || !strings.Contains(rs[1].Err, "magic") {
		t.Errorf("reports %+v", rs)
	}
}

func TestClientReportsRefusal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	out := &lines{}
	cfg := clientConfig{addr: addr, up: 1, down: 1, n: 1, par: 1, timeout: 5 * time.Second, idBase: 1}
	if code := runClient(cfg, newPrinter(out)); code != 1 {
		t.Fatalf("exit %d", code)
	}
	rs := out.reports(t)
	if len(rs) != 2 || rs[0].Phase != "dial" || rs[0].Errno != "ECONNREFUSED" || rs[1].Errors["dial: ECONNREFUSED"] != 1 {
		t.Errorf("reports %+v", rs)
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"frob"}, {"send"}, {"send", "-c", "x:1", "-n", "2", "-hold"}, {"serve"}, {"send", "-c", "x:1", "-up", "1X"}} {
		var errb bytes.Buffer
		if code := run(args, strings.NewReader(""), io.Discard, &errb); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (stderr %q)", args, code, errb.String())
		}
	}
}

func TestFileTransfer(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "in.bin")
	dst := filepath.Join(dir, "out.bin")
	data := make([]byte, 300001)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	addr, srvOut, wait := startServer(t, serverConfig{timeout: 10 * time.Second, save: dst})
	out := &lines{}
	cfg := clientConfig{addr: addr, file: src, up: uint64(len(data)), down: 10, n: 1, par: 1, timeout: 10 * time.Second, idBase: 1}
	if code := runClient(cfg, newPrinter(out)); code != 0 {
		t.Fatalf("client exit %d: %s", code, out.buf.String())
	}
	if code := wait(); code != 0 {
		t.Fatalf("server exit %d: %s", code, srvOut.buf.String())
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("saved file differs (%d bytes, %v)", len(got), err)
	}
	want := sha256.Sum256(data)
	c, s := out.reports(t)[0], srvOut.reports(t)[1]
	if c.SentSHA256 != hex.EncodeToString(want[:]) || s.RecvSHA256 != c.SentSHA256 || s.Verified || !c.Verified {
		t.Errorf("client %+v\nserver %+v", c, s)
	}
}

func TestFileShorterThanAnnounced(t *testing.T) {
	src := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(src, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, _, _ := startServer(t, serverConfig{timeout: 2 * time.Second})
	out := &lines{}
	cfg := clientConfig{addr: addr, file: src, up: 10, n: 1, par: 1, timeout: 2 * time.Second, idBase: 1}
	if code := runClient(cfg, newPrinter(out)); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if r := out.reports(t)[0]; !strings.Contains(r.Err, "source ended after 3 of 10") {
		t.Errorf("report %+v", r)
	}
}

func TestSessionLookup(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	local, remote, err := ctl.ConnAddrs(cli)
	if err != nil {
		t.Fatal(err)
	}
	b := &ctltest.Backend{}
	b.SetConns([]ctl.Conn{{Local: local, Remote: remote, State: "established", Role: ctl.RoleA,
		TEP: ctl.TEP{Name: "TCPCRYPT_ECDHE_Curve25519", ID: 0x23}, AEAD: "AEAD_AES_128_GCM",
		SessionID: ctl.HexBytes{0x23, 1, 2, 3}}})
	path := ctltest.Start(t, ctlserver.Config{Backend: b})
	t.Setenv(ctl.EnvAddress, "") // restored after the test; newSession sets it
	sess := newSession(path, 2, false)

	var r Report
	sess.lookup(cli, &r)
	if r.SessionID != "23010203" || r.Role != "A" || r.TEP != "TCPCRYPT_ECDHE_Curve25519" || r.AEAD != "AEAD_AES_128_GCM" || r.SessErr != "" {
		t.Errorf("tracked connection: %+v", r)
	}
	var u Report
	sess.lookup(srv, &u) // the server's end is not tracked
	if u.SessionID != "" || !strings.Contains(u.SessErr, "not") {
		t.Errorf("untracked connection: %+v", u)
	}
	var none session
	var n Report
	none.lookup(cli, &n)
	if n.SessionID != "" || n.SessErr != "" || n.Role != "" {
		t.Errorf("lookups off: %+v", n)
	}
}

func TestFirstBytePercentiles(t *testing.T) {
	var rs []Report
	for i := 100; i >= 1; i-- {
		rs = append(rs, Report{Received: 1, FirstByteMS: float64(i)})
	}
	// Failed connections and ones that received nothing do not count.
	rs = append(rs, Report{Received: 1, FirstByteMS: 1000, Err: "reset"}, Report{FirstByteMS: 2000})
	if p50, p99 := firstBytePercentiles(rs); p50 != 50 || p99 != 99 {
		t.Errorf("p50 %v p99 %v, want 50 and 99", p50, p99)
	}
	if p50, p99 := firstBytePercentiles(rs[:1]); p50 != 100 || p99 != 100 {
		t.Errorf("one connection: p50 %v p99 %v, want 100 and 100", p50, p99)
	}
	if p50, p99 := firstBytePercentiles(nil); p50 != 0 || p99 != 0 {
		t.Errorf("none: p50 %v p99 %v", p50, p99)
	}
}
