package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

// Start-up check bounds. Every wait of a check is bounded; the whole check
// cannot hold the daemon back for more than a few seconds.
const (
	checkDialTimeout = 3 * time.Second
	checkIOTimeout   = 5 * time.Second
	checkSessionWait = 3 * time.Second
	checkPoll        = 20 * time.Millisecond
	// checkCloseWait bounds the wait for the self-test connections' FINs.
	checkCloseWait = 2 * time.Second
	checkHello     = "tcpcrypt check\n"
	maxCheckLine   = 256
	// checkServerClients bounds the check server's concurrent clients.
	checkServerClients = 16
)

// Check results as shown in ctl.Status.
const (
	CheckPassed  = "passed"
	CheckFailed  = "failed"
	CheckSkipped = "skipped"
)

// startupCheck runs the configured check and records its result. A failed
// check is logged as an error but does not stop the daemon: the rules are in
// place and every covered connection is still offered encryption
// (opportunistically), so stopping would only remove protection. The failure
// is visible in the log and in `tcpcryptctl status`.
func (d *Daemon) startupCheck(ctx context.Context, cfg Config) {
	var c ctl.Check
	switch {
	case cfg.NoCheck:
		// No name resolution either: a disabled check must not cost a DNS
		// lookup (the C daemon resolved its check server at every start).
		c = ctl.Check{Result: CheckSkipped, Detail: "disabled (--no-check)"}
	case cfg.CheckServer != "":
		c = d.remoteCheck(ctx, cfg.CheckServer)
	default:
		c = d.selfTest(ctx)
	}
	d.setCheck(c)
	switch c.Result {
	case CheckPassed:
		d.log.Info("start-up check passed", "detail", c.Detail)
	case CheckSkipped:
		d.log.Info("start-up check skipped", "detail", c.Detail)
	default:
		d.log.Error("start-up check FAILED: connections on covered ports may not be encrypted; "+
			"the daemon keeps running and offering encryption", "detail", c.Detail)
	}
}

func failed(format string, a ...any) ctl.Check {
	return ctl.Check{Result: CheckFailed, Detail: fmt.Sprintf(format, a...)}
}

// selfTest is the loopback self-test: for 127.0.0.1 and, when the host has
// it, ::1, it covers a throwaway port with a temporary rule (both sides, so
// that the client end is queued at output and the server end at input),
// exchanges a few bytes between a client and a server, and requires both
// ends' flows to have the same session id and opposite roles. The rules for
// both families are applied once and removed once. Each connection is
// closed with its FINs through the engines, and its closed flows are then
// forgotten, so that nothing of the check stays tracked (or listed by
// tcnetstat) after it; the temporary rules go only after that.
func (d *Daemon) selfTest(ctx context.Context) ctl.Check {
	var (
		details, notes []string
		lns            []net.Listener
		hosts          []string
	)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for _, network := range []string{"tcp4", "tcp6"} {
		host := "127.0.0.1"
		if network == "tcp6" {
			host = "::1"
		}
		ln, err := net.Listen(network, net.JoinHostPort(host, "0"))
		if err != nil {
			if network == "tcp6" {
				notes = append(notes, "::1 unavailable")
				continue
			}
			return failed("listen on %s: %v", host, err)
		}
		lns, hosts = append(lns, ln), append(hosts, host)
	}
	var ps []rules.Policy
	for _, ln := range lns {
		port := uint16(ln.Addr().(*net.TCPAddr).Port)
		if !slices.ContainsFunc(ps, func(p rules.Policy) bool { return p.Port == port }) {
			ps = append(ps, rules.Policy{Port: port, Side: rules.SideBoth, Mode: rules.ModeOpportunistic})
		}
	}
	id, err := d.addTemp(ps...)
	if err != nil {
		return failed("temporary rules for ports %v: %v", portsOf(ps), err)
	}
	defer d.removeTemp(id)
	var flows []engine.Flow
	defer func() { d.forgetCheckFlows(ctx, flows) }()
	for i, ln := range lns {
		sid, fl, err := d.selfTestOne(ctx, ln)
		flows = append(flows, fl...)
		if err != nil {
			return failed("%s: %v", hosts[i], err)
		}
		details = append(details, fmt.Sprintf("%s session %s", hosts[i], short(sid)))
	}
	return ctl.Check{Result: CheckPassed, Detail: "loopback: " + strings.Join(append(details, notes...), "; ")}
}

