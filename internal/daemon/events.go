package daemon

import (
	"context"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/internal/metrics"
)

// connLogBurst and connLogPerSecond bound how many per-connection lines
// (fallbacks, aborts) the daemon writes: a flood of failing handshakes must
// not become a flood of log lines (DESIGN.md invariant 10). Lines beyond the
// bound are counted and the count is reported with the next line written.
const (
	connLogBurst     = 50
	connLogPerSecond = 10
)

// eventLogger turns engine events into log lines, rate-limited. It is called
// from every worker's goroutine.
type eventLogger struct {
	log *slog.Logger
	now func() time.Time
	// handshakes counts encrypted connections by TEP and AEAD (nil: not
	// counted).
	handshakes *metrics.Handshakes

	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed uint64
}

func newEventLogger(log *slog.Logger, now func() time.Time) *eventLogger {
	return &eventLogger{log: log, now: now, tokens: connLogBurst}
}

// allow takes a token; it returns false (and counts the line) when none is
// left, and otherwise how many lines were suppressed since the last one.
func (l *eventLogger) allow() (bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.last.IsZero() {
		l.tokens = min(connLogBurst, l.tokens+now.Sub(l.last).Seconds()*connLogPerSecond)
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	n := l.suppressed
	l.suppressed = 0
	return true, n
}

// Event logs one engine event: aborts at warn, fallbacks and encryptions at
// debug (a fallback is the normal outcome with a peer without tcpcrypt, and
// a busy port would log one line per connection at info), each with the
// connection's endpoints and, for aborts and fallbacks, the reason. It also
// counts encryptions by TEP and AEAD for the metrics.
func (l *eventLogger) Event(ev engine.Event) {
	if ev.Kind == engine.EventEncrypted {
		l.handshakes.Inc(TEPName(ev.TEP), ev.AEAD.String())
		if l.log.Enabled(context.Background(), slog.LevelDebug) {
			l.log.Debug("connection encrypted", "local", ev.Local, "remote", ev.Remote,
				"role", ev.Role, "tep", TEPName(ev.TEP), "aead", ev.AEAD, "resumed", ev.Resumed,
				"session_id", hex.EncodeToString(ev.SessionID))
		}
		return
	}
	if ev.Kind == engine.EventFallback && !l.log.Enabled(context.Background(), slog.LevelDebug) {
		return // not logged: take no token
	}
	ok, suppressed := l.allow()
	if !ok {
		return
	}
	attrs := []any{"local", ev.Local, "remote", ev.Remote, "mode", ev.Mode, "reason", ev.Reason}
	if ev.Err != nil {
		attrs = append(attrs, "err", ev.Err)
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed_before", suppressed)
	}
	switch ev.Kind {
	case engine.EventFallback:
		l.log.Debug("connection fell back to plain TCP", attrs...)
	case engine.EventAbort:
		l.log.Warn("connection aborted", attrs...)
	}
}
