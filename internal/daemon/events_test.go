package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/internal/metrics"
)

func TestEventLoggerReasonsAndRateLimit(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	now := time.Unix(1_700_000_000, 0)
	l := newEventLogger(log, func() time.Time { return now })
	ev := engine.Event{Kind: engine.EventFallback, Reason: "no-peer-eno", Mode: engine.Opportunistic,
		Local: netip.MustParseAddrPort("10.0.0.1:443"), Remote: netip.MustParseAddrPort("10.0.0.2:5555")}

	l.Event(ev)
	if got := buf.String(); !strings.Contains(got, "level=DEBUG") || !strings.Contains(got, "fell back") || !strings.Contains(got, "reason=no-peer-eno") ||
		!strings.Contains(got, "remote=10.0.0.2:5555") {
		t.Fatalf("fallback line: %q", got)
	}
	buf.Reset()
	l.Event(engine.Event{Kind: engine.EventAbort, Reason: "auth", Err: errors.New("frame failed")})
	if got := buf.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "reason=auth") ||
		!strings.Contains(got, "frame failed") {
		t.Fatalf("abort line: %q", got)
	}

	// A flood: only the burst is written, the rest is counted and reported
	// with the first line once tokens come back.
	buf.Reset()
	for range 1000 {
		l.Event(ev)
	}
	if n := strings.Count(buf.String(), "\n"); n != connLogBurst-2 {
		t.Fatalf("%d lines written during the flood, want %d", n, connLogBurst-2)
	}
	buf.Reset()
	now = now.Add(time.Second)
	l.Event(ev)
	if got := buf.String(); !strings.Contains(got, "suppressed_before=") {
		t.Fatalf("no suppressed count after the flood: %q", got)
	}

}

// TestEventLoggerInfoLevel: at info (-v) and above, only aborts are logged;
// fallbacks and encryptions are per-connection debug lines, and a skipped
// fallback takes no rate-limit token from the aborts.
func TestEventLoggerInfoLevel(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	l := newEventLogger(log, time.Now)
	for range 2 * connLogBurst {
		l.Event(engine.Event{Kind: engine.EventFallback, Reason: "no-peer-eno"})
	}
	l.Event(engine.Event{Kind: engine.EventEncrypted, SessionID: []byte{0x23, 1}})
	if buf.Len() != 0 {
		t.Fatalf("fallback or encryption logged at info: %q", buf.String())
	}
	l.Event(engine.Event{Kind: engine.EventAbort, Reason: "auth"})
	if got := buf.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "level=WARN") || strings.Contains(got, "suppressed") {
		t.Fatalf("abort after skipped fallbacks: %q", got)
	}
}

// Encrypted events are counted by TEP (IANA name, resume bit cleared) and
// AEAD; other events are not.
func TestEventLoggerCountsHandshakes(t *testing.T) {
	l := newEventLogger(slog.New(slog.DiscardHandler), time.Now)
	l.handshakes = new(metrics.Handshakes)
	l.Event(engine.Event{Kind: engine.EventEncrypted, TEP: crypto.TEPX25519, AEAD: crypto.AES128GCM})
	l.Event(engine.Event{Kind: engine.EventEncrypted, TEP: crypto.TEPX25519 | crypto.TEPResumeBit,
		AEAD: crypto.AES128GCM, Resumed: true})
	l.Event(engine.Event{Kind: engine.EventFallback, Reason: "no_peer_eno"})
	var got []string
	l.handshakes.Each(func(tep, aead string, n uint64) {
		got = append(got, fmt.Sprintf("%s/%s=%d", tep, aead, n))
	})
	if want := "TCPCRYPT_ECDHE_Curve25519/AEAD_AES_128_GCM=2"; len(got) != 1 || got[0] != want {
		t.Errorf("handshakes %v, want [%s]", got, want)
	}
}
