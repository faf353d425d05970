package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/tcpcryptd/tcpcrypt/internal/ctlproto"
)

// DefaultTimeout bounds dialling, and each step of a call (sending the
// request, receiving each reply line), when the context has no deadline. A
// context deadline, longer or shorter, bounds the whole call instead.
const DefaultTimeout = 5 * time.Second

// Client is a connection to the daemon's control socket. Its methods may be
// called from several goroutines; calls are serialised. After a transport
// error (daemon gone, timeout) every call fails with ErrDaemonUnavailable;
// dial again.
type Client struct {
	addr Address
	// trust is nil when the daemon's answers about session ids may be
	// believed, else why not (matching ErrUntrustedDaemon); see Dialer.
	trust error

	mu     sync.Mutex
	conn   net.Conn
	br     *bufio.Reader
	nextID uint64
	broken error
}

// Dialer connects to the daemon with options. The zero Dialer is what Dial
// uses: the default address and a daemon that must run as root.
type Dialer struct {
	// Address is the control address (see ParseAddress); empty means
	// $TCPCRYPT_CTL, or DefaultAddress when that is unset.
	Address string
	// DaemonUID is the uid the daemon must run as, checked when connecting:
	// on a unix socket with SO_PEERCRED, on a loopback TCP address by
	// asking the kernel (sock_diag) who owns the server's end of the
	// connection. Zero means root (which tcpcryptd runs as) or the uid of
	// this process: a server run by the same user can do nothing that
	// user's own processes could not already do to it, and accepting it
	// lets an application's tests run their own server. Any other value
	// means exactly that uid. Session ids (ConnInfo, SessionID,
	// SessionIDFor, WaitSession) are only returned from a daemon that
	// passed the check; other operations work either way.
	DaemonUID uint32
}

// Dial connects to the daemon at addr with the zero Dialer's options: an
// empty addr means $TCPCRYPT_CTL, or DefaultAddress when that is unset.
// Failure to connect matches ErrDaemonUnavailable.
func Dial(ctx context.Context, addr string) (*Client, error) {
	return Dialer{Address: addr}.Dial(ctx)
}

// Dial connects to the daemon. Failure to connect matches
// ErrDaemonUnavailable; a bad address, ErrBadAddress.
func (d Dialer) Dial(ctx context.Context) (*Client, error) {
	a, err := clientAddress(d.Address)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	var nd net.Dialer
	var conn net.Conn
	switch a.Network {
	case "unix":
		conn, err = nd.DialContext(ctx, "unix", a.Path)
	default:
		for _, h := range ctlproto.LoopbackHosts(a.Host) {
			conn, err = nd.DialContext(ctx, "tcp", netip.AddrPortFrom(h, a.Port).String())
			if err == nil {
				break
			}
		}
	}
	if err != nil {
		return nil, daemonError(a.String(), "dial", err)
	}
	c := &Client{addr: a, conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}
	c.trust = checkDaemon(conn, a, d.DaemonUID)
	return c, nil
}

// checkDaemon decides whether session ids from the server on conn may be
// believed: the uid that owns the server's socket must be want (for a zero
// want: root or this process's uid). On a unix
// socket that is its SO_PEERCRED uid; on a loopback TCP connection, the
// owner of the server's end as sock_diag reports it.
func checkDaemon(conn net.Conn, a Address, want uint32) error {
	var uid uint32
	var err error
	switch c := conn.(type) {
	case *net.UnixConn:
		uid, err = serverUID(c)
	case *net.TCPConn:
		uid, err = tcpServerUID(c)
	default:
		err = fmt.Errorf("%T has no owner to check", conn)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUntrustedDaemon, a, err)
	}
	switch me := uint32(os.Getuid()); {
	case want == 0 && (uid == 0 || uid == me):
	case want == 0:
		return fmt.Errorf("%w: %s is served by uid %d, not root (or this process's uid %d); not believing its session ids", ErrUntrustedDaemon, a, uid, me)
	case uid != want:
		return fmt.Errorf("%w: %s is served by uid %d, not uid %d; not believing its session ids", ErrUntrustedDaemon, a, uid, want)
	}
	return nil
}

// Close closes the connection.
// A call in progress fails at once.
func (c *Client) Close() error {
	err := c.conn.Close() // first, so that a call in progress returns
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken == nil {
		c.broken = net.ErrClosed
	}
	return err
}

