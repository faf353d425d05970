package ctlserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlproto"
)

// Peer describes the client on the other end of a control connection.
type Peer struct {
	// Network is "unix" or "tcp" for socket clients; anything else (such as
	// "" for in-process use) is treated like TCP: read-only.
	Network string
	// Cred says whether UID, GID and PID hold the peer's credentials, taken
	// from SO_PEERCRED when it connected.
	Cred bool
	UID  uint32
	GID  uint32
	PID  int32
}

// String describes the peer for logs.
func (p Peer) String() string {
	if p.Cred {
		return fmt.Sprintf("%s(uid=%d pid=%d)", p.Network, p.UID, p.PID)
	}
	if p.Network == "" {
		return "in-process"
	}
	return p.Network
}

// authorize decides whether peer may perform op. Read-only operations are
// open to every client that can connect. Mutations need the unix socket and
// SO_PEERCRED uid 0: a TCP client's identity cannot be established, and the
// unix socket is connectable by every local user (see docs/ctl-protocol.md).
func authorize(op ctlproto.Op, peer Peer) error {
	if !op.Mutates() {
		return nil
	}
	if peer.Network != "unix" {
		return &ctl.Error{Code: ctl.CodeForbidden, Message: string(op) + " is forbidden here: changes are only accepted on the unix socket"}
	}
	if !peer.Cred {
		return &ctl.Error{Code: ctl.CodeForbidden, Message: string(op) + " is forbidden: the peer's credentials are unavailable"}
	}
	if peer.UID != 0 {
		return &ctl.Error{Code: ctl.CodeForbidden, Message: fmt.Sprintf("%s is forbidden: it needs root (peer uid %d)", op, peer.UID)}
	}
	return nil
}

type readDeadliner interface{ SetReadDeadline(time.Time) error }
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// deadlineWriter refreshes the write deadline before every write, so a
// client that stops reading is dropped after the timeout.
type deadlineWriter struct {
	w       io.Writer
	d       writeDeadliner
	timeout time.Duration
}

func (dw deadlineWriter) Write(p []byte) (int, error) {
	if dw.d != nil {
		if err := dw.d.SetWriteDeadline(time.Now().Add(dw.timeout)); err != nil {
			return 0, err
		}
	}
	return dw.w.Write(p)
}

// ServeConn serves requests read from r, writing replies to w, until r ends,
// a write fails, a line is too long or ctx is cancelled. It is what the
// server runs for each socket client; tests call it directly. If r or w has
// SetReadDeadline/SetWriteDeadline, the idle and write timeouts are applied.
// The returned error describes why the conversation ended (nil at EOF).
func (s *Server) ServeConn(ctx context.Context, r io.Reader, w io.Writer, peer Peer) error {
	rd, _ := r.(readDeadliner)
	wd, _ := w.(writeDeadliner)
	br := bufio.NewReaderSize(r, 4096)
	bw := bufio.NewWriterSize(deadlineWriter{w: w, d: wd, timeout: s.cfg.WriteTimeout}, 32<<10)
	// The client must send its first request within FirstRequestTimeout and
	// each further one within IdleTimeout of the previous reply. Blank lines
	// do not move the deadline, so they cannot keep a connection open. The
	// read deadline only matters while reading: a long reply being written
	// is bounded by WriteTimeout per write instead.
	deadline := time.Now().Add(s.cfg.FirstRequestTimeout)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if rd != nil {
			if err := rd.SetReadDeadline(deadline); err != nil {
				return fmt.Errorf("ctl: set read deadline: %w", err)
			}
		}
		line, err := ctlproto.ReadLine(br, s.cfg.MaxRequestLine)
		if errors.Is(err, ctlproto.ErrLineTooLong) {
			rep := ctlproto.Response{Error: &ctlproto.Error{Code: string(ctl.CodeTooLarge),
				Message: fmt.Sprintf("request line longer than %d bytes", s.cfg.MaxRequestLine)}}
			if werr := writeLine(bw, rep); werr != nil {
				return werr
			}
			if werr := bw.Flush(); werr != nil {
				return werr
			}
			return ctl.ErrTooLarge
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ctl: read request: %w", err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if err := s.handleLine(ctx, line, bw, peer); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		deadline = time.Now().Add(s.cfg.IdleTimeout)
	}
}