func portsOf(ps []rules.Policy) []uint16 {
	out := make([]uint16, len(ps))
	for i, p := range ps {
		out[i] = p.Port
	}
	return out
}

// selfTestOne runs one check connection to ln. It returns the session id
// and, once the connection is over, the engine flows of both its ends
// (client, then server) for forgetCheckFlows; on an error the flows it
// knows of so far.
func (d *Daemon) selfTestOne(ctx context.Context, ln net.Listener) (sid []byte, flows []engine.Flow, err error) {
	ctx, cancel := context.WithTimeout(ctx, checkIOTimeout+checkSessionWait+checkCloseWait)
	defer cancel()

	type accepted struct {
		c   net.Conn
		err error
	}
	acc := make(chan accepted, 1)
	srvDone := make(chan struct{})
	go func() {
		defer close(srvDone)
		c, err := ln.Accept()
		if err != nil {
			acc <- accepted{nil, err}
			return
		}
		defer c.Close()
		// Echo the hello line back; bounded by the deadline.
		c.SetDeadline(time.Now().Add(checkIOTimeout))
		r := bufio.NewReader(io.LimitReader(c, maxCheckLine))
		line, rerr := r.ReadString('\n')
		if rerr == nil {
			_, rerr = io.WriteString(c, line)
		}
		acc <- accepted{c, rerr}
		if rerr != nil {
			return
		}
		// Close only after the client did (its FIN read as EOF), so that
		// both FINs pass the engines while the check's rules stand.
		_, _ = io.Copy(io.Discard, io.LimitReader(c, maxCheckLine))
	}()
	var dialer net.Dialer
	dctx, dcancel := context.WithTimeout(ctx, checkDialTimeout)
	client, err := dialer.DialContext(dctx, ln.Addr().Network(), ln.Addr().String())
	dcancel()
	if err != nil {
		ln.Close() // unblocks Accept
		<-srvDone
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	defer client.Close()
	stop := context.AfterFunc(ctx, func() { client.Close(); ln.Close() })
	defer stop()
	client.SetDeadline(time.Now().Add(checkIOTimeout))
	if _, err := io.WriteString(client, checkHello); err != nil {
		return nil, nil, fmt.Errorf("write: %w", err)
	}
	echo, err := bufio.NewReader(client).ReadString('\n')
	a := <-acc
	switch {
	case a.err != nil:
		return nil, nil, fmt.Errorf("server side: %w", a.err)
	case err != nil:
		return nil, nil, fmt.Errorf("read echo: %w", err)
	case echo != checkHello:
		return nil, nil, fmt.Errorf("echo came back altered: %q", echo)
	}
	cl, cr := tcpAddrs(client)
	sl, sr := tcpAddrs(a.c)
	flows = []engine.Flow{{Local: cl, Remote: cr}, {Local: sl, Remote: sr}}
	cfi, err := d.waitSession(ctx, cl, cr)
	if err != nil {
		return nil, flows, fmt.Errorf("client end: %w", err)
	}
	sfi, err := d.waitSession(ctx, sl, sr)
	if err != nil {
		return nil, flows, fmt.Errorf("server end: %w", err)
	}
	if !bytes.Equal(cfi.SessionID, sfi.SessionID) {
		return nil, flows, fmt.Errorf("session ids differ: client %x, server %x", cfi.SessionID, sfi.SessionID)
	}
	if cfi.Role == sfi.Role {
		return nil, flows, fmt.Errorf("both ends have role %v", cfi.Role)
	}
	// The client closes first; the server answers its FIN with its own.
	client.Close()
	select {
	case <-srvDone:
	case <-ctx.Done():
	}
	return cfi.SessionID, flows, nil
}

// forgetCheckFlows waits, for at most checkCloseWait, until the engines see
// the check's flows closed (both FINs acknowledged) or no longer track
// them, then makes the engines forget the closed ones at once instead of
// letting them linger, and releases their guard protection. A flow that
// does not close in time is left to the engine's own timers.
func (d *Daemon) forgetCheckFlows(ctx context.Context, flows []engine.Flow) {
	if len(flows) == 0 || d.disp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkCloseWait)
	defer cancel()
	pending := slices.Clone(flows)
	for {
		tracked := map[engine.Flow]bool{}
		var unprotect []engine.Flow
		err := d.eachEngine(ctx, func(e *engine.Engine) {
			for _, fl := range pending {
				if _, ok := e.Lookup(fl.Local, fl.Remote); !ok {
					continue
				}
				if r, ok := e.ForgetClosed(fl); ok {
					unprotect = append(unprotect, r.Unprotect...)
					continue
				}
				tracked[fl] = true
			}
		})
		if len(unprotect) > 0 && d.guard != nil {
			if uerr := d.guard.Unprotect(unprotect...); uerr != nil {
				d.log.Warn("self-test: could not release protected flows", "err", uerr)
			}
		}
		if err != nil {
			d.log.Warn("self-test: could not reach the engines to forget the check's flows", "err", err)
			return
		}
		pending = slices.DeleteFunc(pending, func(fl engine.Flow) bool { return !tracked[fl] })
		if len(pending) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			d.log.Warn("self-test: check connections did not close in time; their flows expire on their own",
				"flows", len(pending), "wait", checkCloseWait)
			return
		case <-time.After(checkPoll):
		}
	}
}

