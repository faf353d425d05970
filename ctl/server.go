package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// Default server limits, used for zero Config fields.
const (
	DefaultMaxClients     = 32
	DefaultIdleTimeout    = 2 * time.Minute
	DefaultWriteTimeout   = 10 * time.Second
	DefaultBackendTimeout = 10 * time.Second
	// DefaultSocketMode lets every local user connect: read-only queries are
	// for anyone, and mutations are checked with SO_PEERCRED.
	DefaultSocketMode os.FileMode = 0o666
)

// Config configures a Server. Zero fields take the defaults above.
type Config struct {
	// Backend serves the operations. Required.
	Backend Backend
	// DaemonVersion is reported by the "version" operation.
	DaemonVersion string
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
	// MaxClients bounds concurrent clients; further clients get a "busy"
	// reply and are closed.
	MaxClients int
	// MaxRequestLine bounds one request line (default MaxRequestLine).
	MaxRequestLine int
	// IdleTimeout is how long a client may take to send its next request
	// line before it is disconnected.
	IdleTimeout time.Duration
	// WriteTimeout bounds each write of a reply; a client that stops reading
	// is disconnected after it.
	WriteTimeout time.Duration
	// BackendTimeout bounds each Backend call.
	BackendTimeout time.Duration
	// SocketMode is the unix socket's permission bits (default 0666).
	SocketMode os.FileMode
}

// ErrInUse is returned (wrapped) by Listen when another process answers on
// the unix socket path.
var ErrInUse = errors.New("ctl: control socket in use by another process")

// Server serves the control protocol on one or more listeners.
type Server struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	listeners []net.Listener
	serving   bool
	sem       chan struct{} // slots of clients being served
	refusing  chan struct{} // slots of clients being told "busy"
}

// NewServer checks cfg, fills in defaults and returns a server without
// listeners.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("ctl: NewServer: nil Backend")
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.MaxRequestLine <= 0 {
		cfg.MaxRequestLine = MaxRequestLine
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.BackendTimeout <= 0 {
		cfg.BackendTimeout = DefaultBackendTimeout
	}
	if cfg.SocketMode == 0 {
		cfg.SocketMode = DefaultSocketMode
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Server{cfg: cfg, log: log, sem: make(chan struct{}, cfg.MaxClients),
		refusing: make(chan struct{}, max(cfg.MaxClients, 16))}, nil
}

// Listen parses addr with ParseAddress and opens its listener(s); see
// ListenAddress.
func (s *Server) Listen(addr string) error {
	a, err := ParseAddress(addr)
	if err != nil {
		return err
	}
	return s.ListenAddress(a)
}

// ListenAddress opens the listener(s) for a; call it before Serve. A unix socket's parent directory
// is created (0755) if missing; a leftover socket nobody answers on is
// removed, and if someone answers Listen fails with ErrInUse. The socket is
// bound under umask 077 and then given Config.SocketMode, and it is removed
// when the server stops. A TCP address without a host listens on both
// 127.0.0.1 and ::1 (same port); ::1 is skipped with a warning if the host
// has no IPv6 loopback.
func (s *Server) ListenAddress(a Address) error {
	var ls []net.Listener
	switch a.Network {
	case "unix":
		l, err := listenUnix(a.Path, s.cfg.SocketMode)
		if err != nil {
			return err
		}
		ls = append(ls, l)
	case "tcp":
		port := a.Port
		for i, h := range a.tcpHosts() {
			network := "tcp4"
			if h.Is6() {
				network = "tcp6"
			}
			l, err := net.ListenTCP(network, net.TCPAddrFromAddrPort(netip.AddrPortFrom(h, port)))
			if err != nil {
				if i > 0 && h.Is6() && noIPv6(err) {
					s.log.Warn("ctl: no IPv6 loopback; control port on IPv4 only", "err", err)
					continue
				}
				for _, l := range ls {
					l.Close()
				}
				return fmt.Errorf("ctl: listen %s: %w", a, err)
			}
			port = uint16(l.Addr().(*net.TCPAddr).Port)
			ls = append(ls, l)
		}
	default:
		return fmt.Errorf("%w: network %q", ErrBadAddress, a.Network)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving {
		for _, l := range ls {
			l.Close()
		}
		return errors.New("ctl: Listen after Serve")
	}
	s.listeners = append(s.listeners, ls...)
	return nil
}

// Addrs returns the addresses of the listeners (still listed after Serve
// returned, although closed by then).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, 0, len(s.listeners))
	for _, l := range s.listeners {
		out = append(out, l.Addr())
	}
	return out
}

// Close closes listeners that were opened but never served (for a daemon
// that fails between Listen and Serve). After Serve it does nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return nil
	}
	ls := s.listeners
	s.listeners = nil
	s.mu.Unlock()
	var errs []error
	for _, l := range ls {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// Serve accepts clients on every listener until ctx is cancelled. It then
// closes the listeners (removing the unix socket), disconnects the clients,
// waits for every goroutine it started, and returns nil. It can be called
// once, after at least one Listen.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("ctl: Serve called twice")
	}
	s.serving = true
	ls := s.listeners
	s.mu.Unlock()
	if len(ls) == 0 {
		return errors.New("ctl: Serve: no listeners")
	}

	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() { s.acceptLoop(ctx, l, &wg) })
	}
	<-ctx.Done()
	for _, l := range ls {
		l.Close()
	}
	wg.Wait()
	return nil
}

