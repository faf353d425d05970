package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

// dumpReport is the part of a tcpcryptdump --json line the test reads.
type dumpReport struct {
	Client     string   `json:"client"`
	Server     string   `json:"server"`
	Encrypted  bool     `json:"encrypted"`
	SessionID  string   `json:"session_id"`
	Resumed    bool     `json:"resumed"`
	BytesAToB  uint64   `json:"bytes_a_to_b"`
	BytesBToA  uint64   `json:"bytes_b_to_a"`
	SHA256AToB string   `json:"sha256_a_to_b"`
	SHA256BToA string   `json:"sha256_b_to_a"`
	Violations []string `json:"violations"`
}

// TestE2ETcpcryptdump captures two connections between two daemons with
// tcpdump (the second resumes the first's session) and checks that
// tcpcryptdump, given the client's key log, verifies both: the session ids
// are those the client saw, and the SHA-256 of each direction's plaintext
// is that of the bytes xfer sent and received.
func TestE2ETcpcryptdump(t *testing.T) {
	tcpdump := testenv.LookPath(t, "tcpdump", "apt-get install tcpdump")
	a, b := pair(t)
	keysA := filepath.Join(a.dir, "keylog")
	a.startDaemon(t, "--rule", "5001:both", "--keylog", keysA)
	b.startDaemon(t, "--rule", "5001:both", "--keylog", filepath.Join(b.dir, "keylog"))
	// Two captures: Ethernet with microsecond timestamps on eth0, and Linux
	// cooked (SLL) with nanosecond timestamps on "any".
	tmp := t.TempDir()
	caps := map[string][]string{
		filepath.Join(tmp, "eth0.pcap"): {"-i", "eth0"},
		filepath.Join(tmp, "any.pcap"):  {"-i", "any", "--time-stamp-precision=nano"},
	}
	var tds []*proc
	for file, how := range caps {
		args := append(append([]string{tcpdump}, how...), "-s", "0", "-U", "-w", file, "tcp", "port", "5001")
		td := startProc(t, "tcpdump@"+a.name, false, a.argv(args...)...)
		if !td.waitFor(10*time.Second, func(_, stderr string) bool { return strings.Contains(stderr, "listening on") }) {
			t.Fatalf("tcpdump %v did not start:\n%s", how, td.errb.String())
		}
		tds = append(tds, td)
	}
	srv := b.serve(t, ap(b.v4, port))
	var runs []heldRun
	for range 2 {
		r := runHeld(t, a, b, srv, ap(b.v4, port), "2M")
		checkIntact(t, r, 2<<20)
		checkEncrypted(t, r)
		runs = append(runs, r)
	}
	// Let the closing segments reach the capture file before tcpdump stops.
	time.Sleep(time.Second)
	for _, td := range tds {
		td.signal(syscall.SIGINT)
		td.wait(t, 10*time.Second)
	}
	for file := range caps {
		t.Run(filepath.Base(file), func(t *testing.T) { checkDump(t, file, keysA, runs) })
	}
}

// checkDump runs tcpcryptdump on a capture of runs and checks its report
// and dump files against what xfer saw.
func checkDump(t *testing.T, capFile, keysA string, runs []heldRun) {

	dump := t.TempDir()
	p := startProc(t, "tcpcryptdump", false, bin(t, "tcpcryptdump"), "-r", capFile, "-k", keysA, "--json", "--dump", dump)
	code := p.wait(t, 60*time.Second)
	var reps []dumpReport
	for _, l := range strings.Split(strings.TrimSpace(p.out.String()), "\n") {
		var r dumpReport
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("tcpcryptdump printed %q: %v\nstderr: %s", l, err, p.errb.String())
		}
		reps = append(reps, r)
	}
	if code != 0 {
		t.Errorf("tcpcryptdump exited %d: %+v\n%s", code, reps, p.errb.String())
	}
	if len(reps) != len(runs) {
		t.Fatalf("tcpcryptdump found %d connections, want %d: %+v", len(reps), len(runs), reps)
	}
	for i, r := range runs {
		d := reps[i]
		if d.Client != r.cli.Local || !d.Encrypted || len(d.Violations) > 0 {
			t.Errorf("connection %d (%s): %+v", i, r.cli.Local, d)
		}
		if d.SessionID != r.cli.SessionID {
			t.Errorf("connection %d: session id %s, the client saw %s", i, d.SessionID, r.cli.SessionID)
		}
		// xfer's streams: A sends a 28-byte header ("XFR1"...) then its
		// data; B sends its data then one sync byte 'K' (e2e/cmd/xfer).
		up := readFile(t, filepath.Join(dump, fmt.Sprintf("conn%d.a_to_b", i+1)))
		down := readFile(t, filepath.Join(dump, fmt.Sprintf("conn%d.b_to_a", i+1)))
		if hexSum(up) != d.SHA256AToB || hexSum(down) != d.SHA256BToA || uint64(len(up)) != d.BytesAToB || uint64(len(down)) != d.BytesBToA {
			t.Errorf("connection %d: dump files disagree with the report", i)
		}
		if len(up) < 28 || string(up[:4]) != "XFR1" || hexSum(up[28:]) != r.cli.SentSHA256 {
			t.Errorf("connection %d: A->B plaintext (%d bytes) is not the header and the %d bytes xfer sent", i, len(up), r.cli.Sent)
		}
		if len(down) < 1 || down[len(down)-1] != 'K' || hexSum(down[:len(down)-1]) != r.cli.RecvSHA256 {
			t.Errorf("connection %d: B->A plaintext (%d bytes) is not the %d bytes xfer received and the sync byte", i, len(down), r.cli.Received)
		}
		if d.Resumed != (i == 1) {
			t.Errorf("connection %d: resumed %v", i, d.Resumed)
		}
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
