package bind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

const (
	// MinKeyLen is the shortest key PSK accepts, in bytes.
	MinKeyLen = 16
	// DefaultTimeout bounds PSK and ConnSAS when the context has no
	// deadline.
	DefaultTimeout = 10 * time.Second
)

// longAgo is a deadline in the past: setting it makes blocked I/O return.
var longAgo = time.Unix(1, 0)

// PSK proves to the peer, and checks that the peer proves, that both ends
// of conn know key and see the same tcpcrypt session with opposite roles.
// Both ends call it right after connecting, before any other bytes are
// sent. It returns nil when the peer's proof is right, and otherwise an
// error matching ErrMismatch (ErrSameRole for the same role at both ends),
// ErrNotEncrypted, ErrTimeout, ErrProtocol or ErrShortKey, or
// ctl.ErrDaemonUnavailable when no tcpcryptd answers; other I/O errors are
// returned wrapped. The caller should close conn on any error.
//
// PSK reads exactly one bind message (MessageLen bytes) and nothing
// beyond it, so the application's own bytes that follow stay in conn. It
// sets conn's deadline to ctx's (DefaultTimeout when ctx has none) for the
// exchange and clears it (to the zero time, no deadline) before returning;
// a deadline set on conn before the call is not kept.
func PSK(ctx context.Context, conn net.Conn, key []byte) error {
	if len(key) < MinKeyLen {
		return fmt.Errorf("%w: %d bytes, at least %d are needed", ErrShortKey, len(key), MinKeyLen)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	sid, isA, err := sessionSource(ctx, conn)
	if err != nil {
		return err
	}
	if len(sid) == 0 {
		return fmt.Errorf("%w: empty session id", ErrNotEncrypted)
	}
	k, err := macKey(key)
	if err != nil {
		return err
	}
	ours := newMessage(k, roleByte(isA), sid)
	peer, err := exchange(ctx, conn, ours.marshal())
	if err != nil {
		return err
	}
	return peer.verify(k, ours.role, sid)
}

// withDefaultTimeout gives ctx a deadline DefaultTimeout away if it has
// none.
func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// exchange writes out and reads the peer's message at the same time. The
// write runs in its own goroutine, so the exchange cannot deadlock on a
// connection without buffering (net.Pipe, a relay that forwards only after
// it has read): TCP's send buffer would hold the 38 bytes, but PSK does not
// rely on it. Both directions are bounded by ctx: its deadline becomes
// conn's deadline, and cancelling ctx sets a deadline in the past. The
// goroutine has ended when exchange returns.
func exchange(ctx context.Context, conn net.Conn, out []byte) (message, error) {
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return message{}, fmt.Errorf("bind: set deadline: %w", err)
	}
	var mu sync.Mutex
	finished := false
	unblock := func() {
		mu.Lock()
		defer mu.Unlock()
		if !finished {
			_ = conn.SetDeadline(longAgo)
		}
	}
	stop := context.AfterFunc(ctx, unblock)

	werr := make(chan error, 1)
	go func() {
		_, err := conn.Write(out)
		werr <- err
	}()
	in, rerr := readMessage(conn)
	if rerr != nil {
		unblock() // the peer may never read our message: do not wait for it
	}
	wErr := <-werr

	stop()
	mu.Lock()
	finished = true
	mu.Unlock()
	_ = conn.SetDeadline(time.Time{})

	switch {
	case rerr != nil:
		return message{}, ioError(ctx, "read", rerr)
	case wErr != nil:
		return message{}, ioError(ctx, "write", wErr)
	}
	return in, nil
}

// readMessage reads one bind message, checking each byte as it arrives, so
// a peer that speaks another protocol fails at once (ErrProtocol) instead
// of after the deadline. It never reads past the message.
func readMessage(r io.Reader) (message, error) {
	var buf [MessageLen]byte
	n := 0
	for n < MessageLen {
		m, err := r.Read(buf[n:])
		n += m
		if perr := checkPrefix(buf[:n]); perr != nil {
			return message{}, perr
		}
		if err != nil && n < MessageLen {
			if errors.Is(err, io.EOF) {
				return message{}, fmt.Errorf("%w: peer closed the connection after %d of %d bytes", ErrProtocol, n, MessageLen)
			}
			return message{}, err
		}
	}
	return parseMessage(buf[:])
}

// ioError turns an error of the exchange into the package's errors: the
// context's cancellation, ErrTimeout (with context.DeadlineExceeded),
// protocol errors as they are, anything else wrapped with the operation.
func ioError(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(err, ErrProtocol):
		return err
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("bind: %s: %w", op, ctx.Err())
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: the bind exchange did not finish before the deadline (%s): %w", ErrTimeout, op, context.DeadlineExceeded)
	}
	return fmt.Errorf("bind: %s: %w", op, err)
}
