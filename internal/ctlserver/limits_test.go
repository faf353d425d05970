package ctlserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

// Tests of the admission limits (per-uid bound, root reserve) and of the
// first-request and idle timeouts. The uid tests run clients in copies of
// this test binary started with other uids (TestHelperClients), since
// SO_PEERCRED reports the credentials of the process that connected.

// TestHelperClients is a client process for the uid tests, started by
// startAs; it does nothing in a normal run. CTL_TEST_HELPER says what to do:
//
//   - hold-silent: open CTL_TEST_N connections, send nothing, print READY,
//     then wait (up to 30 s, or until standard input closes) until the
//     server has closed each one and print "CLOSED <count> <ms>", ms being
//     the time from READY to the last close by the server.
//   - hold-served: open CTL_TEST_N clients, each answered a version request,
//     print READY, then keep them until standard input closes.
//   - query: one status request; print "RESULT ok" or "RESULT <error>".
func TestHelperClients(t *testing.T) {
	mode, addr := os.Getenv("CTL_TEST_HELPER"), os.Getenv("CTL_TEST_ADDR")
	if mode == "" {
		t.Skip("helper process for the uid tests")
	}
	n, _ := strconv.Atoi(os.Getenv("CTL_TEST_N"))
	switch mode {
	case "hold-silent":
		conns := make([]net.Conn, 0, n)
		for range n {
			c, err := net.Dial("unix", addr)
			if err != nil {
				t.Fatalf("dial %s: %v", addr, err)
			}
			defer c.Close()
			conns = append(conns, c)
		}
		fmt.Println("READY")
		start := time.Now()
		var mu sync.Mutex
		var closed int
		var last time.Duration
		go func() { // a closed standard input ends the wait
			io.Copy(io.Discard, os.Stdin)
			for _, c := range conns {
				c.Close()
			}
		}()
		var wg sync.WaitGroup
		for _, c := range conns {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			wg.Go(func() {
				_, err := io.Copy(io.Discard, c) // the busy reply, if any, then EOF
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					closed++
					last = max(last, time.Since(start))
				}
			})
		}
		wg.Wait()
		fmt.Printf("CLOSED %d %d\n", closed, last.Milliseconds())
	case "hold-served":
		for range n {
			c, err := ctl.Dial(context.Background(), addr)
			if err != nil {
				t.Fatalf("dial %s: %v", addr, err)
			}
			defer c.Close()
			if _, err := c.Version(context.Background()); err != nil {
				t.Fatalf("version as uid %d: %v", os.Getuid(), err)
			}
		}
		fmt.Println("READY")
		io.Copy(io.Discard, os.Stdin)
	case "query":
		c, err := ctl.Dial(context.Background(), addr)
		if err == nil {
			defer c.Close()
			_, err = c.Status(context.Background())
		}
		if err != nil {
			fmt.Printf("RESULT %v\n", err)
			return
		}
		fmt.Println("RESULT ok")
	default:
		t.Fatalf("unknown helper mode %q", mode)
	}
}

// uidDir returns a directory that other uids can enter, holding a copy of
// this test binary they can run. It needs root.
func uidDir(t *testing.T) (dir, bin string) {
	t.Helper()
	testenv.RequireRoot(t, "clients with other uids")
	dir = shortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "ctl.test")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, bin
}

// helperProc is a running TestHelperClients process.
type helperProc struct {
	uid   uint32
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // its standard output, closed at EOF
}

// startAs starts TestHelperClients in mode as uid, against addr.
func startAs(t *testing.T, bin string, uid uint32, mode, addr string, n int) *helperProc {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^TestHelperClients$")
	cmd.Env = append(os.Environ(), "CTL_TEST_HELPER="+mode, "CTL_TEST_ADDR="+addr,
		"CTL_TEST_N="+strconv.Itoa(n), "HOME=/")
	cmd.Dir = "/"
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper as uid %d: %v", uid, err)
	}
	h := &helperProc{uid: uid, cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		defer close(h.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() {
			for range h.lines { // drain, so that the process can exit
			}
			cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("helper uid %d %s did not exit", uid, mode)
		}
	})
	return h
}

// expect returns the first output line starting with prefix, failing t if
// none comes within d.
func (h *helperProc) expect(t *testing.T, prefix string, d time.Duration) string {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case line, ok := <-h.lines:
			if !ok {
				t.Fatalf("helper uid %d exited without printing %q", h.uid, prefix)
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-timeout:
			t.Fatalf("helper uid %d printed no %q within %v", h.uid, prefix, d)
		}
	}
}

