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

	mu     sync.Mutex
	conn   net.Conn
	br     *bufio.Reader
	nextID uint64
	broken error
}

// Dial connects to the daemon at addr (see ParseAddress); an empty addr means
// $TCPCRYPT_CTL, or DefaultAddress when that is unset. Failure to connect
// matches ErrDaemonUnavailable.
func Dial(ctx context.Context, addr string) (*Client, error) {
	a, err := clientAddress(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	var d net.Dialer
	var conn net.Conn
	switch a.Network {
	case "unix":
		conn, err = d.DialContext(ctx, "unix", a.Path)
	default:
		for _, h := range a.tcpHosts() {
			conn, err = d.DialContext(ctx, "tcp", netip.AddrPortFrom(h, a.Port).String())
			if err == nil {
				break
			}
		}
	}
	if err != nil {
		return nil, daemonError(a.String(), "dial", err)
	}
	return &Client{addr: a, conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}, nil
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
	err := c.call(ctx, OpVersion, nil, &v, nil)
	return v, err
}

// Status returns the daemon's summary.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.call(ctx, OpStatus, nil, &st, nil)
	return st, err
}

// Netstat returns every connection the daemon tracks. The reply is streamed
// and its final count is checked, so the listing is never silently cut.
func (c *Client) Netstat(ctx context.Context) ([]Conn, error) {
	var conns []Conn
	var res NetstatResult
	err := c.call(ctx, OpNetstat, nil, &res, func(item json.RawMessage) error {
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
// daemon does not track it and ErrNoSession (and ErrNotEncrypted) when it
// has no session id.
func (c *Client) SessionIDFor(ctx context.Context, local, remote netip.AddrPort) (Conn, error) {
	var cn Conn
	err := c.call(ctx, OpSessID, SessIDArgs{Local: unmapAddrPort(local), Remote: unmapAddrPort(remote)}, &cn, nil)
	if err != nil {
		return Conn{}, err
	}
	if len(cn.SessionID) == 0 {
		return Conn{}, &Error{Code: CodeNoSession, Message: "daemon replied without a session id"}
	}
	return cn, nil
}

// Rules returns the installed policy rules.
func (c *Client) Rules(ctx context.Context) ([]Rule, error) {
	var res RulesResult
	err := c.call(ctx, OpRulesList, nil, &res, nil)
	return res.Rules, err
}

// AddRule installs r. It needs root on the unix socket (ErrForbidden
// otherwise).
func (c *Client) AddRule(ctx context.Context, r Rule) error {
	return c.call(ctx, OpRulesAdd, r, nil, nil)
}

// DelRule removes r (ErrNotFound if absent). It needs root on the unix
// socket.
func (c *Client) DelRule(ctx context.Context, r Rule) error {
	return c.call(ctx, OpRulesDel, r, nil, nil)
}

// replyLine is the union of a StreamItem and a Response, to tell them apart.
type replyLine struct {
	V      int             `json:"v"`
	ID     uint64          `json:"id"`
	OK     *bool           `json:"ok"`
	Item   json.RawMessage `json:"item"`
	Result json.RawMessage `json:"result"`
	Error  *Error          `json:"error"`
}

// call sends one request and reads its reply. Streamed items go to item; the
// final result is decoded into result (if non-nil).
func (c *Client) call(ctx context.Context, op Op, args, result any, item func(json.RawMessage) error) error {
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

func (c *Client) roundTrip(ctx context.Context, op Op, args, result any, item func(json.RawMessage) error) error {
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
	req := Request{V: ProtocolVersion, ID: c.nextID, Op: op}
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
		line, err := readLine(c.br, MaxReplyLine)
		if errors.Is(err, errLineTooLong) {
			return fmt.Errorf("%w: reply line over %d bytes", ErrProtocol, MaxReplyLine)
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
		if rl.V != ProtocolVersion {
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
			return rl.Error
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
