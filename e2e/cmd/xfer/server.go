package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// serverConfig is what `xfer serve` was asked to do.
type serverConfig struct {
	max     int // stop after this many connections (0: until stopped)
	quiet   bool
	timeout time.Duration // per connection, including the time the client holds it
	sess    session
	early   bool   // look the session up right after accepting (-wait)
	save    string // write a received file to this path
}

// runServer accepts connections on ln until stop is closed, cfg.max
// connections were accepted, or the listener fails; it then waits for the
// running connections (at most cfg.timeout) and prints a summary. It returns
// the exit status: 0 when every connection completed.
func runServer(ln net.Listener, cfg serverConfig, p *printer, stop <-chan struct{}) int {
	start := time.Now()
	p.print(&Report{Event: "listening", Side: "server", Addr: ln.Addr().String()})
	go func() {
		<-stop
		ln.Close()
	}()
	var (
		mu      sync.Mutex
		reports []Report
		wg      sync.WaitGroup
	)
	for cfg.max == 0 || len(reports) < cfg.max {
		conn, err := ln.Accept()
		if err != nil {
			break
		}
		mu.Lock()
		reports = append(reports, Report{})
		i := len(reports) - 1
		mu.Unlock()
		wg.Go(func() {
			r := serverConn(conn, cfg)
			if !cfg.quiet || !r.ok() {
				p.print(&r)
			}
			mu.Lock()
			reports[i] = r
			mu.Unlock()
		})
	}
	ln.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(cfg.timeout):
	}
	mu.Lock()
	sum := summarize("server", reports, time.Since(start))
	mu.Unlock()
	p.print(&sum)
	if sum.Failed > 0 {
		return 1
	}
	return 0
}

// serverConn serves one connection: header, both streams, session lookup,
// sync byte, then it waits for the client's FIN and closes.
func serverConn(conn net.Conn, cfg serverConfig) (r Report) {
	start := time.Now()
	r = Report{Event: "conn", Side: "server", Local: conn.LocalAddr().String(), Remote: conn.RemoteAddr().String()}
	defer func() { r.Seconds = time.Since(start).Seconds() }()
	defer conn.Close()
	_ = conn.SetDeadline(start.Add(cfg.timeout))
	if cfg.early {
		cfg.sess.lookup(conn, &r)
	}
	b := make([]byte, headerLen)
	if _, err := io.ReadFull(conn, b); err != nil {
		r.fail("header", err)
		return r
	}
	h, err := parseHeader(b)
	if err != nil {
		r.fail("header", err)
		return r
	}
	r.ID = h.ID
	raw := h.Flags&flagRaw != 0
	in := stream{id: h.ID, n: h.Up, raw: raw, file: h.Flags&flagFile != 0}
	if in.file && cfg.save != "" {
		f, err := os.Create(cfg.save)
		if err != nil {
			r.fail("save", err)
			return r
		}
		defer func() {
			if err := f.Close(); err != nil {
				r.fail("save", err)
			}
		}()
		in.sink = f
	}
	transfer(conn, stream{id: h.ID | downBit, n: h.Down, raw: raw}, in, 0, &r)
	if !r.ok() {
		return r
	}
	if !cfg.early {
		cfg.sess.lookup(conn, &r)
	}
	if _, err := conn.Write([]byte{syncByte}); err != nil {
		r.fail("sync", err)
		return r
	}
	n, err := io.Copy(io.Discard, conn)
	switch {
	case err != nil:
		r.fail("close", fmt.Errorf("waiting for the client's FIN: %w", err))
	case n != 0:
		r.fail("close", fmt.Errorf("%d unexpected bytes before the client's FIN", n))
	}
	return r
}
