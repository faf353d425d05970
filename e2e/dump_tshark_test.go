package e2e

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

// TestE2ETcpcryptdumpTshark: curl fetches a page from an HTTP server
// through two daemons while tcpdump captures; tshark finds no HTTP request
// in the capture (ciphertext), and finds curl's request in what
// tcpcryptdump -w writes.
func TestE2ETcpcryptdumpTshark(t *testing.T) {
	tcpdump := testenv.LookPath(t, "tcpdump", "apt-get install tcpdump")
	tshark := testenv.LookPath(t, "tshark", "apt-get install tshark")
	curl := testenv.LookPath(t, "curl", "apt-get install curl")
	python := testenv.LookPath(t, "python3", "apt-get install python3")
	a, b := pair(t)
	keysA := filepath.Join(a.dir, "keylog")
	a.startDaemon(t, "--rule", "5001:both", "--keylog", keysA)
	b.startDaemon(t, "--rule", "5001:both")
	web := t.TempDir()
	startProc(t, "http@"+b.name, false, b.argv(python, "-m", "http.server", "--bind", b.v4.String(), "--directory", web, "5001")...)
	capFile := filepath.Join(t.TempDir(), "cap.pcap")
	td := startProc(t, "tcpdump@"+a.name, false, a.argv(tcpdump, "-i", "eth0", "-s", "0", "-U", "-w", capFile, "tcp", "port", "5001")...)
	if !td.waitFor(10*time.Second, func(_, stderr string) bool { return strings.Contains(stderr, "listening on") }) {
		t.Fatalf("tcpdump did not start:\n%s", td.errb.String())
	}
	// The server may still be starting: retry refused connections.
	url := "http://" + ap(b.v4, port) + "/tcpcryptdump-probe"
	if out, err := a.run(curl, "-s", "-o", "/dev/null", "--retry", "30", "--retry-delay", "1", "--retry-connrefused", url); err != nil {
		t.Fatalf("curl %s: %v\n%s", url, err, out)
	}
	time.Sleep(time.Second)
	td.signal(syscall.SIGINT)
	td.wait(t, 10*time.Second)

	plain := filepath.Join(t.TempDir(), "plain.pcap")
	p := startProc(t, "tcpcryptdump", false, bin(t, "tcpcryptdump"), "-r", capFile, "-k", keysA, "-w", plain)
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("tcpcryptdump exited %d:\n%s%s", code, p.out.String(), p.errb.String())
	}
	uris := func(file string) string {
		out, err := runCmd(60*time.Second, tshark, "-r", file, "-d", "tcp.port==5001,http", "-Y", "http.request", "-T", "fields", "-e", "http.request.uri")
		if err != nil {
			t.Fatalf("tshark -r %s: %v\n%s", file, err, out)
		}
		return out
	}
	if got := uris(capFile); strings.Contains(got, "tcpcryptdump-probe") {
		t.Errorf("tshark found the request in the encrypted capture: %q", got)
	}
	if got := uris(plain); !strings.Contains(got, "/tcpcryptdump-probe") {
		t.Errorf("tshark found no request for /tcpcryptdump-probe in the rewritten capture: %q\ntcpcryptdump:\n%s", got, p.out.String())
	}
}
