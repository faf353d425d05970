// Command wiretap captures the TCP segments on one interface (AF_PACKET, in
// the network namespace it runs in) until SIGINT, SIGTERM or -d, then prints
// how much payload it saw, whether the test streams' plaintext marker
// appeared in it, and the first payload bytes of the first few segments in
// hex, as evidence of what travelled on the wire. scripts/demo.sh runs it as
// `ip netns exec NS wiretap -i eth0 -port 5001`.
//
// Exit status: 0 after a capture, 1 when the capture could not start, 2 for
// usage errors.
package main

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tcpcryptd/tcpcrypt/e2e/internal/payload"
	"github.com/tcpcryptd/tcpcrypt/e2e/internal/wiretap"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wiretap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	iface := fs.String("i", "", "interface to capture on")
	port := fs.Uint("port", 0, "only segments from or to this TCP port (0: all)")
	samples := fs.Int("samples", 4, "payload segments to show")
	sampleLen := fs.Int("len", 32, "bytes to show of each")
	dur := fs.Duration("d", 0, "stop after this long (0: at SIGINT/SIGTERM)")
	asJSON := fs.Bool("json", false, "print the statistics as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *iface == "" || *port > 65535 || fs.NArg() > 0 || *samples < 0 || *sampleLen < 1 {
		fmt.Fprintln(stderr, "usage: wiretap -i IFACE [-port P] [-samples N] [-len L] [-d DURATION] [-json]")
		return 2
	}
	// Signals are caught before the capture starts, so that a SIGTERM sent
	// right after the "capturing" line always ends in a summary.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	tap, err := wiretap.Open(*iface, wiretap.Filter{
		Port: uint16(*port), Marker: []byte(payload.Marker), Samples: *samples, SampleLen: *sampleLen,
	})
	if err != nil {
		fmt.Fprintf(stderr, "wiretap: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "wiretap: capturing on %s\n", *iface)
	var timeout <-chan time.Time
	if *dur > 0 {
		timeout = time.After(*dur)
	}
	select {
	case <-sig:
	case <-timeout:
	}
	st, err := tap.Stop()
	if err != nil {
		fmt.Fprintf(stderr, "wiretap: %v\n", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
		return 0
	}
	printText(stdout, st)
	return 0
}

func printText(w io.Writer, st wiretap.Stats) {
	fmt.Fprintf(w, "%s\n", st)
	for _, s := range st.Samples {
		fmt.Fprintf(w, "  %-22s -> %-22s %5d bytes: %s  |%s|\n", s.Src, s.Dst, s.Len,
			hex.EncodeToString(s.Head), printableText(s.Head))
	}
	if st.FirstHit != nil {
		fmt.Fprintf(w, "  plaintext marker %q seen, first in %s -> %s\n", payload.Marker, st.FirstHit.Src, st.FirstHit.Dst)
	} else {
		fmt.Fprintf(w, "  plaintext marker %q never seen\n", payload.Marker)
	}
}

// printableText shows b with non-printable bytes as dots.
func printableText(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			sb.WriteByte(c)
		} else {
			sb.WriteByte('.')
		}
	}
	return sb.String()
}
