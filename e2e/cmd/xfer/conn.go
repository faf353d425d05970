package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/e2e/internal/payload"
)

// chunk is the size of each write.
const chunk = 64 << 10

// rawBuf is what flagRaw streams repeat.
var rawBuf = func() []byte {
	b := make([]byte, 256<<10)
	payload.Fill(b, 0x7fffffff, 0)
	return b
}()

// session looks up the session id of conn; nil when the lookups are off.
type session func(conn net.Conn) (ctl.Info, error)

// waitTimeout bounds a -wait lookup (ctl.WaitSession).
const waitTimeout = 10 * time.Second

// newSession returns a session lookup through the client library's
// application entry point, ctl.ConnInfo, exactly as an application would
// call it; the daemon's address reaches it through $TCPCRYPT_CTL. At most
// par lookups run at a time (the daemon serves a bounded number of control
// clients). With wait, the lookup is ctl.WaitSession, which waits out the
// key exchange (for lookups made right after the connection opens).
func newSession(addr string, par int, wait bool) session {
	if addr == "" {
		return nil
	}
	if err := os.Setenv(ctl.EnvAddress, addr); err != nil {
		return func(net.Conn) (ctl.Info, error) { return ctl.Info{}, err }
	}
	sem := make(chan struct{}, par)
	return func(conn net.Conn) (ctl.Info, error) {
		sem <- struct{}{}
		defer func() { <-sem }()
		if wait {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			return ctl.WaitSession(ctx, conn)
		}
		return ctl.ConnInfo(conn)
	}
}

// lookup fills r's session members.
func (s session) lookup(conn net.Conn, r *Report) {
	if s == nil {
		return
	}
	info, err := s(conn)
	if err != nil {
		r.SessErr = err.Error()
		return
	}
	r.SessionID = hex.EncodeToString(info.SessionID)
	r.Role, r.TEP, r.AEAD = info.Role.String(), info.TEP, info.AEAD
}

// stream describes one direction of a connection.
type stream struct {
	id  uint32
	n   uint64
	raw bool // a fixed repeating buffer, neither hashed nor checked (benchmarks)
	// src, on the sending side, supplies the bytes instead of the pattern
	// (a file); the stream is then not checked on the receiving side.
	src io.Reader
	// file, on the receiving side, says the bytes are not the pattern; sink
	// also receives them (e.g. a file to save).
	file bool
	sink io.Writer
	// onFirst, on the receiving side, is called once, when the first byte
	// of the stream has arrived.
	onFirst func()
}

// sender writes s to w, at most rate bytes per second when rate > 0, and
// returns the count and the SHA-256 of what it wrote.
func sender(w io.Writer, s stream, rate int64) (uint64, string, error) {
	var h hash.Hash
	var src io.Reader
	switch {
	case s.raw:
		src = &repeatReader{n: s.n}
	case s.src != nil:
		h, src = sha256.New(), io.LimitReader(s.src, int64(s.n))
	default:
		h, src = sha256.New(), payload.NewReader(s.id, s.n)
	}
	buf := make([]byte, chunk)
	if rate > 0 && rate < chunk {
		buf = buf[:max(rate/10, 1)]
	}
	start := time.Now()
	var sent uint64
	for {
		m, rerr := src.Read(buf)
		if m > 0 {
			if h != nil {
				h.Write(buf[:m])
			}
			k, err := w.Write(buf[:m])
			sent += uint64(k)
			if err != nil {
				return sent, sum(h), err
			}
			if rate > 0 {
				due := start.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second)))
				time.Sleep(time.Until(due))
			}
		}
		switch {
		case rerr == io.EOF && sent < s.n:
			return sent, sum(h), fmt.Errorf("source ended after %d of %d bytes: %w", sent, s.n, io.ErrUnexpectedEOF)
		case rerr == io.EOF:
			return sent, sum(h), nil
		case rerr != nil:
			return sent, sum(h), rerr
		}
	}
}

// receiver reads exactly s.n bytes of s from r, checking each byte against
// the pattern unless the stream is raw or a file, and returns the count, the
// SHA-256 and whether every byte was checked and right.
func receiver(r io.Reader, s stream) (uint64, string, bool, error) {
	var (
		h hash.Hash
		v *payload.Verifier
		w = io.Discard
	)
	switch {
	case s.raw:
	case s.file:
		h = sha256.New()
		w = h
		if s.sink != nil {
			w = io.MultiWriter(h, s.sink)
		}
	default:
		h, v = sha256.New(), payload.NewVerifier(s.id)
		w = io.MultiWriter(h, v)
	}
	if s.onFirst != nil {
		r = &firstReader{r: r, first: s.onFirst}
	}
	got, err := io.CopyBuffer(w, io.LimitReader(r, int64(s.n)), make([]byte, chunk))
	if err == nil && uint64(got) < s.n {
		err = fmt.Errorf("stream ended after %d of %d bytes: %w", got, s.n, io.ErrUnexpectedEOF)
	}
	if v != nil && v.Err() != nil {
		err = v.Err()
	}
	return uint64(got), sum(h), v != nil && err == nil, err
}

func sum(h hash.Hash) string {
	if h == nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// firstReader calls first once, after the first read that returned data.
type firstReader struct {
	r     io.Reader
	first func()
}

func (f *firstReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if n > 0 && f.first != nil {
		f.first()
		f.first = nil
	}
	return n, err
}

// repeatReader yields n bytes of rawBuf over and over.
type repeatReader struct{ n, off uint64 }

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if rem := r.n - r.off; uint64(len(p)) > rem {
		p = p[:rem]
	}
	m := 0
	for m < len(p) {
		m += copy(p[m:], rawBuf[(r.off+uint64(m))%uint64(len(rawBuf)):])
	}
	r.off += uint64(m)
	return m, nil
}

// transfer runs both directions of a connection at once: it sends out and
// receives in.
func transfer(conn net.Conn, out, in stream, rate int64, r *Report) {
	type result struct {
		n   uint64
		sum string
		err error
	}
	sent := make(chan result, 1)
	go func() {
		n, s, err := sender(conn, out, rate)
		sent <- result{n, s, err}
	}()
	var rerr error
	r.Received, r.RecvSHA256, r.Verified, rerr = receiver(conn, in)
	if rerr != nil {
		// Unblock the sender: the connection is unusable.
		_ = conn.SetDeadline(time.Now())
	}
	s := <-sent
	r.Sent, r.SentSHA256 = s.n, s.sum
	switch {
	case rerr != nil && s.err != nil && !isDeadline(s.err):
		// Both failed; the send error is usually the cause (e.g. a reset).
		r.fail("transfer", fmt.Errorf("send: %w; receive: %w", s.err, rerr))
	case rerr != nil:
		r.fail("transfer", fmt.Errorf("receive: %w", rerr))
	case s.err != nil:
		r.fail("transfer", fmt.Errorf("send: %w", s.err))
	}
}

func isDeadline(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errnoName(err) == "timeout"
}

// closeGracefully sends FIN, waits for the peer's FIN and closes.
func closeGracefully(conn net.Conn, r *Report) {
	defer conn.Close()
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return
	}
	if err := tc.CloseWrite(); err != nil {
		r.fail("close", fmt.Errorf("close write: %w", err))
		return
	}
	n, err := io.Copy(io.Discard, tc)
	switch {
	case err != nil:
		r.fail("close", fmt.Errorf("waiting for the peer's FIN: %w", err))
	case n != 0:
		r.fail("close", fmt.Errorf("%d unexpected bytes before the peer's FIN", n))
	}
}