// writeLine encodes v as one JSON line. The protocol version is filled in.
func writeLine(bw *bufio.Writer, v any) error {
	switch r := v.(type) {
	case ctlproto.Response:
		r.V = ctlproto.ProtocolVersion
		v = r
	case ctlproto.StreamItem:
		r.V = ctlproto.ProtocolVersion
		v = r
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("ctl: encode reply: %w", err)
	}
	b = append(b, '\n')
	_, err = bw.Write(b)
	return err
}

// replyErr writes an error reply for id. The message is the error's text,
// or for a *ctl.Error its Message (so that a sentinel's "ctl: ..." prefix is
// not repeated by the client, which adds its own).
func replyErr(bw *bufio.Writer, id uint64, err error) error {
	ce := &ctlproto.Error{Code: string(codeOf(err)), Message: err.Error(), Pending: errors.Is(err, ctl.ErrPending)}
	var e *ctl.Error
	if errors.As(err, &e) {
		ce.Message = e.Message
	}
	return writeLine(bw, ctlproto.Response{ID: id, Error: ce})
}

// replyOK writes a success reply; result nil means no result member.
func replyOK(bw *bufio.Writer, id uint64, result any) error {
	rep := ctlproto.Response{ID: id, OK: true}
	if result != nil {
		b, err := json.Marshal(result)
		if err != nil {
			return replyErr(bw, id, fmt.Errorf("encode result: %w", err))
		}
		rep.Result = b
	}
	return writeLine(bw, rep)
}

// handleLine parses one request and writes its reply (one line, or the
// netstat stream). Only write errors are returned; they end the connection.
func (s *Server) handleLine(ctx context.Context, line []byte, bw *bufio.Writer, peer Peer) (err error) {
	var req ctlproto.Request
	if uerr := json.Unmarshal(line, &req); uerr != nil {
		return replyErr(bw, 0, &ctl.Error{Code: ctl.CodeBadRequest, Message: "malformed request: " + uerr.Error()})
	}
	if req.V != ctlproto.ProtocolVersion {
		msg := fmt.Sprintf("protocol version %d not supported; this server speaks %d", req.V, ctlproto.ProtocolVersion)
		if req.V == 0 {
			msg = fmt.Sprintf(`missing "v"; this server speaks %d`, ctlproto.ProtocolVersion)
		}
		return replyErr(bw, req.ID, &ctl.Error{Code: ctl.CodeUnsupportedVersion, Message: msg})
	}
	ownerOnly := false // cache.flush by a user who must own the connection
	if aerr := authorize(req.Op, peer); aerr != nil {
		if req.Op == ctlproto.OpCacheFlush && peer.Network == "unix" && peer.Cred && s.cfg.SocketOwner != nil {
			ownerOnly = true
		} else {
			// Debug, not Info: any local user could otherwise flood the log.
			s.log.Debug("ctl: refused", "op", string(req.Op), "peer", peer.String())
			return replyErr(bw, req.ID, aerr)
		}
	}
	// A panicking backend is a daemon bug, but it must not take the daemon
	// down through its control socket: report it as internal and go on.
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("ctl: panic in handler", "op", string(req.Op), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			// Whatever is buffered consists of whole lines (the backend panicked,
			// not a write), so the error reply still ends the reply properly.
			err = replyErr(bw, req.ID, &ctl.Error{Code: ctl.CodeInternal, Message: "handler failed"})
		}
	}()
	bctx, cancel := context.WithTimeout(ctx, s.cfg.BackendTimeout)
	defer cancel()
	if ownerOnly {
		return s.cacheFlush(bctx, req, bw, &peer)
	}
	return s.dispatch(bctx, req, bw)
}