// Addr returns the address the client is connected to.
func (c *Client) Addr() Address { return c.addr }

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// Version returns the protocol and daemon versions.
func (c *Client) Version(ctx context.Context) (VersionInfo, error) {
	var v VersionInfo
	err := c.call(ctx, ctlproto.OpVersion, nil, &v, nil)
	return v, err
}

// Status returns the daemon's summary.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.call(ctx, ctlproto.OpStatus, nil, &st, nil)
	return st, err
}

// Netstat returns every connection the daemon tracks. The reply is streamed
// and its final count is checked, so the listing is never silently cut.
func (c *Client) Netstat(ctx context.Context) ([]Conn, error) {
	var conns []Conn
	var res ctlproto.NetstatResult
	err := c.call(ctx, ctlproto.OpNetstat, nil, &res, func(item json.RawMessage) error {
		var cn Conn
		if err := json.Unmarshal(item, &cn); err != nil {
			return fmt.Errorf("%w: netstat item: %w", ErrProtocol, err)
		}
		conns = append(conns, cn)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if res.Count != len(conns) {
		return nil, fmt.Errorf("%w: netstat streamed %d connections but announced %d", ErrProtocol, len(conns), res.Count)
	}
	return conns, nil
}

// SessionIDFor returns the connection local -> remote (as seen from the
// daemon's host) with its session id. Errors match ErrNotFound when the
// daemon does not track it, ErrNotEncrypted when it is plain TCP,
// ErrPending while its key exchange runs, and ErrUntrustedDaemon when the
// daemon failed the Dialer's uid check.
func (c *Client) SessionIDFor(ctx context.Context, local, remote netip.AddrPort) (Conn, error) {
	if c.trust != nil {
		return Conn{}, c.trust
	}
	local, remote = ctlproto.Canonical(local), ctlproto.Canonical(remote)
	var cn Conn
	err := c.call(ctx, ctlproto.OpSessID, ctlproto.SessIDArgs{Local: local, Remote: remote}, &cn, nil)
	if err != nil {
		return Conn{}, err
	}
	if len(cn.SessionID) == 0 {
		return Conn{}, &Error{Code: CodeNoSession, Message: fmt.Sprintf("%s -> %s: the daemon replied without a session id", local, remote)}
	}
	if cn.Role != RoleA && cn.Role != RoleB {
		return Conn{}, fmt.Errorf("%w: session of %s -> %s has no role", ErrProtocol, local, remote)
	}
	return cn, nil
}

// Rules returns the installed policy rules.
func (c *Client) Rules(ctx context.Context) ([]Rule, error) {
	var res ctlproto.RulesResult[Rule]
	err := c.call(ctx, ctlproto.OpRulesList, nil, &res, nil)
	return res.Rules, err
}

// AddRule installs r. It needs root on the unix socket (ErrForbidden
// otherwise).
func (c *Client) AddRule(ctx context.Context, r Rule) error {
	return c.call(ctx, ctlproto.OpRulesAdd, r, nil, nil)
}

// DelRule removes r (ErrNotFound if absent). It needs root on the unix
// socket.
func (c *Client) DelRule(ctx context.Context, r Rule) error {
	return c.call(ctx, ctlproto.OpRulesDel, r, nil, nil)
}

// FlushCache asks the daemon to flush the resumption cache state of the
// connection local -> remote (as seen from the daemon's host): the cached
// session secret the connection used or created goes, so no later
// connection can resume from it, and the connection caches none later
// (RFC 8548 §3.5). It returns how many secrets went; 0 means the
// connection left none in the cache (it resumed and cached nothing, or was
// never encrypted). It needs the unix socket and either root or the uid
// that owns the connection's socket on the daemon's host, so that an
// application may flush its own connections (errors match ErrForbidden
// otherwise), and fails matching ErrNotFound when the daemon does not
// track the connection.
func (c *Client) FlushCache(ctx context.Context, local, remote netip.AddrPort) (int, error) {
	local, remote = ctlproto.Canonical(local), ctlproto.Canonical(remote)
	var res ctlproto.CacheFlushResult
	if err := c.call(ctx, ctlproto.OpCacheFlush, ctlproto.SessIDArgs{Local: local, Remote: remote}, &res, nil); err != nil {
		return 0, err
	}
	return res.Flushed, nil
}

// replyLine is the union of a StreamItem and a Response, to tell them apart.
type replyLine struct {
	V      int             `json:"v"`
	ID     uint64          `json:"id"`
	OK     *bool           `json:"ok"`
	Item   json.RawMessage `json:"item"`
	Result json.RawMessage `json:"result"`
	Error  *ctlproto.Error `json:"error"`
}

// call sends one request and reads its reply. Streamed items go to item; the
// final result is decoded into result (if non-nil).
func (c *Client) call(ctx context.Context, op ctlproto.Op, args, result any, item func(json.RawMessage) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		if errors.Is(c.broken, net.ErrClosed) {
			return fmt.Errorf("ctl: %s on a closed client: %w", op, net.ErrClosed)
		}
		return daemonError(c.addr.String(), string(op), c.broken)
	}
	err := c.roundTrip(ctx, op, args, result, item)
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		if ce.Code == CodeTooLarge || ce.Code == CodeBusy {
			c.retire(err) // the server closes after these replies
		}
		return err
	}
	if errors.Is(err, ErrProtocol) {
		c.retire(err) // the stream is out of step
		return err
	}
	// The socket deadline may fire a moment before the context's own
	// timer: report the context's reason either way.
	var cause error
	if ctx.Err() != nil {
		cause = context.Cause(ctx)
	} else if dl, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
		cause = context.DeadlineExceeded
	}
	if cause != nil {
		err = fmt.Errorf("%w (%w)", err, cause)
	}
	c.retire(err)
	return daemonError(c.addr.String(), string(op), err)
}

