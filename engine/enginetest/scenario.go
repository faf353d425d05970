package enginetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"
)

// DefaultScenarioTimeout bounds a scenario whose context has no deadline.
const DefaultScenarioTimeout = 2 * time.Minute

// ErrMismatch is wrapped by scenario errors that report data received
// differing from data sent.
var ErrMismatch = errors.New("enginetest: data mismatch")

// RandomBytes returns n bytes from a generator seeded with seed.
func RandomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24),
		byte(seed >> 32), byte(seed >> 40), byte(seed >> 48), byte(seed >> 56)})
	_, _ = r.Read(b) // ChaCha8.Read never fails
	return b
}

// withTimeout gives ctx a deadline if it has none.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultScenarioTimeout)
}

// guard makes blocked I/O on conns fail once ctx ends. Call the returned
// function when done.
func guard(ctx context.Context, conns ...*Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() {
		for _, c := range conns {
			_ = c.SetDeadline(time.Now())
		}
	})
}

// connect listens on B's port, dials it from A and returns both ends. The
// listener is closed before connect returns.
func (p *Pair) connect(ctx context.Context, v6 bool, port uint16) (client, server *Conn, err error) {
	ln, err := p.Listen(v6, port)
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	type accepted struct {
		c   *Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.AcceptConn(ctx)
		ch <- accepted{c, err}
	}()
	client, err = p.Dial(ctx, v6, port)
	if err != nil {
		ln.Close()
		if a := <-ch; a.c != nil {
			a.c.Close()
		}
		return nil, nil, err
	}
	a := <-ch
	if a.err != nil {
		client.Close()
		return nil, nil, a.err
	}
	return client, a.c, nil
}

// sendClose writes data then half-closes c.
func sendClose(c *Conn, data []byte) error {
	if _, err := c.Write(data); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := c.CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	return nil
}

// drain reads c to EOF and returns the byte count and SHA-256 of the data.
func drain(c *Conn) (n int64, sum [32]byte, err error) {
	h := sha256.New()
	n, err = io.Copy(h, c)
	copy(sum[:], h.Sum(nil))
	if err != nil {
		err = fmt.Errorf("read after %d bytes: %w", n, err)
	}
	return n, sum, err
}

// check compares received bytes with sent ones.
func check(what string, sent []byte, n int64, sum [32]byte) error {
	if want := sha256.Sum256(sent); n != int64(len(sent)) || sum != want {
		return fmt.Errorf("%w: %s: got %d bytes sha256 %x, want %d bytes sha256 %x",
			ErrMismatch, what, n, sum[:8], len(sent), want[:8])
	}
	return nil
}

// exchange sends ab from a to b and ba from b to a concurrently, each
// followed by a half-close, and checks what each side received.
func exchange(a, b *Conn, ab, ba []byte) error {
	var wg sync.WaitGroup
	var errs [6]error
	var nAB, nBA int64
	var sumAB, sumBA [32]byte
	wg.Add(4)
	go func() { defer wg.Done(); errs[0] = wrap("A send", sendClose(a, ab)) }()
	go func() { defer wg.Done(); errs[1] = wrap("B send", sendClose(b, ba)) }()
	go func() {
		defer wg.Done()
		var err error
		nAB, sumAB, err = drain(b)
		errs[2] = wrap("B receive", err)
	}()
	go func() {
		defer wg.Done()
		var err error
		nBA, sumBA, err = drain(a)
		errs[3] = wrap("A receive", err)
	}()
	wg.Wait()
	errs[4] = check("A->B", ab, nAB, sumAB)
	errs[5] = check("B->A", ba, nBA, sumBA)
	return errors.Join(errs[:]...)
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Bulk opens one connection from A to B's port and transfers nAB random
// bytes A->B and nBA bytes B->A at the same time, each direction ending with
// a half-close, then compares SHA-256 sums.
func (p *Pair) Bulk(ctx context.Context, v6 bool, port uint16, nAB, nBA int) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	a, b, err := p.connect(ctx, v6, port)
	if err != nil {
		return fmt.Errorf("enginetest: bulk: %w", err)
	}
	defer a.Close()
	defer b.Close()
	defer guard(ctx, a, b)()
	if err := exchange(a, b, RandomBytes(1, nAB), RandomBytes(2, nBA)); err != nil {
		return fmt.Errorf("enginetest: bulk %d/%d bytes: %w", nAB, nBA, err)
	}
	return nil
}