// dispatch runs one validated, authorised request.
func (s *Server) dispatch(ctx context.Context, req ctlproto.Request, bw *bufio.Writer) error {
	switch req.Op {
	case ctlproto.OpVersion:
		return replyOK(bw, req.ID, ctl.VersionInfo{Protocol: ctlproto.ProtocolVersion, Daemon: s.cfg.DaemonVersion})
	case ctlproto.OpStatus:
		st, err := s.cfg.Backend.Status(ctx)
		if err != nil {
			return replyErr(bw, req.ID, err)
		}
		return replyOK(bw, req.ID, st)
	case ctlproto.OpNetstat:
		return s.netstat(ctx, req, bw)
	case ctlproto.OpSessID:
		var a ctlproto.SessIDArgs
		if err := decodeArgs(req.Args, &a); err != nil {
			return replyErr(bw, req.ID, err)
		}
		if !a.Local.IsValid() || !a.Remote.IsValid() {
			return replyErr(bw, req.ID, &ctl.Error{Code: ctl.CodeBadRequest, Message: "sessid needs local and remote addresses"})
		}
		a.Local = ctlproto.Canonical(a.Local)
		a.Remote = ctlproto.Canonical(a.Remote)
		c, err := s.cfg.Backend.SessionID(ctx, a.Local, a.Remote)
		if err == nil && len(c.SessionID) == 0 {
			err = &ctl.Error{Code: ctl.CodeNoSession, Message: "no session id"}
		}
		if err != nil {
			return replyErr(bw, req.ID, connError(a.Local, a.Remote, err))
		}
		return replyOK(bw, req.ID, c)
	case ctlproto.OpRulesList:
		rules, err := s.cfg.Backend.Rules(ctx)
		if err != nil {
			return replyErr(bw, req.ID, err)
		}
		if rules == nil {
			rules = []ctl.Rule{}
		}
		return replyOK(bw, req.ID, ctlproto.RulesResult[ctl.Rule]{Rules: rules})
	case ctlproto.OpCacheFlush:
		return s.cacheFlush(ctx, req, bw, nil)
	case ctlproto.OpRulesAdd, ctlproto.OpRulesDel:
		var r ctl.Rule
		if err := decodeArgs(req.Args, &r); err != nil {
			return replyErr(bw, req.ID, err)
		}
		if err := r.Validate(); err != nil {
			return replyErr(bw, req.ID, err)
		}
		var err error
		if req.Op == ctlproto.OpRulesAdd {
			err = s.cfg.Backend.AddRule(ctx, r)
		} else {
			err = s.cfg.Backend.DelRule(ctx, r)
		}
		if err != nil {
			return replyErr(bw, req.ID, &ctl.Error{Code: codeOf(err), Message: fmt.Sprintf("%s %s: %s", req.Op, r, detail(err))})
		}
		s.log.Info("ctl: rule changed", "op", string(req.Op), "rule", r.String())
		return replyOK(bw, req.ID, nil)
	}
	return replyErr(bw, req.ID, &ctl.Error{Code: ctl.CodeBadRequest, Message: fmt.Sprintf("unknown op %q", req.Op)})
}

