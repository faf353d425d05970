package main

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"github.com/tcpcryptd/tcpcrypt/rules"
	"golang.org/x/sys/unix"
)

// tableName is the one nftables table chaosbox owns (family inet).
const tableName = "chaosbox"

// Hooks chaosbox can sit on.
const (
	hookForward = "forward" // a router between two hosts
	hookLocal   = "local"   // this host's own traffic (output and input)
)

// tableConfig says which packets go to which queue.
type tableConfig struct {
	hook  string
	port  uint16 // 0: every TCP packet
	queue uint16
	mark  uint32 // packets carrying it (our duplicates) are not queued
	kind  rules.QueueKind
}

func chaosTable() *nftables.Table {
	return &nftables.Table{Name: tableName, Family: nftables.TableFamilyINet}
}

// installTable replaces the chaosbox table in one batch.
func installTable(conn *nftables.Conn, cfg tableConfig) error {
	t := chaosTable()
	conn.AddTable(t) // "add; delete" removes a stale table whether or not it exists
	conn.DelTable(t)
	conn.AddTable(t)
	type chain struct {
		name string
		hook *nftables.ChainHook
		prio nftables.ChainPriority
	}
	// Output before tcpcryptd's output chain (-300) and input after its
	// input chain (-150), so that with both on one host chaosbox sees the
	// wire side of the daemon.
	chains := []chain{{"forward", nftables.ChainHookForward, 0}}
	if cfg.hook == hookLocal {
		chains = []chain{{"output", nftables.ChainHookOutput, -290}, {"input", nftables.ChainHookInput, -160}}
	}
	accept := nftables.ChainPolicyAccept
	for _, c := range chains {
		hook, prio := c.hook, c.prio
		ch := conn.AddChain(&nftables.Chain{Name: c.name, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: &prio, Policy: &accept})
		conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(cfg.mark)},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}})
		offsets := []uint32{0, 2} // TCP source, destination port
		if cfg.port == 0 {
			offsets = []uint32{0xffff}
		}
		for _, off := range offsets {
			ex := []expr.Any{
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
			}
			if off != 0xffff {
				ex = append(ex,
					&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(cfg.port)})
			}
			ex = append(ex, queueExpr(cfg.kind, cfg.queue))
			conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: ex})
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("chaosbox: install table inet %s: %w", tableName, err)
	}
	return nil
}

// removeTable deletes the chaosbox table if it exists.
func removeTable(conn *nftables.Conn) error {
	conn.AddTable(chaosTable())
	conn.DelTable(chaosTable())
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("chaosbox: remove table inet %s: %w", tableName, err)
	}
	return nil
}

// nfqBypass is the bypass flag of the queue verdict: with chaosbox gone,
// packets pass instead of being dropped.
const nfqBypass = 0x01

// queueExpr queues to queue num with bypass: the native expression, or the
// xtables NFQUEUE target revision 3 through nft_compat. Its payload is
// struct xt_NFQ_info_v3 { __u16 queuenum, queues_total, flags; } in host
// byte order, padded to 8 bytes as nft_compat expects (see rules/queue.go).
func queueExpr(kind rules.QueueKind, num uint16) expr.Any {
	if kind == rules.QueueNative {
		return &expr.Queue{Num: num, Total: 1, Flag: expr.QueueFlagBypass}
	}
	b := make([]byte, 8)
	binary.NativeEndian.PutUint16(b[0:], num)
	binary.NativeEndian.PutUint16(b[2:], 1)
	binary.NativeEndian.PutUint16(b[4:], nfqBypass)
	info := xt.Unknown(b)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}
}