// waitSession polls the engines until the flow (local, remote) has a
// session id, and explains why when it does not get one in time.
func (d *Daemon) waitSession(ctx context.Context, local, remote netip.AddrPort) (engine.FlowInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, checkSessionWait)
	defer cancel()
	var (
		fi    engine.FlowInfo
		found bool
	)
	for {
		var err error
		fi, found, err = d.lookup(ctx, local, remote)
		if err == nil && found && len(fi.SessionID) > 0 {
			return fi, nil
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			return fi, fmt.Errorf("%w: %w", errNoEngines, err)
		}
		select {
		case <-ctx.Done():
			if !found {
				return fi, fmt.Errorf("%v -> %v not tracked by the engines (not queued?)", local, remote)
			}
			c := ConnFromFlow(fi)
			return fi, fmt.Errorf("%v -> %v: no session id (state %s%s)", local, remote, c.State,
				prefixed(", ", c.LastError))
		case <-time.After(checkPoll):
		}
	}
}

// remoteCheck connects to a check server (host[:port], resolved now and not
// before) through a temporary rule covering that address and port, and
// compares the session id the server reports with ours.
func (d *Daemon) remoteCheck(ctx context.Context, server string) ctl.Check {
	ctx, cancel := context.WithTimeout(ctx, checkDialTimeout+checkIOTimeout+checkSessionWait)
	defer cancel()
	host, port, err := SplitCheckServer(server)
	if err != nil {
		return failed("check server %q: %v", server, err)
	}
	rctx, rcancel := context.WithTimeout(ctx, checkDialTimeout)
	addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	rcancel()
	if err != nil || len(addrs) == 0 {
		return failed("check server %s: resolve: %v", host, err)
	}
	addr := addrs[0].Unmap()
	raddr := netip.AddrPortFrom(addr, port)
	pfx := netip.PrefixFrom(addr, addr.BitLen())
	id, err := d.addTemp(rules.Policy{Port: port, Side: rules.SideRemote, Prefix: pfx, Mode: rules.ModeOpportunistic})
	switch {
	case errors.Is(err, rules.ErrDuplicate):
		// An existing rule decides for this port and address.
	case err != nil:
		return failed("temporary rule for %v: %v", raddr, err)
	default:
		defer d.removeTemp(id)
	}
	var dialer net.Dialer
	dctx, dcancel := context.WithTimeout(ctx, checkDialTimeout)
	c, err := dialer.DialContext(dctx, "tcp", raddr.String())
	dcancel()
	if err != nil {
		return failed("check server %v: connect: %v", raddr, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	// Runs before the temporary rule goes: the server closes after its
	// answer, we close after reading it, and our closed flow is forgotten.
	defer func() {
		c.Close()
		local, remote := tcpAddrs(c)
		d.forgetCheckFlows(ctx, []engine.Flow{{Local: local, Remote: remote}})
	}()
	c.SetDeadline(time.Now().Add(checkIOTimeout + checkSessionWait))
	if _, err := io.WriteString(c, checkHello); err != nil {
		return failed("check server %v: write: %v", raddr, err)
	}
	line, err := bufio.NewReader(io.LimitReader(c, maxCheckLine)).ReadString('\n')
	if err != nil && line == "" {
		return failed("check server %v: read: %v", raddr, err)
	}
	theirs, perr := hex.DecodeString(strings.TrimSpace(line))
	local, remote := tcpAddrs(c)
	fi, err := d.waitSession(ctx, local, remote)
	switch {
	case err != nil:
		return failed("check server %v: our end: %v (server said %q)", raddr, err, strings.TrimSpace(line))
	case perr != nil || len(theirs) == 0:
		return failed("check server %v reports no session id: %q", raddr, strings.TrimSpace(line))
	case !bytes.Equal(theirs, fi.SessionID):
		return failed("check server %v: session ids differ: ours %x, server's %x (someone in the middle?)",
			raddr, fi.SessionID, theirs)
	}
	return ctl.Check{Result: CheckPassed, Detail: fmt.Sprintf("check server %v: session %s", raddr, short(fi.SessionID))}
}

// checkServer answers check clients (--check-listen): for each connection it
// reads the client's hello line (if one comes within the timeout), waits for
// the connection's session id and writes it as hex and a newline, or
// "none: REASON" when there is none, then closes.
type checkServer struct {
	d  *Daemon
	ln net.Listener
}

func (d *Daemon) listenCheckServer(addr string) (*checkServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("check server: %w", err)
	}
	d.log.Info("check server listening", "address", ln.Addr().String())
	return &checkServer{d: d, ln: ln}, nil
}

func (s *checkServer) serve(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	sem := make(chan struct{}, checkServerClients)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-time.After(50 * time.Millisecond):
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case sem <- struct{}{}:
		default:
			c.Close() // too many at once
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			s.answer(ctx, c)
		})
	}
}

