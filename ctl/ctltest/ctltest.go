// Package ctltest provides an in-memory control backend and a helper that
// runs the daemon's control server (internal/ctlserver) on a temporary unix
// socket, for tests of control clients in this module.
package ctltest

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
)

// Backend is an in-memory ctlserver.Backend. Its fields may be set before use;
// afterwards use the methods, which lock.
type Backend struct {
	mu sync.Mutex
	// StatusValue is returned by Status (with Rules and Connections filled in).
	StatusValue ctl.Status
	// Conns are the tracked connections.
	Conns []ctl.Conn
	// RuleList holds the rules.
	RuleList []ctl.Rule
	// Cached holds how many cached resumption secrets each connection
	// (local, remote) left, for FlushCache to remove.
	Cached map[[2]netip.AddrPort]int
	// Err, when set, is returned by every call.
	Err error
}

var _ ctlserver.Backend = (*Backend)(nil)

// SetConns replaces the tracked connections.
func (b *Backend) SetConns(c []ctl.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.Conns = c
}

// SetErr sets the error every call returns (nil clears it).
func (b *Backend) SetErr(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.Err = err
}

// Status implements ctlserver.Backend.
func (b *Backend) Status(context.Context) (ctl.Status, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.StatusValue
	st.Rules = len(b.RuleList)
	st.Connections = len(b.Conns)
	return st, b.Err
}

// Connections implements ctlserver.Backend.
func (b *Backend) Connections(context.Context) ([]ctl.Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Err != nil {
		return nil, b.Err
	}
	return slices.Clone(b.Conns), nil
}

// SessionID implements ctlserver.Backend. A connection without a session id
// is not encrypted when it has a FallbackReason or LastError or is in state
// "plain", and pending otherwise.
func (b *Backend) SessionID(_ context.Context, local, remote netip.AddrPort) (ctl.Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Err != nil {
		return ctl.Conn{}, b.Err
	}
	for _, c := range b.Conns {
		if c.Local == local && c.Remote == remote {
			switch {
			case len(c.SessionID) != 0:
			case c.FallbackReason != "":
				return ctl.Conn{}, &ctl.Error{Code: ctl.CodeNoSession, Message: "not encrypted: fell back to plain TCP (" + c.FallbackReason + ")"}
			case c.State == "plain" || c.LastError != "":
				return ctl.Conn{}, &ctl.Error{Code: ctl.CodeNoSession, Message: "not encrypted (state " + c.State + ")"}
			default:
				return ctl.Conn{}, &ctl.Error{Code: ctl.CodeNoSession, Pending: true, Message: "key exchange not finished (state " + c.State + ")"}
			}
			return c, nil
		}
	}
	return ctl.Conn{}, &ctl.Error{Code: ctl.CodeNotFound, Message: "not tracked"}
}

// FlushCache implements ctlserver.Backend: a connection not in Conns is
// not found ("not tracked", as SessionID answers); a tracked one has its
// Cached count removed and returned.
func (b *Backend) FlushCache(_ context.Context, local, remote netip.AddrPort) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Err != nil {
		return 0, b.Err
	}
	if !slices.ContainsFunc(b.Conns, func(c ctl.Conn) bool { return c.Local == local && c.Remote == remote }) {
		return 0, &ctl.Error{Code: ctl.CodeNotFound, Message: "not tracked"}
	}
	k := [2]netip.AddrPort{local, remote}
	n := b.Cached[k]
	delete(b.Cached, k)
	return n, nil
}

// Rules implements ctlserver.Backend.
func (b *Backend) Rules(context.Context) ([]ctl.Rule, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.RuleList), b.Err
}

// AddRule implements ctlserver.Backend; a duplicate wraps ctl.ErrBadRequest.
func (b *Backend) AddRule(_ context.Context, r ctl.Rule) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Err != nil {
		return b.Err
	}
	if slices.ContainsFunc(b.RuleList, r.Equal) {
		return fmt.Errorf("%w: duplicate rule", ctl.ErrBadRequest)
	}
	b.RuleList = append(b.RuleList, r)
	return nil
}

// DelRule implements ctlserver.Backend; a missing rule is a not_found error
// saying "no such rule", as the daemon answers.
func (b *Backend) DelRule(_ context.Context, r ctl.Rule) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Err != nil {
		return b.Err
	}
	i := slices.IndexFunc(b.RuleList, r.Equal)
	if i < 0 {
		return &ctl.Error{Code: ctl.CodeNotFound, Message: "no such rule"}
	}
	b.RuleList = slices.Delete(b.RuleList, i, i+1)
	return nil
}

// SampleConn returns a deterministic encrypted connection numbered i: IPv4
// for even i, IPv6 for odd i, role A for even i.
func SampleConn(i int) ctl.Conn {
	local := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, 1}), uint16(10000+i%50000))
	remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 250)}), 443)
	role := ctl.RoleA
	if i%2 == 1 {
		local = netip.MustParseAddrPort(fmt.Sprintf("[2001:db8::1]:%d", 10000+i%50000))
		remote = netip.MustParseAddrPort(fmt.Sprintf("[2001:db8::%x]:443", 2+i%250))
		role = ctl.RoleB
	}
	sid := make([]byte, 33)
	sid[0] = 0x23
	for j := 1; j < len(sid); j++ {
		sid[j] = byte(i*7 + j)
	}
	return ctl.Conn{
		Local: local, Remote: remote, State: "encrypted", Role: role,
		TEP: ctl.TEP{Name: "TCPCRYPT_ECDHE_Curve25519", ID: 0x23}, AEAD: "AEAD_AES_128_GCM",
		SessionID: sid, Resumed: i%3 == 0,
		BytesIn: uint64(i) * 1000, BytesOut: uint64(i) * 2000, FramesIn: uint64(i), FramesOut: uint64(2 * i),
		AgeSeconds: float64(i) + 0.5,
	}
}

// Start runs a ctlserver.Server with cfg on a fresh unix socket and returns the
// socket's path. The server stops, and the test waits for it, at cleanup.
func Start(tb testing.TB, cfg ctlserver.Config) string {
	tb.Helper()
	// Keep the path short: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "ctltest")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "ctl")
	srv, err := ctlserver.NewServer(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := srv.Listen(path); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("ctl server: %v", err)
		}
	})
	return path
}