// cacheFlush serves OpCacheFlush: the connection's endpoints, as for
// sessid, and the count of flushed secrets. With owner set (a peer that is
// not root), the connection's socket on this host must belong to the
// peer's uid.
func (s *Server) cacheFlush(ctx context.Context, req ctlproto.Request, bw *bufio.Writer, owner *Peer) error {
	var a ctlproto.SessIDArgs
	if err := decodeArgs(req.Args, &a); err != nil {
		return replyErr(bw, req.ID, err)
	}
	if !a.Local.IsValid() || !a.Remote.IsValid() {
		return replyErr(bw, req.ID, &ctl.Error{Code: ctl.CodeBadRequest, Message: "cache.flush needs local and remote addresses"})
	}
	a.Local, a.Remote = ctlproto.Canonical(a.Local), ctlproto.Canonical(a.Remote)
	if owner != nil {
		uid, err := s.cfg.SocketOwner(ctx, a.Local, a.Remote)
		if err != nil || uid != owner.UID {
			why := fmt.Sprintf("its socket belongs to uid %d", uid)
			if err != nil {
				why = "no connected socket of it was found: " + err.Error()
			}
			s.log.Debug("ctl: refused", "op", string(req.Op), "peer", owner.String(), "why", why)
			return replyErr(bw, req.ID, &ctl.Error{Code: ctl.CodeForbidden, Message: fmt.Sprintf(
				"cache.flush of %s -> %s is forbidden for uid %d: %s (root may flush any connection, other users their own)",
				a.Local, a.Remote, owner.UID, why)})
		}
	}
	n, err := s.cfg.Backend.FlushCache(ctx, a.Local, a.Remote)
	if err != nil {
		return replyErr(bw, req.ID, connError(a.Local, a.Remote, err))
	}
	s.log.Info("ctl: cache flushed", "local", a.Local.String(), "remote", a.Remote.String(), "flushed", n)
	return replyOK(bw, req.ID, ctlproto.CacheFlushResult{Flushed: n})
}

// netstat streams every connection as its own line, then the final line with
// the count, so no listing is ever cut short by a size limit.
func (s *Server) netstat(ctx context.Context, req ctlproto.Request, bw *bufio.Writer) error {
	conns, err := s.cfg.Backend.Connections(ctx)
	if err != nil {
		return replyErr(bw, req.ID, err)
	}
	for i := range conns {
		b, err := json.Marshal(&conns[i])
		if err != nil {
			return replyErr(bw, req.ID, fmt.Errorf("encode connection %d: %w", i, err))
		}
		if err := writeLine(bw, ctlproto.StreamItem{ID: req.ID, Item: b}); err != nil {
			return err
		}
	}
	return replyOK(bw, req.ID, ctlproto.NetstatResult{Count: len(conns)})
}

// decodeArgs decodes a request's arguments strictly (unknown members are
// refused, so that a misspelt field is not silently ignored).
func decodeArgs(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return &ctl.Error{Code: ctl.CodeBadRequest, Message: "missing args"}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &ctl.Error{Code: ctl.CodeBadRequest, Message: "bad args: " + err.Error()}
	}
	return nil
}

// connError gives a sessid failure its one message, naming the connection
// once: "LOCAL -> REMOTE: " and the backend's detail. A backend *ctl.Error
// keeps its code and pending flag; a sentinel-wrapped error its code, with
// the text after the sentinel's own.
func connError(local, remote netip.AddrPort, err error) error {
	ce := &ctl.Error{Code: codeOf(err), Message: detail(err), Pending: errors.Is(err, ctl.ErrPending)}
	ce.Message = fmt.Sprintf("%s -> %s: %s", local, remote, ce.Message)
	return ce
}

// detail is err's message without a leading "ctl: " (the client adds one)
// or, for a *ctl.Error, its Message.
func detail(err error) string {
	var e *ctl.Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return strings.TrimPrefix(err.Error(), "ctl: ")
}

// codeOf maps a backend error to the reply code.
func codeOf(err error) ctl.Code {
	var ce *ctl.Error
	switch {
	case errors.As(err, &ce):
		return ce.Code
	case errors.Is(err, ctl.ErrNotEncrypted), errors.Is(err, ctl.ErrPending):
		return ctl.CodeNoSession
	case errors.Is(err, ctl.ErrNotFound):
		return ctl.CodeNotFound
	case errors.Is(err, ctl.ErrForbidden):
		return ctl.CodeForbidden
	case errors.Is(err, ctl.ErrBadRequest):
		return ctl.CodeBadRequest
	}
	return ctl.CodeInternal
}
