package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tcpcryptd/tcpcrypt/rules"
)

// ErrNoDestroy reports that the kernel cannot destroy sockets on request
// (built without CONFIG_INET_DIAG_DESTROY).
var ErrNoDestroy = errors.New("kernel cannot destroy sockets (CONFIG_INET_DIAG_DESTROY)")

// staleTable reports whether the daemon's table exists: an earlier instance
// ran and did not clean up (it was killed, or crashed).
func staleTable(conn *nftables.Conn) (bool, error) {
	ts, err := conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, t := range ts {
		if t.Name == rules.TableName {
			return true, nil
		}
	}
	return false, nil
}

// restartResult counts what destroyMatching did.
type restartResult struct {
	Found, Destroyed, Failed int
	// Gone counts sockets that closed before their turn (e.g. the other
	// end of a loopback connection, reset when its peer was destroyed).
	Gone int
}

// destroyMatching destroys every TCP socket of this network namespace that
// is in a connected state and whose endpoints match (SOCK_DESTROY through
// NETLINK_INET_DIAG). The local application sees ECONNABORTED and, since the
// kernel sends a RST, the peer sees a reset.
//
// Why, at a restart: after an instance of the daemon died, the connections
// it encrypted are still open, and the new instance has no keys for them: it
// would pass their segments untouched (DESIGN.md invariant 8), so the
// applications' next bytes would leave in plaintext and the peer would
// reject them as corrupt frames. Killing them is the only safe outcome;
// applications reconnect, and the new connection is encrypted again.
//
// Without kernel support (ErrNoDestroy) there is no fallback: a RST toward
// the local socket needs its current sequence numbers, which only the dead
// instance knew.
func destroyMatching(match func(local, remote netip.AddrPort) bool) (restartResult, error) {
	var res restartResult
	c, err := netlink.Dial(unix.NETLINK_INET_DIAG, nil)
	if err != nil {
		return res, fmt.Errorf("sock_diag: dial: %w", err)
	}
	defer c.Close()
	var errs []error
	for _, fam := range []uint8{afInet, afInet6} {
		socks, err := dumpTCP(c, fam)
		if err != nil {
			return res, err
		}
		for _, s := range socks {
			if !match(s.Local, s.Remote) {
				continue
			}
			res.Found++
			if err := destroySock(c, &s); err != nil {
				switch {
				case errors.Is(err, unix.ENOENT):
					res.Gone++
					continue
				case errors.Is(err, unix.EOPNOTSUPP):
					res.Failed++
					return res, fmt.Errorf("sock_diag: destroy %v -> %v: %w: %w", s.Local, s.Remote, ErrNoDestroy, err)
				}
				res.Failed++
				errs = append(errs, fmt.Errorf("sock_diag: destroy %v -> %v: %w", s.Local, s.Remote, err))
				continue
			}
			res.Destroyed++
		}
	}
	return res, errors.Join(errs...)
}

func dumpTCP(c *netlink.Conn, family uint8) ([]diagSock, error) {
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: sockDiagByFamily, Flags: netlink.Request | netlink.Dump},
		Data:   marshalDiagReq(family, connectedStates, nil),
	})
	if err != nil {
		return nil, fmt.Errorf("sock_diag: dump family %d: %w", family, err)
	}
	out := make([]diagSock, 0, len(msgs))
	for _, m := range msgs {
		s, err := unmarshalDiagMsg(m.Data)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func destroySock(c *netlink.Conn, s *diagSock) error {
	_, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: sockDestroy, Flags: netlink.Request | netlink.Acknowledge},
		Data:   marshalDiagReq(s.Family, ^uint32(0), s),
	})
	return err
}

// restartSafety runs at start when a stale table was found, before the queue
// rules go live again. It destroys the connections in the stale table's
// guard sets (those the previous instance encrypted, whatever the rules said
// by the end) and every other connection the current rules cover (a table of
// a version without guard sets, or flows it had not protected yet); see
// destroyMatching.
func restartSafety(log *slog.Logger, conn *nftables.Conn, m *Matcher) error {
	protected := flowSet{}
	flows, gerr := rules.ProtectedFlows(conn)
	if gerr != nil {
		log.Error("restart safety: could not read the previous instance's guard sets; destroying every covered connection instead", "err", gerr)
	}
	for _, f := range flows {
		protected.add(f.Local, f.Remote)
	}
	res, err := destroyMatching(func(local, remote netip.AddrPort) bool {
		return protected.has(local, remote) || m.Covered(local, remote)
	})
	if err != nil {
		log.Error("restart safety: could not destroy every connection the previous instance may have encrypted; "+
			"their next bytes may go out in plaintext", "protected", len(flows), "found", res.Found,
			"destroyed", res.Destroyed, "gone", res.Gone, "failed", res.Failed, "err", err)
		return err
	}
	log.Warn("restart safety: the previous instance left its table; destroyed the connections it encrypted and the covered ones",
		"protected", len(flows), "found", res.Found, "destroyed", res.Destroyed, "gone", res.Gone)
	return nil
}

// flowSet is a set of connections by their endpoints (local first), IPv4
// addresses unmapped, for matching sockets that sock_diag reports.
type flowSet map[[2]netip.AddrPort]bool

func (s flowSet) add(local, remote netip.AddrPort) {
	s[[2]netip.AddrPort{unmapAP(local), unmapAP(remote)}] = true
}

func (s flowSet) has(local, remote netip.AddrPort) bool {
	return s[[2]netip.AddrPort{unmapAP(local), unmapAP(remote)}]
}