// acceptLoop accepts clients on l until it is closed.
func (s *Server) acceptLoop(ctx context.Context, l net.Listener, wg *sync.WaitGroup) {
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: wait and retry, never spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("ctl: accept", "addr", l.Addr().String(), "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		select {
		case s.sem <- struct{}{}:
			wg.Go(func() {
				defer func() { <-s.sem }()
				s.serveNet(ctx, c)
			})
		default:
			select {
			case s.refusing <- struct{}{}:
				wg.Go(func() {
					defer func() { <-s.refusing }()
					s.refuseBusy(c)
				})
			default:
				c.Close() // flooded: not even a reply
			}
		}
	}
}

// refuseBusy tells an over-limit client to come back later and closes it.
// It waits briefly for the client's first request, so that the client reads
// the reply (with its id) instead of failing to write.
func (s *Server) refuseBusy(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	var req Request
	if line, err := readLine(bufio.NewReader(c), s.cfg.MaxRequestLine); err == nil {
		json.Unmarshal(line, &req)
	}
	b, _ := json.Marshal(Response{V: ProtocolVersion, ID: req.ID,
		Error: &Error{Code: CodeBusy, Message: "too many control clients; try again"}})
	c.Write(append(b, '\n'))
	lingerClose(c)
}

// serveNet runs one socket client.
func (s *Server) serveNet(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	peer := Peer{Network: c.LocalAddr().Network()}
	if uc, ok := c.(*net.UnixConn); ok {
		p, err := peerCred(uc)
		if err != nil {
			s.log.Warn("ctl: peer credentials", "err", err)
		}
		peer = p
	}
	err := s.ServeConn(ctx, c, c, peer)
	switch {
	case err == nil, ctx.Err() != nil, errors.Is(err, net.ErrClosed):
	case errors.Is(err, ErrTooLarge):
		s.log.Info("ctl: client sent an oversized request", "peer", peer.String())
		lingerClose(c)
	default:
		// The client went away, timed out or stopped reading: that ends
		// this client only.
		s.log.Debug("ctl: client ended", "peer", peer.String(), "err", err)
	}
}

// lingerClose half-closes a TCP connection and drains a little input, so
// that a reply written just before closing is not destroyed by a reset caused
// by unread request bytes. Unix sockets do not need it.
func lingerClose(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	tc.CloseWrite()
	tc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.CopyN(io.Discard, tc, 1<<20)
}