// retire closes the connection after err; later calls fail. c.mu is held.
func (c *Client) retire(err error) {
	c.broken = err
	c.conn.Close()
}

func (c *Client) roundTrip(ctx context.Context, op ctlproto.Op, args, result any, item func(json.RawMessage) error) error {
	// With a context deadline, that is the deadline of the whole call.
	// Without one, DefaultTimeout bounds each step (the request write and
	// every reply line), so a long netstat stream may take longer overall
	// but a silent daemon is given up on after DefaultTimeout.
	dl, hasDeadline := ctx.Deadline()
	refresh := func() error {
		if hasDeadline {
			return nil
		}
		return c.conn.SetDeadline(time.Now().Add(DefaultTimeout))
	}
	if err := c.conn.SetDeadline(dl); err != nil {
		return err
	}
	if err := refresh(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c.nextID++
	req := ctlproto.Request{V: ctlproto.ProtocolVersion, ID: c.nextID, Op: op}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return fmt.Errorf("ctl: encode %s args: %w", op, err)
		}
		req.Args = b
	}
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("ctl: encode %s request: %w", op, err)
	}
	// If the write fails, the server may have refused us (busy) and closed:
	// read its reply anyway, to report the reason rather than a broken pipe.
	_, werr := c.conn.Write(append(b, '\n'))
	for {
		if err := refresh(); err != nil {
			return err
		}
		line, err := ctlproto.ReadLine(c.br, ctlproto.MaxReplyLine)
		if errors.Is(err, ctlproto.ErrLineTooLong) {
			return fmt.Errorf("%w: reply line over %d bytes", ErrProtocol, ctlproto.MaxReplyLine)
		}
		if err != nil {
			if werr != nil {
				return werr
			}
			return err
		}
		var rl replyLine
		if err := json.Unmarshal(line, &rl); err != nil {
			return fmt.Errorf("%w: bad reply: %w", ErrProtocol, err)
		}
		if rl.V != ctlproto.ProtocolVersion {
			return fmt.Errorf("%w: reply version %d", ErrProtocol, rl.V)
		}
		// A server that refuses a line before parsing it (too_large, busy)
		// cannot know our id and answers with 0.
		if rl.ID != req.ID && !(rl.ID == 0 && rl.Error != nil) {
			return fmt.Errorf("%w: reply id %d for request %d", ErrProtocol, rl.ID, req.ID)
		}
		if rl.OK == nil {
			if item == nil || rl.Item == nil {
				return fmt.Errorf("%w: unexpected stream item in %s reply", ErrProtocol, op)
			}
			if err := item(rl.Item); err != nil {
				return err
			}
			continue
		}
		if !*rl.OK {
			if rl.Error == nil {
				return fmt.Errorf("%w: error reply without error", ErrProtocol)
			}
			return &Error{Code: Code(rl.Error.Code), Message: rl.Error.Message, Pending: rl.Error.Pending}
		}
		if result != nil {
			if len(rl.Result) == 0 {
				return fmt.Errorf("%w: %s reply without result", ErrProtocol, op)
			}
			if err := json.Unmarshal(rl.Result, result); err != nil {
				return fmt.Errorf("%w: %s result: %w", ErrProtocol, op, err)
			}
		}
		return nil
	}
}