// RequestResponse opens one connection and runs rounds of: A sends size
// random bytes, B reads exactly that many and echoes them, A reads the echo
// and compares. Then both sides close.
func (p *Pair) RequestResponse(ctx context.Context, v6 bool, port uint16, rounds, size int) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	a, b, err := p.connect(ctx, v6, port)
	if err != nil {
		return fmt.Errorf("enginetest: request/response: %w", err)
	}
	defer a.Close()
	defer b.Close()
	defer guard(ctx, a, b)()
	srv := make(chan error, 1)
	go func() {
		buf := make([]byte, size)
		for range rounds {
			if _, err := io.ReadFull(b, buf); err != nil {
				srv <- fmt.Errorf("server read request: %w", err)
				return
			}
			if _, err := b.Write(buf); err != nil {
				srv <- fmt.Errorf("server write response: %w", err)
				return
			}
		}
		srv <- nil
	}()
	resp := make([]byte, size)
	var cerr error
	for i := range rounds {
		req := RandomBytes(uint64(100+i), size)
		if _, err := a.Write(req); err != nil {
			cerr = fmt.Errorf("round %d: A write request: %w", i, err)
			break
		}
		if _, err := io.ReadFull(a, resp); err != nil {
			cerr = fmt.Errorf("round %d: A read response: %w", i, err)
			break
		}
		if !bytes.Equal(req, resp) {
			cerr = fmt.Errorf("%w: round %d: response differs from request", ErrMismatch, i)
			break
		}
	}
	if cerr != nil {
		a.Abort() // unblocks the server
	}
	if err := errors.Join(cerr, <-srv); err != nil {
		return fmt.Errorf("enginetest: request/response: %w", err)
	}
	return nil
}

// ShortConns opens n connections from A to B's port, at most parallel at a
// time. On each, A sends size random bytes and half-closes, B echoes them
// and closes, and A checks the echo and the EOF.
func (p *Pair) ShortConns(ctx context.Context, v6 bool, port uint16, n, parallel, size int) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	ln, err := p.Listen(v6, port)
	if err != nil {
		return fmt.Errorf("enginetest: short connections: %w", err)
	}
	var srvWG sync.WaitGroup
	srvErrs := make(chan error, n)
	srvWG.Add(1)
	go func() {
		defer srvWG.Done()
		for {
			c, err := ln.AcceptConn(ctx)
			if err != nil {
				if !errors.Is(err, ErrListenerClosed) {
					srvErrs <- err
				}
				return
			}
			srvWG.Add(1)
			go func() {
				defer srvWG.Done()
				defer c.Close()
				defer guard(ctx, c)()
				data, err := io.ReadAll(c)
				if err == nil {
					err = sendClose(c, data)
				}
				if err != nil {
					srvErrs <- fmt.Errorf("server: %w", err)
				}
			}()
		}
	}()
	sem := make(chan struct{}, max(parallel, 1))
	var cliWG sync.WaitGroup
	cliErrs := make(chan error, n)
	for i := range n {
		sem <- struct{}{}
		cliWG.Add(1)
		go func() {
			defer cliWG.Done()
			defer func() { <-sem }()
			if err := p.shortConn(ctx, v6, port, RandomBytes(uint64(1000+i), size)); err != nil {
				cliErrs <- fmt.Errorf("connection %d: %w", i, err)
			}
		}()
	}
	cliWG.Wait()
	ln.Close()
	srvWG.Wait()
	close(cliErrs)
	close(srvErrs)
	var errs []error
	for e := range cliErrs {
		errs = append(errs, e)
	}
	for e := range srvErrs {
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		return fmt.Errorf("enginetest: short connections: %d errors: %w", len(errs), errors.Join(errs...))
	}
	return nil
}

func (p *Pair) shortConn(ctx context.Context, v6 bool, port uint16, data []byte) error {
	c, err := p.Dial(ctx, v6, port)
	if err != nil {
		return err
	}
	defer c.Close()
	defer guard(ctx, c)()
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() { defer wg.Done(); werr = sendClose(c, data) }()
	n, sum, rerr := drain(c)
	wg.Wait()
	return errors.Join(werr, rerr, check("echo", data, n, sum))
}

