package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/internal/netns"
)

const metricsAddr = "127.0.0.1:9464"

// nsHTTPClient returns an HTTP client whose connections are made inside ns.
func nsHTTPClient(ns *netns.NS) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := ns.Do(func() (err error) {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{Timeout: ioTimeout, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
}

// scrape fetches /metrics and returns its samples as "name{labels}" ->
// value (labels as printed, which the client library sorts by name).
func scrape(t *testing.T, c *http.Client) map[string]float64 {
	t.Helper()
	resp, err := c.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d, %v\n%s", resp.StatusCode, err, b)
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("scrape: bad line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: bad value in %q", line)
		}
		key := line[:i]
		if !strings.Contains(key, "{") {
			key += "{}"
		}
		out[key] = v
	}
	return out
}

const (
	encryptedKey = `tcpcrypt_connections_total{outcome="encrypted",reason="fresh"}`
	handshakeKey = `tcpcrypt_handshakes_total{aead="AEAD_AES_128_GCM",tep="TCPCRYPT_ECDHE_Curve25519"}`
)

// TestIntegrationMetrics: the daemon with --metrics serves /metrics inside
// its namespace; an encrypted loopback transfer moves the encrypted-
// connection and handshake counters (two flows: both ends are local), the
// kernel queue counters of its queue are there, other paths are 404, and
// the endpoint goes away with the daemon.
func TestIntegrationMetrics(t *testing.T) {
	ns := netns.NewForTest(t)
	// -f: no start-up self-test, so the only encrypted connection is ours.
	p := startDaemon(t, ns, t.TempDir(), "-f", "--rule", fmt.Sprintf("%d:both", testPort), "--metrics", metricsAddr)
	hc := nsHTTPClient(ns)

	before := scrape(t, hc)
	for _, k := range []string{encryptedKey, `tcpcrypt_flows{}`, `tcpcrypt_held_packets{}`,
		`tcpcrypt_kernel_queue_dropped_total{queue="7463"}`, `tcpcrypt_kernel_queue_user_dropped_total{queue="7463"}`,
		`tcpcrypt_nfq_enobufs_total{}`, `tcpcrypt_verification_failures_total{}`, "go_goroutines{}"} {
		if _, ok := before[k]; !ok {
			t.Errorf("first scrape lacks %s", k)
		}
	}
	if before[encryptedKey] != 0 || before[handshakeKey] != 0 {
		t.Errorf("counters moved before any connection: encrypted %v, handshakes %v", before[encryptedKey], before[handshakeKey])
	}

	ln := listen(t, ns, fmt.Sprintf("127.0.0.1:%d", testPort))
	client := dial(t, ns, ln.Addr().String())
	server := accept(t, ln)
	if err := exchange(client, server); err != nil {
		t.Fatalf("loopback transfer: %v", err)
	}
	checkSameSession(t, p, p, client, server)

	// During: the connection is open, its two ends tracked and encrypted.
	during := scrape(t, hc)
	if got := during[encryptedKey] - before[encryptedKey]; got != 2 {
		t.Errorf("encrypted connections moved by %v during the transfer, want 2 (both ends)", got)
	}
	if got := during[handshakeKey]; got != 2 {
		t.Errorf("%s = %v during the transfer, want 2", handshakeKey, got)
	}
	if got := during[`tcpcrypt_flows{}`]; got < 2 {
		t.Errorf("tcpcrypt_flows = %v with the connection open, want >= 2", got)
	}
	if during[`tcpcrypt_nfq_packets_total{direction="out"}`] <= before[`tcpcrypt_nfq_packets_total{direction="out"}`] {
		t.Error("tcpcrypt_nfq_packets_total{direction=\"out\"} did not move")
	}
	if err := exchange(client, server); err != nil {
		t.Fatalf("second exchange: %v", err)
	}
	client.Close()
	server.Close()

	// After: counters never go back; the handshake counter stays put.
	after := scrape(t, hc)
	for _, k := range []string{encryptedKey, handshakeKey, `tcpcrypt_nfq_packets_total{direction="in"}`} {
		if after[k] < during[k] {
			t.Errorf("%s went back from %v to %v", k, during[k], after[k])
		}
	}
	if after[handshakeKey] != 2 {
		t.Errorf("%s = %v after the transfer, want 2", handshakeKey, after[handshakeKey])
	}
	if after[`tcpcrypt_verification_failures_total{}`] != 0 {
		t.Errorf("verification failures on a clean transfer: %v", after[`tcpcrypt_verification_failures_total{}`])
	}

	// Only /metrics is served: without --pprof, no profiles.
	for _, path := range []string{"/", "/debug/pprof/cmdline"} {
		if code, _ := httpGet(t, hc, path); code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, code)
		}
	}

	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if resp, err := hc.Get("http://" + metricsAddr + "/metrics"); err == nil {
		resp.Body.Close()
		t.Error("metrics endpoint still answers after the daemon stopped")
	}
	if !strings.Contains(p.log.String(), "metrics server listening") {
		t.Error("no metrics-server log line")
	}
}

// httpGet fetches path from the metrics address and returns the status and
// the body.
func httpGet(t *testing.T, hc *http.Client, path string) (int, string) {
	t.Helper()
	resp, err := hc.Get("http://" + metricsAddr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// TestIntegrationPprof: with --pprof the metrics listener also serves the
// runtime profiles: /debug/pprof/cmdline answers with the daemon's own
// command line, the index lists the profiles, and /metrics still works.
func TestIntegrationPprof(t *testing.T) {
	ns := netns.NewForTest(t)
	p := startDaemon(t, ns, t.TempDir(), "-f", "--metrics", metricsAddr, "--pprof")
	hc := nsHTTPClient(ns)

	code, body := httpGet(t, hc, "/debug/pprof/cmdline")
	if code != http.StatusOK || !strings.Contains(body, "--pprof") || !strings.Contains(body, metricsAddr) {
		t.Errorf("GET /debug/pprof/cmdline = %d %q, want 200 and the daemon's arguments", code, body)
	}
	if code, body := httpGet(t, hc, "/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("GET /debug/pprof/ = %d, want 200 and a profile index:\n%s", code, body)
	}
	if _, ok := scrape(t, hc)["go_goroutines{}"]; !ok {
		t.Error("/metrics lacks go_goroutines with --pprof")
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}
