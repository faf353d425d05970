package main

import (
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

// clientConfig is what `xfer send` was asked to do.
type clientConfig struct {
	addr     string // server address
	up, down uint64 // bytes per connection, each way
	n, par   int    // connections, and how many at once
	rate     int64  // bytes/s per connection upward; 0 = unlimited
	raw      bool
	file     string // send this file upward instead of the pattern (-n 1)
	hold     bool   // keep every connection open until stdin closes
	quiet    bool   // print only failed connections and the summary
	timeout  time.Duration
	idBase   uint32
	sess     session
	early    bool // look the session up right after connecting (-wait)
	stdin    io.Reader
	// onHold is called with a connection's report so far when it reaches
	// its hold point (the data and the session lookup are done).
	onHold func(r *Report)
}

// runClient makes cfg.n connections and prints their reports and a summary.
// It returns the exit status: 0 when every connection completed.
func runClient(cfg clientConfig, p *printer) int {
	start := time.Now()
	if cfg.hold && !cfg.quiet {
		cfg.onHold = p.print
	}
	reports := make([]Report, cfg.n)
	release := make(chan struct{})
	arrived := make(chan struct{}, cfg.n)
	ids := make(chan int)
	var wg sync.WaitGroup
	for range cfg.par {
		wg.Go(func() {
			for i := range ids {
				reports[i] = clientConn(cfg, cfg.idBase+uint32(i), arrived, release)
				if !cfg.quiet || !reports[i].ok() {
					p.print(&reports[i])
				}
			}
		})
	}
	go func() {
		for i := range cfg.n {
			ids <- i
		}
		close(ids)
	}()
	if cfg.hold {
		// Every connection either reaches its hold point or fails, and
		// says so on arrived, exactly once.
		for range cfg.n {
			<-arrived
		}
		p.print(&Report{Event: "holding", Side: "client", Conns: cfg.n})
		_, _ = io.Copy(io.Discard, cfg.stdin)
		close(release)
	}
	wg.Wait()
	sum := summarize("client", reports, time.Since(start))
	p.print(&sum)
	if sum.Failed > 0 {
		return 1
	}
	return 0
}

// clientConn runs one connection. With cfg.hold it signals arrived once the
// data and the sync byte are through (or on failure), and waits for release
// before closing.
func clientConn(cfg clientConfig, id uint32, arrived chan<- struct{}, release <-chan struct{}) (r Report) {
	r = Report{Event: "conn", Side: "client", ID: id}
	start := time.Now()
	signalled := false
	signal := func() {
		if cfg.hold && !signalled {
			signalled = true
			arrived <- struct{}{}
		}
	}
	defer func() {
		signal()
		r.Seconds = time.Since(start).Seconds()
	}()

	d := net.Dialer{Timeout: cfg.timeout}
	conn, err := d.Dial("tcp", cfg.addr)
	if err != nil {
		r.fail("dial", err)
		return r
	}
	r.Local, r.Remote = conn.LocalAddr().String(), conn.RemoteAddr().String()
	_ = conn.SetDeadline(start.Add(cfg.timeout))
	if cfg.early {
		cfg.sess.lookup(conn, &r)
	}
	flags := uint32(0)
	if cfg.raw {
		flags |= flagRaw
	}
	out := stream{id: id, n: cfg.up, raw: cfg.raw}
	if cfg.file != "" {
		f, err := os.Open(cfg.file)
		if err != nil {
			conn.Close()
			r.fail("file", err)
			return r
		}
		defer f.Close()
		flags |= flagFile
		out.src = f
	}
	if _, err := conn.Write(header{Up: cfg.up, Down: cfg.down, ID: id, Flags: flags}.marshal()); err != nil {
		conn.Close()
		r.fail("header", err)
		return r
	}
	in := stream{id: id | downBit, n: cfg.down, raw: cfg.raw, onFirst: func() {
		r.FirstByteMS = float64(time.Since(start).Microseconds()) / 1000
	}}
	transfer(conn, out, in, cfg.rate, &r)
	if !r.ok() {
		conn.Close()
		return r
	}
	if !cfg.early {
		cfg.sess.lookup(conn, &r)
	}
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil || b[0] != syncByte {
		conn.Close()
		r.fail("sync", fmt.Errorf("sync byte %q: %w", b[0], err))
		return r
	}
	if cfg.hold {
		if cfg.onHold != nil {
			held := r
			held.Event = "held"
			held.Seconds = time.Since(start).Seconds()
			cfg.onHold(&held)
		}
		signal()
		select {
		case <-release:
		case <-time.After(time.Until(start.Add(cfg.timeout))):
		}
		_ = conn.SetDeadline(time.Now().Add(cfg.timeout))
	}
	closeGracefully(conn, &r)
	return r
}

// summarize adds up a run's reports.
func summarize(side string, reports []Report, elapsed time.Duration) Report {
	s := Report{Event: "summary", Side: side, Conns: len(reports), Seconds: elapsed.Seconds(), Errors: map[string]int{}}
	for i := range reports {
		r := &reports[i]
		s.Bytes += r.Sent + r.Received
		if r.ok() {
			s.OK++
		} else {
			s.Failed++
			key := r.Phase + ": " + r.Errno
			if r.Errno == "" {
				key = r.Phase + ": " + truncate(r.Err, 80)
			}
			s.Errors[key]++
		}
		if r.SessionID != "" {
			s.Encrypted++
		}
	}
	if sec := elapsed.Seconds(); sec > 0 {
		s.MbitPerS = float64(s.Bytes) * 8 / sec / 1e6
		s.ConnsPerS = float64(s.OK) / sec
	}
	if len(s.Errors) == 0 {
		s.Errors = nil
	}
	s.FirstByteP50MS, s.FirstByteP99MS = firstBytePercentiles(reports)
	return s
}

// firstBytePercentiles returns the median and the 99th percentile of the
// connect-to-first-byte times of the connections that completed and received
// data (nearest rank; zero when there are none).
func firstBytePercentiles(reports []Report) (p50, p99 float64) {
	var ms []float64
	for i := range reports {
		if r := &reports[i]; r.ok() && r.Received > 0 {
			ms = append(ms, r.FirstByteMS)
		}
	}
	if len(ms) == 0 {
		return 0, 0
	}
	slices.Sort(ms)
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(ms)))) - 1
		return ms[max(i, 0)]
	}
	return rank(0.50), rank(0.99)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
