package rules

import (
	"fmt"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// QueueKind is the kernel mechanism the queue rules use.
type QueueKind uint8

// QueueKind values.
const (
	// QueueNative is the nf_tables "queue" expression (nft_queue).
	QueueNative QueueKind = 1
	// QueueCompat is the xtables NFQUEUE target revision 3 run through
	// nft_compat, for kernels built without nft_queue.
	QueueCompat QueueKind = 2
)

// String returns "native", "compat" or "queuekind(N)".
func (k QueueKind) String() string {
	switch k {
	case QueueNative:
		return "native"
	case QueueCompat:
		return "compat"
	}
	return fmt.Sprintf("queuekind(%d)", uint8(k))
}

// Flags of struct xt_NFQ_info_v3 (linux/netfilter/xt_NFQUEUE.h); the native
// expression uses the same values (NFT_QUEUE_FLAG_*).
const (
	nfqFlagBypass    = 0x01
	nfqFlagCPUFanout = 0x02
	nfqFlagMask      = 0x03
)

// nfqInfoV3Len is sizeof(struct xt_NFQ_info_v3): three __u16 fields, 2-byte
// aligned, no padding. nfqInfoV3PaddedLen is that rounded up to XT_ALIGN (8
// bytes on every Linux ABI): nft_compat checks XT_ALIGN(payload length) against
// XT_ALIGN(targetsize), and iptables-nft sends the padded size, so we do too.
const (
	nfqInfoV3Len       = 6
	nfqInfoV3PaddedLen = 8
)

// nfqInfoV3 is struct xt_NFQ_info_v3 { __u16 queuenum; __u16 queues_total;
// __u16 flags; }.
type nfqInfoV3 struct {
	QueueNum    uint16
	QueuesTotal uint16
	Flags       uint16
}

// marshal encodes the struct in host byte order, as xtables payloads are plain
// C structs, padded with zeros to nfqInfoV3PaddedLen.
func (i nfqInfoV3) marshal() []byte {
	b := make([]byte, 0, nfqInfoV3PaddedLen)
	b = append(b, binaryutil.NativeEndian.PutUint16(i.QueueNum)...)
	b = append(b, binaryutil.NativeEndian.PutUint16(i.QueuesTotal)...)
	b = append(b, binaryutil.NativeEndian.PutUint16(i.Flags)...)
	return append(b, 0, 0)
}

// parseNFQInfoV3 decodes an xt_NFQ_info_v3 payload of 6 bytes or, padded, 8
// bytes whose padding is zero. Unknown flag bits are an error, as in the
// kernel's check.
func parseNFQInfoV3(b []byte) (nfqInfoV3, error) {
	switch {
	case len(b) == nfqInfoV3PaddedLen && (b[6] != 0 || b[7] != 0):
		return nfqInfoV3{}, fmt.Errorf("rules: xt_NFQ_info_v3: non-zero padding")
	case len(b) != nfqInfoV3Len && len(b) != nfqInfoV3PaddedLen:
		return nfqInfoV3{}, fmt.Errorf("rules: xt_NFQ_info_v3: length %d, want %d or %d", len(b), nfqInfoV3Len, nfqInfoV3PaddedLen)
	}
	i := nfqInfoV3{
		QueueNum:    binaryutil.NativeEndian.Uint16(b[0:2]),
		QueuesTotal: binaryutil.NativeEndian.Uint16(b[2:4]),
		Flags:       binaryutil.NativeEndian.Uint16(b[4:6]),
	}
	if i.Flags&^nfqFlagMask != 0 {
		return nfqInfoV3{}, fmt.Errorf("rules: xt_NFQ_info_v3: unknown flags %#x", i.Flags)
	}
	return i, nil
}

// queueExpr returns the expression that queues to the configured queue(s).
func queueExpr(kind QueueKind, cfg Config, bypass bool) expr.Any {
	var flags uint16
	if bypass {
		flags |= nfqFlagBypass
	}
	if cfg.CPUFanout {
		flags |= nfqFlagCPUFanout
	}
	if kind == QueueNative {
		return &expr.Queue{Num: cfg.QueueNum, Total: cfg.queueCount(), Flag: expr.QueueFlag(flags)}
	}
	info := xt.Unknown(nfqInfoV3{QueueNum: cfg.QueueNum, QueuesTotal: cfg.queueCount(), Flags: flags}.marshal())
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}
}
