package rules

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The guard (DESIGN.md invariant 11): two sets in the daemon's table hold the
// flows the engine has encrypted, or committed to encrypting, and one rule per
// set near the top of each chain queues their packets without the bypass
// flag. So a protected flow's packets reach the daemon whatever the per-port
// rules below say by then (a rule deleted, an exclude added, a reload), and
// while no daemon is bound to the queue they are dropped, never passed in
// plaintext, even with fail-open. The sets outlive a crashed daemon with the
// table; the next instance reads them (ProtectedFlows) to destroy exactly
// those connections before it replaces the table.
//
// An element's key is the concatenation local address . remote address .
// local port . remote port, each field padded to 4 bytes as nftables does;
// on output the local end is the source, on input the destination.
const (
	// GuardSet4 holds protected IPv4 flows.
	GuardSet4 = "protected4"
	// GuardSet6 holds protected IPv6 flows.
	GuardSet6 = "protected6"
)

// guardSet returns the set for IPv4 (v6 false) or IPv6 flows in t.
func guardSet(t *nftables.Table, v6 bool) *nftables.Set {
	addr := nftables.TypeIPAddr
	name := GuardSet4
	if v6 {
		addr, name = nftables.TypeIP6Addr, GuardSet6
	}
	return &nftables.Set{
		Table:         t,
		Name:          name,
		Concatenation: true,
		KeyType:       nftables.MustConcatSetType(addr, addr, nftables.TypeInetService, nftables.TypeInetService),
		Comment:       "flows tcpcryptd encrypted: always queued, never bypassed",
	}
}

// guardRule queues the packets of flows in the IPv4 (v6 false) or IPv6 guard
// set, in direction d, without bypass.
func guardRule(cfg Config, kind QueueKind, d direction, v6 bool) Rule {
	nfproto, saddr, alen := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4)
	set := GuardSet4
	if v6 {
		nfproto, saddr, alen, set = unix.NFPROTO_IPV6, 8, 16, GuardSet6
	}
	daddr := saddr + alen
	// 32-bit registers: register 1 is the first 16 bytes (NFT_REG32_00..03),
	// so the fields go to NFT_REG32_00 + (offset in 4-byte words).
	words := alen / 4
	regAddr2 := uint32(unix.NFT_REG32_00) + words
	regPort1 := regAddr2 + words
	regPort2 := regPort1 + 1
	localAddr, remoteAddr := saddr, daddr
	localPort, remotePort := uint32(0), uint32(2) // TCP source, destination port
	if d == dirInput {
		localAddr, remoteAddr = daddr, saddr
		localPort, remotePort = 2, 0
	}
	exprs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: localAddr, Len: alen},
		&expr.Payload{DestRegister: regAddr2, Base: expr.PayloadBaseNetworkHeader, Offset: remoteAddr, Len: alen},
		&expr.Payload{DestRegister: regPort1, Base: expr.PayloadBaseTransportHeader, Offset: localPort, Len: 2},
		&expr.Payload{DestRegister: regPort2, Base: expr.PayloadBaseTransportHeader, Offset: remotePort, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: set},
	}
	exprs = append(exprs, queueVerdict(kind, cfg, false)...)
	return Rule{
		Comment: fmt.Sprintf("flows tcpcryptd encrypted (%s): %s", set, queueComment(cfg, false)),
		Exprs:   exprs,
	}
}

// guardKey is the set element key of the flow local <-> remote, and whether
// it belongs to the IPv6 set. Both addresses must be of one family.
func guardKey(local, remote netip.AddrPort) ([]byte, bool, error) {
	la, ra := local.Addr().Unmap(), remote.Addr().Unmap()
	if !la.IsValid() || !ra.IsValid() || la.Is4() != ra.Is4() {
		return nil, false, fmt.Errorf("%w: flow %v <-> %v: addresses of different or no family", ErrConfig, local, remote)
	}
	key := append(la.AsSlice(), ra.AsSlice()...)
	key = append(key, byte(local.Port()>>8), byte(local.Port()), 0, 0)
	key = append(key, byte(remote.Port()>>8), byte(remote.Port()), 0, 0)
	return key, la.Is6(), nil
}