// queryAs runs one status request as uid and returns its outcome: "ok" or
// the error text.
func queryAs(t *testing.T, bin string, uid uint32, addr string) string {
	t.Helper()
	h := startAs(t, bin, uid, "query", addr, 1)
	return strings.TrimPrefix(h.expect(t, "RESULT ", 20*time.Second), "RESULT ")
}

// waitClients waits until srv serves total clients, inClass of them in class.
func waitClients(t *testing.T, srv *ctlserver.Server, class string, total, inClass int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		gotTotal, gotClass := srv.Clients(class)
		if gotTotal == total && gotClass == inClass {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server serves %d clients, %d of %s; want %d and %d", gotTotal, gotClass, class, total, inClass)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitRefusing waits until srv is telling no client that it is busy.
func waitRefusing(t *testing.T, srv *ctlserver.Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Refusing() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("server still refusing %d clients", srv.Refusing())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIdleFloodFromOneUID: 40 silent connections from uid 65534 take only
// that uid's share of the slots; root and another uid are still answered at
// once, and uid 65534 itself is told it is over its limit.
func TestIdleFloodFromOneUID(t *testing.T) {
	dir, bin := uidDir(t)
	path := filepath.Join(dir, "ctl")
	// A long first-request timeout: this test is about the slots, not the
	// timeout (TestIdleFloodClosed), so the flood must stay connected.
	r := serve(t, ctlserver.Config{Backend: sampleBackend(0), FirstRequestTimeout: time.Minute}, path)

	flood := startAs(t, bin, 65534, "hold-silent", path, 40)
	flood.expect(t, "READY", 20*time.Second)
	waitClients(t, r.srv, "uid 65534", ctlserver.DefaultMaxClientsPerUID, ctlserver.DefaultMaxClientsPerUID)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := dial(t, path).Status(ctx); err != nil {
		t.Errorf("root during the flood: %v", err)
	}
	if got := queryAs(t, bin, 65533, path); got != "ok" {
		t.Errorf("uid 65533 during the flood: %s", got)
	}
	// The flood's refused connections are each given a second to send a
	// request before their busy reply; a client refused while all refusal
	// slots are taken is closed without a reply. Let them finish, so that
	// this client is told why.
	waitRefusing(t, r.srv)
	if got := queryAs(t, bin, 65534, path); !strings.Contains(got, "too many control clients") || !strings.Contains(got, "uid 65534") {
		t.Errorf("uid 65534 over its limit: %s, want busy naming uid 65534", got)
	}
}

// TestIdleFloodClosed: with the default timeouts, the silent connections of
// a flood are all closed within the first-request timeout (plus the second a
// refused client is given to send its request), and the slots come back.
func TestIdleFloodClosed(t *testing.T) {
	dir, bin := uidDir(t)
	path := filepath.Join(dir, "ctl")
	r := serve(t, ctlserver.Config{Backend: sampleBackend(0)}, path)

	const n = 40
	flood := startAs(t, bin, 65534, "hold-silent", path, n)
	flood.expect(t, "READY", 20*time.Second)
	waitClients(t, r.srv, "uid 65534", ctlserver.DefaultMaxClientsPerUID, ctlserver.DefaultMaxClientsPerUID)
	if got := queryAs(t, bin, 65533, path); got != "ok" {
		t.Errorf("uid 65533 during the flood: %s", got)
	}
	var closed, ms int
	line := flood.expect(t, "CLOSED ", 40*time.Second)
	if _, err := fmt.Sscanf(line, "CLOSED %d %d", &closed, &ms); err != nil {
		t.Fatalf("helper said %q: %v", line, err)
	}
	limit := ctlserver.DefaultFirstRequestTimeout + 2*time.Second // + slack for a loaded machine
	if closed != n || time.Duration(ms)*time.Millisecond > limit {
		t.Errorf("server closed %d of %d silent connections, the last after %d ms; want all within %v", closed, n, ms, limit)
	}
	waitClients(t, r.srv, "uid 65534", 0, 0)
}

// TestRootReserve: once MaxClients-RootReserve clients are served, only root
// on the unix socket gets the remaining slots; a client over MaxClients is
// refused even if it is root.
func TestRootReserve(t *testing.T) {
	dir, bin := uidDir(t)
	path := filepath.Join(dir, "ctl")
	r := serve(t, ctlserver.Config{Backend: sampleBackend(0), MaxClients: 6, MaxClientsPerUID: 2,
		RootReserve: 2, FirstRequestTimeout: time.Minute}, path)

	for _, uid := range []uint32{65534, 65533} {
		startAs(t, bin, uid, "hold-served", path, 2).expect(t, "READY", 20*time.Second)
	}
	waitClients(t, r.srv, "uid 65533", 4, 2)
	if got := queryAs(t, bin, 65532, path); !strings.Contains(got, "too many control clients") || !strings.Contains(got, "reserved for root") {
		t.Errorf("uid 65532 with only reserved slots left: %s, want busy (reserved for root)", got)
	}
	ctx := context.Background()
	for i := range 2 {
		if _, err := dial(t, path).Version(ctx); err != nil {
			t.Fatalf("root client %d in the reserve: %v", i, err)
		}
	}
	waitClients(t, r.srv, "uid 0", 6, 2)
	if _, err := dial(t, path).Version(ctx); !errors.Is(err, ctl.ErrBusy) {
		t.Errorf("root client over MaxClients = %v, want ErrBusy", err)
	}
}

// TestTCPClientsShareOneClass: all TCP clients share one per-uid budget (the
// server does not look up their uid), and a full TCP class does not stop
// unix socket clients.
func TestTCPClientsShareOneClass(t *testing.T) {
	path := filepath.Join(shortDir(t), "ctl")
	r := serve(t, ctlserver.Config{Backend: sampleBackend(0), MaxClientsPerUID: 2}, path, "127.0.0.1:0")
	var tcpAddr string
	for _, a := range r.srv.Addrs() {
		if a.Network() == "tcp" {
			tcpAddr = a.String()
		}
	}
	ctx := context.Background()
	for i := range 2 {
		if _, err := dial(t, tcpAddr).Version(ctx); err != nil {
			t.Fatalf("TCP client %d: %v", i, err)
		}
	}
	_, err := dial(t, tcpAddr).Version(ctx)
	if !errors.Is(err, ctl.ErrBusy) || !strings.Contains(err.Error(), "tcp") {
		t.Errorf("third TCP client = %v, want busy naming tcp", err)
	}
	if _, err := dial(t, path).Version(ctx); err != nil {
		t.Errorf("unix client with the TCP class full: %v", err)
	}
}

// TestFirstRequestTimeout: a client that sends nothing, or only blank lines,
// is closed after FirstRequestTimeout although IdleTimeout is long.
func TestFirstRequestTimeout(t *testing.T) {
	path := filepath.Join(shortDir(t), "ctl")
	serve(t, ctlserver.Config{Backend: sampleBackend(0), FirstRequestTimeout: 200 * time.Millisecond,
		IdleTimeout: time.Minute}, path)
	for _, trickle := range []bool{false, true} {
		raw, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		stop := make(chan struct{})
		if trickle {
			go func() {
				tick := time.NewTicker(50 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if _, err := raw.Write([]byte("\n")); err != nil {
							return
						}
					}
				}
			}()
		}
		raw.SetReadDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		n, err := raw.Read(make([]byte, 10))
		close(stop)
		// A server that closes with unread blank lines in its receive
		// buffer makes the kernel reset the connection: both mean closed.
		if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("trickle=%v: read %d, %v; want EOF or a reset", trickle, n, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("trickle=%v: silent client dropped after %v, want about 200ms", trickle, d)
		}
	}
}

// TestSlowNetstatReaderNotCut: a netstat reply larger than the socket
// buffers, read slowly, is not cut by the first-request or idle timeout.
func TestSlowNetstatReaderNotCut(t *testing.T) {
	path := filepath.Join(shortDir(t), "ctl")
	const n = 5000
	serve(t, ctlserver.Config{Backend: sampleBackend(n), FirstRequestTimeout: 100 * time.Millisecond,
		IdleTimeout: 100 * time.Millisecond}, path)
	raw, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Write([]byte(`{"v":1,"id":7,"op":"netstat"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	raw.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(raw)
	var items int
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("after %d items: %v", items, err)
		}
		if items%1000 == 0 {
			time.Sleep(150 * time.Millisecond) // longer than both timeouts
		}
		var m struct {
			Item   json.RawMessage `json:"item"`
			OK     bool            `json:"ok"`
			Result struct{ Count int }
		}
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("line %d: %v", items, err)
		}
		if m.Item != nil {
			items++
			continue
		}
		if !m.OK || m.Result.Count != n+1 || items != n+1 {
			t.Fatalf("final line %s after %d items, want ok with count %d", line, items, n+1)
		}
		return
	}
}
