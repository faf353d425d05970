package nfq

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/internal/netns"
	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/rules"

	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

// The TestIntegration* tests run nfq against the real kernel in a fresh
// network namespace: the real rules (rules.Manager) queue a test port, Open
// reads the queues, and a loopback TCP connection inside the namespace runs
// through it. They need root and skip with a message otherwise.

const (
	kernelPort    = 5555
	kernelTimeout = 30 * time.Second
)

// kernelEngine is a pass-through Engine for the kernel tests: it accepts
// segments without payload or that it cannot parse, and replaces data
// segments with an identical copy
// whose checksums it recomputes in full (required with GSO: the kernel hands
// over partial checksums and trusts modified packets). onData, if set, may
// take over a data segment of the test port instead.
type kernelEngine struct {
	maxReplaced *atomic.Int64 // largest packet replaced, if set
	onData      func(e *kernelEngine, p *packet.Packet, pkt []byte, dir engine.Dir) (engine.Result, bool)
	onTick      func(e *kernelEngine, now time.Time) engine.Result
	deadline    time.Time
}

func (e *kernelEngine) Process(pkt []byte, dir engine.Dir) engine.Result {
	var p packet.Packet
	if err := packet.Parse(pkt, &p); err != nil {
		// Super-packets over 65531 bytes arrive truncated (the NFQUEUE copy
		// range limit; see truncated in Stats) and IPv6 BIG TCP ones carry
		// a hop-by-hop header: neither can be rewritten, so a pass-through
		// engine lets them go unchanged.
		return engine.Result{Verdict: engine.Accept}
	}
	if len(p.Payload()) == 0 {
		return engine.Result{Verdict: engine.Accept}
	}
	if e.onData != nil {
		if r, ok := e.onData(e, &p, pkt, dir); ok {
			return r
		}
	}
	cp := append([]byte(nil), p.Buf...)
	var q packet.Packet
	if err := packet.Parse(cp, &q); err != nil {
		return engine.Result{Verdict: engine.Drop}
	}
	q.FixIPChecksum()
	q.FixTCPChecksum()
	if e.maxReplaced != nil && int64(len(cp)) > e.maxReplaced.Load() {
		e.maxReplaced.Store(int64(len(cp)))
	}
	return engine.Result{Verdict: engine.Replace, Packet: cp}
}

func (e *kernelEngine) Tick(now time.Time) engine.Result {
	if e.onTick == nil {
		e.deadline = time.Time{}
		return engine.Result{}
	}
	return e.onTick(e, now)
}

func (e *kernelEngine) NextDeadline() time.Time { return e.deadline }

func (e *kernelEngine) AbortFlow(engine.Flow, engine.AbortReason) (engine.Result, bool) {
	return engine.Result{}, false
}

// kernelEnv is a namespace with the rules applied and a Dispatcher running.
type kernelEnv struct {
	ns  *netns.NS
	d   *Dispatcher
	ln  net.Listener
	err chan error
}

// startKernel creates the namespace, applies the rules for kernelPort
// (failing closed, so that a broken reader breaks the test instead of letting
// traffic bypass it), opens the queues and a listener inside the namespace on
// addr, and runs the Dispatcher until the test ends.
func startKernel(t *testing.T, addr string, newEngine func(int) (Engine, error)) *kernelEnv {
	t.Helper()
	ns := netns.NewForTest(t)
	conn, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		t.Fatalf("nftables.New: %v", err)
	}
	rcfg := rules.DefaultConfig()
	rcfg.QueueCount = 2
	rcfg.Bypass = rules.BypassPolicy{}
	m := rules.NewManager(conn, nil)
	if err := m.Apply(rcfg, []rules.Policy{{Port: kernelPort, Side: rules.SideBoth, Mode: rules.ModeOpportunistic}}); err != nil {
		t.Fatalf("rules: %v", err)
	}
	env := &kernelEnv{ns: ns, err: make(chan error, 1)}
	err = ns.Do(func() error {
		var err error
		env.d, err = Open(Config{
			QueueNum: rcfg.QueueNum, QueueCount: rcfg.QueueCount,
			Mark: rcfg.Mark, PeerMark: rcfg.PeerMark, NewEngine: newEngine,
		})
		if err != nil {
			return err
		}
		env.ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		if env.d != nil {
			_ = env.d.Close()
		}
		if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT) {
			testenv.Skip(t, "%s not available in the namespace: %v", addr, err)
		}
		t.Fatalf("open in namespace: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { env.err <- env.d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		_ = env.ln.Close()
		select {
		case err := <-env.err:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(kernelTimeout):
			t.Errorf("Run did not return")
		}
	})
	return env
}

// dial connects to the listener from inside the namespace.
func (env *kernelEnv) dial(t *testing.T) net.Conn {
	t.Helper()
	var c net.Conn
	err := env.ns.Do(func() error {
		var err error
		c, err = (&net.Dialer{Timeout: 10 * time.Second}).Dial("tcp", env.ln.Addr().String())
		return err
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(kernelTimeout))
	return c
}

// echo serves one connection of the listener: it copies everything back.
func (env *kernelEnv) echo(t *testing.T) {
	go func() {
		c, err := env.ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(kernelTimeout))
		_, _ = io.Copy(c, c)
	}()
}

