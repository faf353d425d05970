package ctlserver

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

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlproto"
)

// Default server limits, used for zero Config fields.
const (
	DefaultMaxClients = 32
	// DefaultMaxClientsPerUID bounds the concurrent clients of one unix
	// socket uid (other than 0), and those of all TCP clients together.
	DefaultMaxClientsPerUID = 8
	// DefaultRootReserve is the number of the MaxClients slots that only
	// uid 0 on the unix socket may take.
	DefaultRootReserve = 4
	// DefaultFirstRequestTimeout is how long a new client may take to send
	// its first request.
	DefaultFirstRequestTimeout = 3 * time.Second
	DefaultIdleTimeout         = 2 * time.Minute
	DefaultWriteTimeout        = 10 * time.Second
	DefaultBackendTimeout      = 10 * time.Second
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
	// MaxClientsPerUID bounds the concurrent clients of each client class: a
	// unix socket peer's SO_PEERCRED uid, or "tcp" for all TCP clients
	// together (their uid is not looked up), or one class for unix peers
	// whose credentials could not be read. Uid 0 has no per-uid bound, only
	// MaxClients. It is capped at MaxClients.
	MaxClientsPerUID int
	// RootReserve is the number of MaxClients slots kept for uid 0 on the
	// unix socket: other clients are refused once MaxClients-RootReserve
	// clients are being served. It is capped at MaxClients-1.
	RootReserve int
	// MaxRequestLine bounds one request line (default ctlproto.MaxRequestLine).
	MaxRequestLine int
	// FirstRequestTimeout is how long a new client may take to send its
	// first request line (blank lines do not count) before it is
	// disconnected.
	FirstRequestTimeout time.Duration
	// IdleTimeout is how long a client that has sent a request may take to
	// send its next request line before it is disconnected. Neither timeout
	// runs while a reply is being written (WriteTimeout bounds each write).
	IdleTimeout time.Duration
	// WriteTimeout bounds each write of a reply; a client that stops reading
	// is disconnected after it.
	WriteTimeout time.Duration
	// BackendTimeout bounds each Backend call.
	BackendTimeout time.Duration
	// SocketMode is the unix socket's permission bits (default 0666).
	SocketMode os.FileMode
	// SocketOwner, when set, returns the uid owning this host's socket of
	// the connection local -> remote (a connected one). It lets a user who
	// is not root flush the cache state of a connection of their own
	// (cache.flush, RFC 8548 §3.5); without it only root may.
	SocketOwner func(ctx context.Context, local, remote netip.AddrPort) (uint32, error)
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
	active    int            // clients being served, guarded by mu
	perClass  map[string]int // clients being served per class, guarded by mu
	refusing  chan struct{}  // slots of clients being told "busy"
}

// NewServer checks cfg, fills in defaults and returns a server without
// listeners.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("ctlserver: NewServer: nil Backend")
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.MaxClientsPerUID <= 0 {
		cfg.MaxClientsPerUID = DefaultMaxClientsPerUID
	}
	cfg.MaxClientsPerUID = min(cfg.MaxClientsPerUID, cfg.MaxClients)
	if cfg.RootReserve <= 0 {
		cfg.RootReserve = DefaultRootReserve
	}
	cfg.RootReserve = min(cfg.RootReserve, cfg.MaxClients-1)
	if cfg.FirstRequestTimeout <= 0 {
		cfg.FirstRequestTimeout = DefaultFirstRequestTimeout
	}
	if cfg.MaxRequestLine <= 0 {
		cfg.MaxRequestLine = ctlproto.MaxRequestLine
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
	return &Server{cfg: cfg, log: log, perClass: make(map[string]int),
		refusing: make(chan struct{}, max(cfg.MaxClients, 16))}, nil
}

// Listen parses addr with ctl.ParseAddress and opens its listener(s); see
// ListenAddress.
func (s *Server) Listen(addr string) error {
	a, err := ctl.ParseAddress(addr)
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
func (s *Server) ListenAddress(a ctl.Address) error {
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
		for i, h := range ctlproto.LoopbackHosts(a.Host) {
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
		return fmt.Errorf("%w: network %q", ctl.ErrBadAddress, a.Network)
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
		peer := s.peerOf(c)
		class, why := s.admit(peer)
		if why == "" {
			wg.Go(func() {
				defer s.release(class)
				s.serveNet(ctx, c, peer)
			})
			continue
		}
		select {
		case s.refusing <- struct{}{}:
			wg.Go(func() {
				defer func() { <-s.refusing }()
				s.refuseBusy(c, why)
			})
		default:
			c.Close() // flooded: not even a reply
		}
	}
}

// peerOf returns what is known of c's client: its SO_PEERCRED credentials on
// the unix socket, its network otherwise.
func (s *Server) peerOf(c net.Conn) Peer {
	peer := Peer{Network: c.LocalAddr().Network()}
	if uc, ok := c.(*net.UnixConn); ok {
		p, err := peerCred(uc)
		if err != nil {
			s.log.Warn("ctl: peer credentials", "err", err)
		}
		peer = p
	}
	return peer
}

// isRoot reports whether peer is uid 0 on the unix socket: the only peer
// that may use the reserved slots (and the only one that may mutate).
func isRoot(p Peer) bool { return p.Network == "unix" && p.Cred && p.UID == 0 }

// clientClass names the group whose clients share one MaxClientsPerUID
// budget: the uid for a unix peer with credentials, else the network (all TCP
// clients together; unix peers without credentials together).
func clientClass(p Peer) string {
	if p.Network == "unix" && p.Cred {
		return fmt.Sprintf("uid %d", p.UID)
	}
	if p.Network == "unix" {
		return "unix peers without credentials"
	}
	return p.Network
}

// admit takes a slot for peer and returns its class, or returns why the
// peer is refused.
func (s *Server) admit(p Peer) (class, why string) {
	class = clientClass(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	root := isRoot(p)
	switch {
	case s.active >= s.cfg.MaxClients:
		return class, "too many control clients; try again"
	case !root && s.active >= s.cfg.MaxClients-s.cfg.RootReserve:
		return class, "too many control clients (the remaining slots are reserved for root); try again"
	case !root && s.perClass[class] >= s.cfg.MaxClientsPerUID:
		return class, fmt.Sprintf("too many control clients for %s (at most %d); try again", class, s.cfg.MaxClientsPerUID)
	}
	s.active++
	s.perClass[class]++
	return class, ""
}

// release gives back a slot taken by admit.
func (s *Server) release(class string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.perClass[class]--; s.perClass[class] <= 0 {
		delete(s.perClass, class)
	}
}

// refuseBusy tells an over-limit client to come back later and closes it.
// It waits briefly for the client's first request, so that the client reads
// the reply (with its id) instead of failing to write.
func (s *Server) refuseBusy(c net.Conn, why string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	var req ctlproto.Request
	if line, err := ctlproto.ReadLine(bufio.NewReader(c), s.cfg.MaxRequestLine); err == nil {
		json.Unmarshal(line, &req)
	}
	b, _ := json.Marshal(ctlproto.Response{V: ctlproto.ProtocolVersion, ID: req.ID,
		Error: &ctlproto.Error{Code: string(ctl.CodeBusy), Message: why}})
	c.Write(append(b, '\n'))
	lingerClose(c)
}

// serveNet runs one socket client.
func (s *Server) serveNet(ctx context.Context, c net.Conn, peer Peer) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	err := s.ServeConn(ctx, c, c, peer)
	switch {
	case err == nil, ctx.Err() != nil, errors.Is(err, net.ErrClosed):
	case errors.Is(err, ctl.ErrTooLarge):
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
