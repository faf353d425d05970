package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readyAddr is where the readiness test's daemon serves metrics and
// /readyz, inside its own namespace.
const readyAddr = "127.0.0.1:9464"

// httpIn returns an HTTP client whose connections are made inside h's
// namespace.
func (h *host) httpIn() *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := h.ns.Do(func() (err error) {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
}

// get fetches path from readyAddr; err is set when nothing answered.
func get(c *http.Client, path string) (int, string, error) {
	resp, err := c.Get("http://" + readyAddr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitStatus polls path until it answers want, and returns the last answer.
func waitStatus(t *testing.T, c *http.Client, path string, want int, d time.Duration) (int, string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		code, body, err := get(c, path)
		if err == nil && code == want {
			return code, body
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("GET %s: %v after %v", path, err, d)
			}
			return code, body
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2EReadyz: the real daemon's /readyz answers 200 once it is ready; it
// is a live check, not a latch: with the daemon's nftables table deleted
// behind its back it answers 503 and says why (and tcpcrypt_ready drops to
// 0), and after SIGHUP re-applies the rules it is 200 again. The metrics
// carry the build and the rule count; after SIGTERM nothing answers.
func TestE2EReadyz(t *testing.T) {
	h := newHost(t, "ready")
	h.startDaemon(t, "--rule", "5001:both", "--rule", "5002", "--metrics", readyAddr)
	c := h.httpIn()

	if code, body := waitStatus(t, c, "/readyz", http.StatusOK, 5*time.Second); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("GET /readyz after the daemon said ready: %d %q, want 200 \"ready\"", code, body)
	}
	if code, body, err := get(c, "/livez"); err != nil || code != http.StatusOK {
		t.Errorf("GET /livez: %d %q %v, want 200", code, body, err)
	}
	_, metrics, err := get(c, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\ntcpcrypt_ready 1\n", "\ntcpcrypt_rules{origin=\"config\"} 2\n",
		"\ntcpcrypt_rules{origin=\"state\"} 0\n", "\ntcpcrypt_build_info{goversion=\"go"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}

	// Someone deletes the table: no port is covered any more.
	h.must(t, "nft", "delete", "table", "inet", "tcpcrypt")
	code, body := waitStatus(t, c, "/readyz", http.StatusServiceUnavailable, 5*time.Second)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "table inet tcpcrypt is not in the kernel") ||
		strings.Count(body, "\n") != 1 {
		t.Errorf("GET /readyz without the table: %d %q, want 503 and one line naming the table", code, body)
	}
	if _, m, err := get(c, "/metrics"); err != nil || !strings.Contains(m, "\ntcpcrypt_ready 0\n") {
		t.Errorf("tcpcrypt_ready is not 0 without the table (%v)", err)
	}

	// SIGHUP applies the rules again.
	h.daemon.signal(syscall.SIGHUP)
	if code, body := waitStatus(t, c, "/readyz", http.StatusOK, 5*time.Second); code != http.StatusOK {
		t.Errorf("GET /readyz after SIGHUP re-applied the rules: %d %q, want 200", code, body)
	}
	if !h.hasTable(t, "tcpcrypt") {
		t.Error("no table after SIGHUP")
	}

	h.stopDaemon(t)
	if _, _, err := get(c, "/readyz"); err == nil {
		t.Error("/readyz still answers after the daemon stopped")
	}
}