// HalfClose checks a half-closed connection: A sends nAB bytes and
// half-closes; B reads them to EOF, and only then sends nBA bytes and
// closes; A reads those to EOF.
func (p *Pair) HalfClose(ctx context.Context, v6 bool, port uint16, nAB, nBA int) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	a, b, err := p.connect(ctx, v6, port)
	if err != nil {
		return fmt.Errorf("enginetest: half-close: %w", err)
	}
	defer a.Close()
	defer b.Close()
	defer guard(ctx, a, b)()
	ab, ba := RandomBytes(3, nAB), RandomBytes(4, nBA)
	aErr := make(chan error, 1)
	go func() { aErr <- wrap("A send", sendClose(a, ab)) }()
	n, sum, err := drain(b)
	errs := []error{wrap("B receive", err), check("A->B", ab, n, sum)}
	if err == nil {
		errs = append(errs, wrap("B send after peer's FIN", sendClose(b, ba)))
		n, sum, err := drain(a)
		errs = append(errs, wrap("A receive", err), check("B->A", ba, n, sum))
	}
	errs = append(errs, <-aErr)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("enginetest: half-close: %w", err)
	}
	return nil
}

// Reset checks an abort: A sends n bytes, B reads them all, A aborts (RST);
// B's next read must fail with an error other than EOF or a timeout.
func (p *Pair) Reset(ctx context.Context, v6 bool, port uint16, n int) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	a, b, err := p.connect(ctx, v6, port)
	if err != nil {
		return fmt.Errorf("enginetest: reset: %w", err)
	}
	defer a.Close()
	defer b.Close()
	defer guard(ctx, a, b)()
	data := RandomBytes(5, n)
	if _, err := a.Write(data); err != nil {
		return fmt.Errorf("enginetest: reset: A write: %w", err)
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(b, got); err != nil {
		return fmt.Errorf("enginetest: reset: B read: %w", err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("enginetest: reset: %w", ErrMismatch)
	}
	a.Abort()
	_, err = b.Read(got[:1])
	switch {
	case err == nil:
		return errors.New("enginetest: reset: B read data after A's abort")
	case errors.Is(err, io.EOF):
		return errors.New("enginetest: reset: B saw a FIN (EOF), not a RST")
	case ctx.Err() != nil:
		return fmt.Errorf("enginetest: reset: B never saw the RST: %w", err)
	}
	return nil
}

// SimultaneousOpen makes A (bound to portA) and B (bound to portB) open a
// connection to each other at the same time: both SYNs are on the wire
// before either is delivered (the wire is paused meanwhile). gVisor handles
// a SYN in SYN-SENT as RFC 9293 §3.5 describes (SYN-RECEIVED, then
// SYN-ACKs cross). The scenario then transfers n bytes each way.
func (p *Pair) SimultaneousOpen(ctx context.Context, v6 bool, portA, portB uint16, n int) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	type dialed struct {
		c   *Conn
		err error
	}
	st := p.Stats()
	p.Pause()
	resumed := false
	defer func() {
		if !resumed {
			p.Resume()
		}
	}()
	chA, chB := make(chan dialed, 1), make(chan dialed, 1)
	go func() { c, err := p.A.DialFrom(ctx, v6, portA, portB); chA <- dialed{c, err} }()
	go func() { c, err := p.B.DialFrom(ctx, v6, portB, portA); chB <- dialed{c, err} }()
	for {
		s := p.Stats()
		if s.A.SYNOut > st.A.SYNOut && s.B.SYNOut > st.B.SYNOut {
			break
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	p.Resume()
	resumed = true
	da, db := <-chA, <-chB
	for _, d := range []dialed{da, db} {
		if d.c != nil {
			defer d.c.Close()
		}
	}
	if err := errors.Join(wrap("A", da.err), wrap("B", db.err)); err != nil {
		return fmt.Errorf("enginetest: simultaneous open: %w", err)
	}
	defer guard(ctx, da.c, db.c)()
	if err := exchange(da.c, db.c, RandomBytes(6, n), RandomBytes(7, n)); err != nil {
		return fmt.Errorf("enginetest: simultaneous open: %w", err)
	}
	return nil
}