// transfer sends n random bytes over c to the echo server and checks that
// the same bytes (by SHA-256) come back.
func transfer(t *testing.T, c net.Conn, n int) {
	t.Helper()
	data := make([]byte, n)
	_, _ = rand.Read(data)
	want := sha256.Sum256(data)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	got, err := io.Copy(h, c)
	if err != nil {
		if statsForLog != nil {
			t.Logf("stats %+v", statsForLog())
		}
		t.Fatalf("read after %d bytes: %v", got, err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if got != int64(n) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("echo: %d bytes, sha256 %x; want %d bytes, %x", got, h.Sum(nil), n, want)
	}
}

// checkClean checks the counters that must stay zero on a healthy run.
func checkClean(t *testing.T, s Stats) {
	t.Helper()
	if s.PacketsOut == 0 || s.PacketsIn == 0 {
		t.Errorf("no traffic went through the queues: %+v", s)
	}
	// Truncated is not checked: on loopback (MTU 65536) full-size segments
	// exceed the copy range.
	if s.VerdictErrors != 0 || s.InjectErrors != 0 || s.ParseErrors != 0 || s.UnknownHook != 0 ||
		s.NonTCP != 0 || s.EngineBugs != 0 || s.RecvErrors != 0 {
		t.Errorf("error counters: %+v", s)
	}
}

var statsForLog func() Stats

// TestIntegrationPassThrough echoes 4 MiB over loopback through the queues,
// replacing every data segment with a copy whose checksums were recomputed.
// With lo at MTU 1500, TCP hands over GSO super-packets, which must all fit
// the copy range and survive replacement (DESIGN.md, kernel facts).
func TestIntegrationPassThrough(t *testing.T) {
	tests := []struct {
		addr string
		mtu  int // 0: leave lo alone (65536)
	}{
		{"127.0.0.1", 0},
		{"[::1]", 0},
		{"127.0.0.1", 1500},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s mtu %d", tt.addr, tt.mtu), func(t *testing.T) {
			// Registered first, so it runs after startKernel's cleanup has
			// stopped Run.
			base := runtime.NumGoroutine()
			t.Cleanup(func() { checkGoroutines(t, base) })
			var maxReplaced atomic.Int64
			env := startKernel(t, tt.addr+":5555", func(int) (Engine, error) {
				return &kernelEngine{maxReplaced: &maxReplaced}, nil
			})
			if tt.mtu != 0 {
				if err := env.ns.Do(func() error { return setMTU("lo", tt.mtu) }); err != nil {
					t.Fatalf("set lo mtu: %v", err)
				}
			}
			env.echo(t)
			c := env.dial(t)
			statsForLog = env.d.Stats
			transfer(t, c, 4<<20)
			s := env.d.Stats()
			checkClean(t, s)
			if s.Replaced == 0 {
				t.Errorf("no data segment was replaced: %+v", s)
			}
			if tt.mtu != 0 {
				if s.Truncated != 0 {
					t.Errorf("%d packets truncated at MTU %d", s.Truncated, tt.mtu)
				}
				if m := maxReplaced.Load(); m <= int64(tt.mtu) {
					t.Errorf("largest replaced packet %d bytes: no GSO super-packet seen", m)
				}
			}
			t.Logf("stats: %+v, largest replaced %d bytes", s, maxReplaced.Load())
		})
	}
}

// setMTU sets the MTU of interface name in the calling thread's namespace.
func setMTU(name string, mtu int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	ifr.SetUint32(uint32(mtu))
	return unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr)
}

