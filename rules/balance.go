package rules

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Spreading packets over several queues (Config.QueueCount > 1). Every packet
// of one connection, in both directions, must reach the same queue, because
// each queue has its own engine and flow table: a packet of an encrypted flow
// that reached another queue's engine would find no state there and pass
// untouched (DESIGN.md invariants 8 and 11).
//
// By default (flow balancing) the rules compute nftables' symmetric flow hash
// (the "symhash" expression: the kernel's flow dissector over both addresses
// and both ports, ordered so that the two directions give the same value)
// modulo the queue count, and look the result up in a verdict map that jumps
// to one small chain per queue, which queues to that one queue. So many
// connections between the same two hosts spread over all queues. A queueing
// rule jumps to a select chain that holds the hash and the lookup followed by
// a drop: the map has an entry for every value the hash can take, but should
// a lookup ever miss, the packet is dropped rather than falling through to
// the rules below, which might let it pass untouched.
//
// The NFQUEUE target's own balancing (Config.AddressHash, and the fallback
// for kernels without nft_hash) hashes only the address pair: it is symmetric
// too, but all connections between two hosts share one queue and one engine.
const (
	// QueueMapName is the verdict map of the flow-balanced queue rules
	// without the bypass flag; QueueMapBypassName the one with it.
	QueueMapName       = "queues"
	QueueMapBypassName = "queues-bypass"
	// selectChainName is the chain a queueing rule without the bypass
	// flag jumps to; selectBypassChainName the one for rules with it.
	selectChainName       = "queue-select"
	selectBypassChainName = "queue-select-bypass"
)

// QueueMap is a verdict map from the flow hash (0..QueueCount-1) to the chain
// queueing to QueueNum plus that value.
type QueueMap struct {
	Name   string  // QueueMapName or QueueMapBypassName
	Bypass bool    // whether its chains queue with the bypass flag
	Chains []Chain // regular chains, one per queue in order: chain i queues to QueueNum+i
	// Select is the regular chain the queueing rules jump to: the hash and
	// the lookup in this map, then a drop for a lookup that misses.
	Select Chain
}

// flowBalanced reports whether cfg spreads packets over its queues by the
// flow hash.
func (c Config) flowBalanced() bool {
	return c.queueCount() > 1 && !c.CPUFanout && !c.AddressHash
}

// balance names how cfg spreads packets over its queues, for logs.
func (c Config) balance() string {
	switch {
	case c.queueCount() == 1:
		return "none"
	case c.CPUFanout:
		return "cpu"
	case c.AddressHash:
		return "address"
	}
	return "flow"
}

// queueChainName is the regular chain queueing to queue n, e.g. "queue-7463"
// or "queue-7463-bypass".
func queueChainName(n uint16, bypass bool) string {
	if bypass {
		return fmt.Sprintf("queue-%d-bypass", n)
	}
	return fmt.Sprintf("queue-%d", n)
}

// queueVerdict returns the expressions ending a queueing rule: the queue
// expression itself, or with flow balancing a jump to the select chain of
// its bypass flag.
func queueVerdict(kind QueueKind, cfg Config, bypass bool) []expr.Any {
	if !cfg.flowBalanced() {
		return []expr.Any{queueExpr(kind, cfg, bypass)}
	}
	chain := selectChainName
	if bypass {
		chain = selectBypassChainName
	}
	return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}
}

// queueMaps returns the two verdict maps and their chains for a
// flow-balanced cfg, none otherwise.
func queueMaps(kind QueueKind, cfg Config) []QueueMap {
	if !cfg.flowBalanced() {
		return nil
	}
	var maps []QueueMap
	for _, bypass := range []bool{false, true} {
		m := QueueMap{Name: QueueMapName, Bypass: bypass, Select: Chain{Name: selectChainName}}
		if bypass {
			m.Name, m.Select.Name = QueueMapBypassName, selectBypassChainName
		}
		m.Select.Rules = []Rule{{
			Comment: "queue by flow: " + queueComment(cfg, bypass),
			Exprs: []expr.Any{
				&expr.Hash{Type: expr.HashTypeSym, DestRegister: 1, Modulus: uint32(cfg.queueCount())},
				&expr.Lookup{SourceRegister: 1, SetName: m.Name, DestRegister: 0, IsDestRegSet: true},
			},
		}, {
			Comment: "no queue for this hash: never let it pass",
			Exprs:   []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}},
		}}
		for i := range cfg.queueCount() {
			one := cfg
			one.QueueNum, one.QueueCount = cfg.QueueNum+i, 1
			m.Chains = append(m.Chains, Chain{
				Name: queueChainName(one.QueueNum, bypass),
				Rules: []Rule{{
					Comment: queueComment(one, bypass),
					Exprs:   []expr.Any{queueExpr(kind, one, bypass)},
				}},
			})
		}
		maps = append(maps, m)
	}
	return maps
}

// nftMap is the kernel object of m in table t.
func (m QueueMap) nftMap(t *nftables.Table) *nftables.Set {
	return &nftables.Set{
		Table:   t,
		Name:    m.Name,
		IsMap:   true,
		KeyType: nftables.TypeMark, // 4 bytes in host order, like the hash result
		// Tells nft the keys are in host order, so that it lists them as
		// 0x00000000, 0x00000001...
		KeyByteOrder: binaryutil.NativeEndian,
		DataType:     nftables.TypeVerdict,
		Comment:      "flow hash -> the chain of one queue",
	}
}

// elements are m's map entries: hash value i jumps to chain i.
func (m QueueMap) elements() []nftables.SetElement {
	els := make([]nftables.SetElement, len(m.Chains))
	for i, c := range m.Chains {
		els[i] = nftables.SetElement{
			Key:         binaryutil.NativeEndian.PutUint32(uint32(i)),
			VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: c.Name},
		}
	}
	return els
}

// DetectFlowHash finds out whether the kernel has the nftables hash
// expression (nft_hash), which flow balancing needs, with the same probe as
// DetectQueue (a throwaway table added and deleted in one batch). It returns false when the kernel refuses
// the expression as unknown or unsupported, and an error for any other
// failure. The answer is logged to log (nil means discard).
func DetectFlowHash(conn *nftables.Conn, log *slog.Logger) (bool, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	err := probe(conn, &expr.Hash{Type: expr.HashTypeSym, DestRegister: 1, Modulus: 2})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP):
		log.Warn("this kernel has no nftables hash expression (nft_hash): queues are chosen by the address pair, so all connections between two hosts share one queue",
			"balance", "address")
		log.Debug("hash expression probe refused", "err", err)
		return false, nil
	default:
		return false, fmt.Errorf("rules: probe hash expression: %w", err)
	}
}