func (s *checkServer) answer(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	c.SetReadDeadline(time.Now().Add(checkIOTimeout / 2))
	_, _ = bufio.NewReader(io.LimitReader(c, maxCheckLine)).ReadString('\n')
	local, remote := tcpAddrs(c)
	fi, err := s.d.waitSession(ctx, local, remote)
	c.SetWriteDeadline(time.Now().Add(checkIOTimeout))
	if err != nil {
		fmt.Fprintf(c, "none: %v\n", err)
		return
	}
	fmt.Fprintf(c, "%x\n", fi.SessionID)
	// Close first, wait for the client's FIN (EOF), and forget the closed
	// flow rather than let it linger.
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
		c.SetReadDeadline(time.Now().Add(checkIOTimeout))
		_, _ = io.Copy(io.Discard, io.LimitReader(c, maxCheckLine))
	}
	c.Close()
	s.d.forgetCheckFlows(ctx, []engine.Flow{{Local: local, Remote: remote}})
}

// parseListen parses a --check-listen address (host:port or :port).
func parseListen(s string) (netip.AddrPort, error) {
	return netip.ParseAddrPort(normalizeListen(s))
}

func tcpAddrs(c net.Conn) (local, remote netip.AddrPort) {
	if c == nil {
		return
	}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		local = unmapAP(a.AddrPort())
	}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		remote = unmapAP(a.AddrPort())
	}
	return local, remote
}

// short abbreviates a session id for logs: the TEP byte and the next 8
// bytes.
func short(sid []byte) string {
	if len(sid) > 9 {
		return hex.EncodeToString(sid[:9]) + "..."
	}
	return hex.EncodeToString(sid)
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}