// TestIntegrationHold holds the client's first data segment and releases it
// (accept) from Tick 100 ms later; the transfer must still complete.
func TestIntegrationHold(t *testing.T) {
	var heldOnce atomic.Bool
	var mu sync.Mutex
	var heldAt, releasedAt time.Time
	env := startKernel(t, "127.0.0.1:5555", func(int) (Engine, error) {
		return &kernelEngine{
			onData: func(e *kernelEngine, p *packet.Packet, pkt []byte, dir engine.Dir) (engine.Result, bool) {
				if dir != engine.Outbound || p.DstPort() != kernelPort || !heldOnce.CompareAndSwap(false, true) {
					return engine.Result{}, false
				}
				mu.Lock()
				heldAt = time.Now()
				mu.Unlock()
				e.deadline = time.Now().Add(100 * time.Millisecond)
				return engine.Result{Verdict: engine.Hold, Token: 1}, true
			},
			onTick: func(e *kernelEngine, now time.Time) engine.Result {
				e.deadline = time.Time{}
				mu.Lock()
				releasedAt = now
				mu.Unlock()
				return engine.Result{Released: []engine.Release{{Token: 1, Verdict: engine.Accept}}}
			},
		}, nil
	})
	env.echo(t)
	c := env.dial(t)
	transfer(t, c, 256<<10)
	s := env.d.Stats()
	checkClean(t, s)
	if s.Held != 1 || s.Released != 1 || s.HeldNow != 0 {
		t.Errorf("hold counters: %+v", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if d := releasedAt.Sub(heldAt); d < 100*time.Millisecond {
		t.Errorf("released %v after holding, want >= 100ms", d)
	}
}

// TestIntegrationInjectRST drops the client's first data segment and injects
// an RST toward the client (ToLocal, from the server's address): the client
// socket must see a reset.
func TestIntegrationInjectRST(t *testing.T) {
	var once atomic.Bool
	env := startKernel(t, "127.0.0.1:5555", func(int) (Engine, error) {
		return &kernelEngine{
			onData: func(e *kernelEngine, p *packet.Packet, pkt []byte, dir engine.Dir) (engine.Result, bool) {
				if dir != engine.Outbound || p.DstPort() != kernelPort || !once.CompareAndSwap(false, true) {
					return engine.Result{}, false
				}
				rst, err := packet.Build(nil, &packet.Fields{
					Src: p.DstAddrPort(), Dst: p.SrcAddrPort(),
					Seq: p.TCP.Ack(), Flags: packet.FlagRST,
				})
				if err != nil {
					return engine.Result{Verdict: engine.Drop}, true
				}
				return engine.Result{Verdict: engine.Drop, ToLocal: [][]byte{rst}}, true
			},
		}, nil
	})
	env.echo(t)
	c := env.dial(t)
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 16))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read = %v, want ECONNRESET", err)
	}
	// The reset can reach the socket before the worker counts the send.
	deadline := time.Now().Add(5 * time.Second)
	s := env.d.Stats()
	for s.Dropped == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		s = env.d.Stats()
	}
	if s.InjectedToLocal != 1 || s.Dropped != 1 || s.InjectErrors != 0 || s.VerdictErrors != 0 {
		t.Errorf("stats: %+v", s)
	}
}

// TestIntegrationFlowBalance runs many connections between the same two
// addresses through two queues and checks the rules' flow balancing: every
// packet of a connection, both directions at both hooks, reaches one engine
// (a second engine would have no state for it, and would pass an encrypted
// flow's packets untouched), and the connections spread over both engines
// rather than sharing one as the address-pair hash would make them.
func TestIntegrationFlowBalance(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "[::1]"} {
		t.Run(addr, func(t *testing.T) {
			const conns = 24
			var mu sync.Mutex
			// seen: connection (the endpoint pair, lower first) -> engines
			// that saw any of its packets.
			seen := map[[2]netip.AddrPort]map[int]bool{}
			record := func(idx int, pkt []byte) {
				src, dst, err := packet.Endpoints(pkt)
				if err != nil || (src.Port() != kernelPort && dst.Port() != kernelPort) {
					return
				}
				if dst.Compare(src) < 0 {
					src, dst = dst, src
				}
				k := [2]netip.AddrPort{src, dst}
				mu.Lock()
				defer mu.Unlock()
				if seen[k] == nil {
					seen[k] = map[int]bool{}
				}
				seen[k][idx] = true
			}
			env := startKernel(t, addr+":5555", func(idx int) (Engine, error) {
				return &recordingEngine{idx: idx, record: record}, nil
			})
			for range conns {
				env.echo(t)
				c := env.dial(t)
				transfer(t, c, 64<<10)
				_ = c.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != conns {
				t.Fatalf("%d connections seen by the engines, want %d", len(seen), conns)
			}
			perEngine := map[int]int{}
			for k, engines := range seen {
				if len(engines) != 1 {
					t.Errorf("connection %v <-> %v: packets reached engines %v, want one", k[0], k[1], engines)
				}
				for idx := range engines {
					perEngine[idx]++
				}
			}
			if len(perEngine) != 2 {
				t.Errorf("connections per engine %v: want them spread over both queues", perEngine)
			}
			t.Logf("connections per engine: %v", perEngine)
		})
	}
}

// recordingEngine is a kernelEngine that reports every packet to record,
// with the index of its queue.
type recordingEngine struct {
	kernelEngine
	idx    int
	record func(idx int, pkt []byte)
}

func (e *recordingEngine) Process(pkt []byte, dir engine.Dir) engine.Result {
	e.record(e.idx, pkt)
	return e.kernelEngine.Process(pkt, dir)
}

// TestIntegrationSendLimit: as root the queue socket's send buffer is raised
// past the default, so verdict batches can reach maxBatchBytes, and the
// batches of a bulk transfer through it are accepted by the kernel.
func TestIntegrationSendLimit(t *testing.T) {
	env := startKernel(t, "127.0.0.1:5555", func(int) (Engine, error) { return &kernelEngine{}, nil })
	for i, sh := range env.d.shards {
		kq, ok := sh.q.(*KernelQueue)
		if !ok {
			t.Fatalf("shard %d: queue %T", i, sh.q)
		}
		if kq.SendLimit() < maxBatchBytes || sh.out.maxBytes != maxBatchBytes {
			t.Errorf("queue %d: send limit %d, batch limit %d; want at least %d and %d", i, kq.SendLimit(), sh.out.maxBytes, maxBatchBytes, maxBatchBytes)
		}
	}
	env.echo(t)
	transfer(t, env.dial(t), 16<<20)
	checkClean(t, env.d.Stats())
}
