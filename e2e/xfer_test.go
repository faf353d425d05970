package e2e

import (
	"bufio"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// xferReport is a JSON line of the xfer program (e2e/cmd/xfer).
type xferReport struct {
	Event      string         `json:"event"`
	Side       string         `json:"side"`
	Addr       string         `json:"addr"`
	ID         uint32         `json:"id"`
	Local      string         `json:"local"`
	Remote     string         `json:"remote"`
	Sent       uint64         `json:"sent"`
	Received   uint64         `json:"received"`
	SentSHA256 string         `json:"sent_sha256"`
	RecvSHA256 string         `json:"recv_sha256"`
	Verified   bool           `json:"verified"`
	SessionID  string         `json:"session_id"`
	Role       string         `json:"role"`
	TEP        string         `json:"tep"`
	AEAD       string         `json:"aead"`
	SessErr    string         `json:"sess_err"`
	Phase      string         `json:"phase"`
	Err        string         `json:"err"`
	Errno      string         `json:"errno"`
	Seconds    float64        `json:"seconds"`
	Conns      int            `json:"conns"`
	OK         int            `json:"ok"`
	Failed     int            `json:"failed"`
	Encrypted  int            `json:"encrypted"`
	Bytes      uint64         `json:"bytes"`
	MbitPerS   float64        `json:"mbit_per_s"`
	ConnsPerS  float64        `json:"conns_per_s"`
	Errors     map[string]int `json:"errors"`
}

func (r xferReport) local() netip.AddrPort  { return netip.MustParseAddrPort(r.Local) }
func (r xferReport) remote() netip.AddrPort { return netip.MustParseAddrPort(r.Remote) }

// reports parses a process's JSON lines.
func (p *proc) reports(t testing.TB) []xferReport {
	t.Helper()
	var out []xferReport
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] != '{' {
			continue
		}
		var r xferReport
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s: bad report line %q: %v", p.name, line, err)
		}
		out = append(out, r)
	}
	return out
}

// events returns the reports of one kind.
func (p *proc) events(t testing.TB, event string) []xferReport {
	var out []xferReport
	for _, r := range p.reports(t) {
		if r.Event == event {
			out = append(out, r)
		}
	}
	return out
}

// waitEvent waits until the process has printed n reports of a kind.
func (p *proc) waitEvent(t testing.TB, d time.Duration, event string, n int) []xferReport {
	t.Helper()
	if !p.waitFor(d, func(stdout, _ string) bool { return strings.Count(stdout, `"event":"`+event+`"`) >= n }) {
		t.Fatalf("%s: no %d %q lines after %v (running: %v)\nstdout:\n%s\nstderr:\n%s", p.name, n, event, d,
			p.running(), tail(p.out.String(), 20), tail(p.errb.String(), 20))
	}
	return p.events(t, event)
}

// defaultXferTimeout bounds each xfer client connection unless a test says
// otherwise; a later -timeout argument overrides it.
const defaultXferTimeout = 60 * time.Second

// serve starts `xfer serve` on the host, listening on listen, looking session
// ids up through the host's daemon, and waits until it listens.
func (h *host) serve(t testing.TB, listen string, extra ...string) *proc {
	t.Helper()
	args := append([]string{bin(t, "xfer"), "serve", "-l", listen, "-ctl", h.sock, "-timeout", "90s"}, extra...)
	p := startProc(t, "xfer-serve@"+h.name, false, h.argv(args...)...)
	p.waitEvent(t, 10*time.Second, "listening", 1)
	return p
}

// send starts `xfer send -c addr` on the host with extra arguments. With
// hold, the client keeps its connections open until closeStdin.
func (h *host) send(t testing.TB, addr string, hold bool, extra ...string) *proc {
	t.Helper()
	args := append([]string{bin(t, "xfer"), "send", "-c", addr, "-ctl", h.sock, "-timeout", defaultXferTimeout.String()}, extra...)
	if hold {
		args = append(args, "-hold")
	}
	return startProc(t, "xfer-send@"+h.name, hold, h.argv(args...)...)
}

// sendWait runs `xfer send` to completion and returns its connection
// reports and summary.
func (h *host) sendWait(t testing.TB, addr string, d time.Duration, extra ...string) ([]xferReport, xferReport) {
	t.Helper()
	p := h.send(t, addr, false, extra...)
	p.wait(t, d)
	sums := p.events(t, "summary")
	if len(sums) != 1 {
		t.Fatalf("xfer send on %s: %d summaries\nstdout:\n%s\nstderr:\n%s", h.name, len(sums), tail(p.out.String(), 20), tail(p.errb.String(), 20))
	}
	return p.events(t, "conn"), sums[0]
}