// parseGuardKey is the inverse of guardKey.
func parseGuardKey(key []byte) (local, remote netip.AddrPort, err error) {
	n := 0
	switch len(key) {
	case 4 + 4 + 8:
		n = 4
	case 16 + 16 + 8:
		n = 16
	default:
		return local, remote, fmt.Errorf("rules: guard set element of %d bytes", len(key))
	}
	la, _ := netip.AddrFromSlice(key[:n])
	ra, _ := netip.AddrFromSlice(key[n : 2*n])
	p := key[2*n:]
	local = netip.AddrPortFrom(la, uint16(p[0])<<8|uint16(p[1]))
	remote = netip.AddrPortFrom(ra, uint16(p[4])<<8|uint16(p[5]))
	return local, remote, nil
}

// Flow is a connection by its endpoints, the local one first.
type Flow struct {
	Local, Remote netip.AddrPort
}

// Protect adds flows to the guard sets in one batch: from its return on,
// their packets are queued to the daemon without bypass, whatever the
// per-port rules say. The table must have been applied. Adding a flow that is
// already there is not an error.
func (m *Manager) Protect(flows ...Flow) error {
	return m.guardChange(flows, true)
}

// Unprotect removes flows from the guard sets; flows that are not there (the
// table was replaced since) are ignored.
func (m *Manager) Unprotect(flows ...Flow) error {
	return m.guardChange(flows, false)
}

// guardChunk is how many elements go into one batch: a netlink message
// holding thousands would exceed the socket's limit (EMSGSIZE).
const guardChunk = 512

func (m *Manager) guardChange(flows []Flow, add bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(flows) > 0 {
		n := min(len(flows), guardChunk)
		if err := m.guardBatch(flows[:n], add); err != nil {
			return err
		}
		flows = flows[n:]
	}
	return nil
}

// guardBatch adds or removes flows in one batch.
func (m *Manager) guardBatch(flows []Flow, add bool) error {
	t := table()
	var elems [2][]nftables.SetElement
	for _, f := range flows {
		key, v6, err := guardKey(f.Local, f.Remote)
		if err != nil {
			return err
		}
		i := 0
		if v6 {
			i = 1
		}
		elems[i] = append(elems[i], nftables.SetElement{Key: key})
	}
	send := func(i int, el []nftables.SetElement) error {
		s := guardSet(t, i == 1)
		var err error
		if add {
			err = m.conn.SetAddElements(s, el)
		} else {
			err = m.conn.SetDeleteElements(s, el)
		}
		if err != nil {
			return fmt.Errorf("rules: guard set %s: %w", s.Name, err)
		}
		return nil
	}
	for i, el := range elems {
		if len(el) > 0 {
			if err := send(i, el); err != nil {
				return err
			}
		}
	}
	err := m.conn.Flush()
	if err == nil {
		return nil
	}
	if add {
		return fmt.Errorf("rules: add %d flow(s) to the guard sets: %w", len(flows), err)
	}
	if !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("rules: remove %d flow(s) from the guard sets: %w", len(flows), err)
	}
	// One of them was gone: the batch failed as a whole, so remove the
	// others one by one.
	var errs []error
	for i, el := range elems {
		for _, e := range el {
			if err := send(i, []nftables.SetElement{e}); err != nil {
				return err
			}
			if err := m.conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rules: remove flows from the guard sets: %w", err)
	}
	return nil
}

// ProtectedFlows lists the flows in the guard sets of the daemon's table as
// it is in the kernel (none when there is no table, or a table of an older
// version without the sets).
func ProtectedFlows(conn *nftables.Conn) ([]Flow, error) {
	t := table()
	var out []Flow
	for _, v6 := range []bool{false, true} {
		s := guardSet(t, v6)
		if _, err := conn.GetSetByName(t, s.Name); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return nil, fmt.Errorf("rules: read guard set %s: %w", s.Name, err)
		}
		els, err := conn.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("rules: read guard set %s: %w", s.Name, err)
		}
		for _, e := range els {
			l, r, err := parseGuardKey(e.Key)
			if err != nil {
				return nil, err
			}
			out = append(out, Flow{Local: l, Remote: r})
		}
	}
	return out, nil
}
