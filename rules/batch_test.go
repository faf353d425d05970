package rules

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// recorder is a fake netlink peer for nftables.WithTestDial: it records every
// request, acknowledges it, and can fail the first message of a given type with
// an errno, as the kernel does when it aborts a batch.
type recorder struct {
	reqs    []netlink.Message
	fail    func(t *testing.T, m netlink.Message) unix.Errno // nil: acknowledge all
	replies []netlink.Message                                // served to the next dump request
	t       *testing.T
}

// failType fails every message of type typ with errno.
func failType(typ uint16, errno unix.Errno) func(*testing.T, netlink.Message) unix.Errno {
	return func(_ *testing.T, m netlink.Message) unix.Errno {
		if msgType(m) == typ {
			return errno
		}
		return 0
	}
}

func (r *recorder) conn(t *testing.T) *nftables.Conn {
	t.Helper()
	r.t = t
	c, err := nftables.New(nftables.WithTestDial(r.dial))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (r *recorder) dial(req []netlink.Message) ([]netlink.Message, error) {
	if len(req) == 0 {
		return nil, nil
	}
	if req[0].Header.Flags&netlink.Dump != 0 {
		out := r.replies
		r.replies = nil
		return out, nil
	}
	r.reqs = append(r.reqs, req...)
	var out []netlink.Message
	for _, m := range req {
		if m.Header.Flags&netlink.Acknowledge == 0 {
			continue
		}
		errno := int32(0)
		if r.fail != nil && msgType(m) != batchMarker {
			errno = -int32(r.fail(r.t, m))
		}
		out = append(out, netlink.Message{
			Header: netlink.Header{Type: netlink.Error, Sequence: m.Header.Sequence, PID: m.Header.PID},
			Data:   append(binary.NativeEndian.AppendUint32(nil, uint32(errno)), make([]byte, 16)...),
		})
		if errno != 0 {
			break
		}
	}
	return out, nil
}

// msgType is the NFT_MSG_* of an nf_tables message, or batchMarker for the
// batch begin and end messages.
func msgType(m netlink.Message) uint16 {
	if uint16(m.Header.Type)>>8 != unix.NFNL_SUBSYS_NFTABLES {
		return batchMarker
	}
	return uint16(m.Header.Type) & 0xff
}

const batchMarker = 0xffff

// msgName is a readable summary: "newtable inet tcpcrypt", "newrule inet tcpcrypt input".
func msgName(t *testing.T, m netlink.Message) string {
	t.Helper()
	names := map[uint16]string{
		unix.NFT_MSG_NEWTABLE: "newtable", unix.NFT_MSG_DELTABLE: "deltable",
		unix.NFT_MSG_NEWCHAIN: "newchain", unix.NFT_MSG_NEWRULE: "newrule",
		unix.NFT_MSG_NEWSET: "newset", unix.NFT_MSG_DELRULE: "delrule",
		unix.NFT_MSG_NEWSETELEM: "newsetelem", unix.NFT_MSG_DELSETELEM: "delsetelem",
	}
	typ := msgType(m)
	if typ == batchMarker {
		return "batch"
	}
	n, ok := names[typ]
	if !ok {
		n = fmt.Sprintf("msg%d", typ)
	}
	fam := map[byte]string{unix.NFPROTO_INET: "inet", unix.NFPROTO_IPV4: "ip"}[m.Data[0]]
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		t.Fatal(err)
	}
	// NFTA_TABLE_NAME, NFTA_CHAIN_TABLE and NFTA_RULE_TABLE are all 1; chain
	// names are attribute 3 in chain messages (NFTA_CHAIN_NAME) and 2 in rule
	// messages (NFTA_RULE_CHAIN).
	var tbl, chain string
	for ad.Next() {
		switch {
		case ad.Type() == 1:
			tbl = ad.String()
		case typ == unix.NFT_MSG_NEWCHAIN && ad.Type() == unix.NFTA_CHAIN_NAME,
			typ == unix.NFT_MSG_NEWRULE && ad.Type() == unix.NFTA_RULE_CHAIN,
			typ == unix.NFT_MSG_DELRULE && ad.Type() == unix.NFTA_RULE_CHAIN,
			typ == unix.NFT_MSG_NEWSET && ad.Type() == unix.NFTA_SET_NAME,
			(typ == unix.NFT_MSG_NEWSETELEM || typ == unix.NFT_MSG_DELSETELEM) && ad.Type() == unix.NFTA_SET_ELEM_LIST_SET:
			chain = ad.String()
		}
	}
	return strings.TrimSpace(strings.Join([]string{n, fam, tbl, chain}, " "))
}

func names(t *testing.T, msgs []netlink.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, msgName(t, m))
	}
	return out
}

func TestApplyBatch(t *testing.T) {
	rs, err := Build(DefaultConfig(), []Policy{{Port: 443, Side: SideBoth}}, QueueCompat)
	if err != nil {
		t.Fatal(err)
	}
	chains := []string{
		"newchain inet tcpcrypt output",
		// two mark rules, two guard rules, two port rules
		"newrule inet tcpcrypt output", "newrule inet tcpcrypt output", "newrule inet tcpcrypt output",
		"newrule inet tcpcrypt output", "newrule inet tcpcrypt output", "newrule inet tcpcrypt output",
		"newchain inet tcpcrypt input",
		"newrule inet tcpcrypt input", "newrule inet tcpcrypt input", "newrule inet tcpcrypt input",
		"newrule inet tcpcrypt input", "newrule inet tcpcrypt input",
	}
	sets := []string{"newset inet tcpcrypt protected4", "newset inet tcpcrypt protected6"}

	t.Run("replace", func(t *testing.T) {
		rec := &recorder{}
		if err := rs.Replace(rec.conn(t)); err != nil {
			t.Fatalf("Replace: %v", err)
		}
		// delete-if-exists, then the new table: one atomic batch.
		want := slices.Concat([]string{"batch",
			"newtable inet tcpcrypt", "deltable inet tcpcrypt", "newtable inet tcpcrypt"},
			sets, chains, []string{"batch"})
		if diff := cmp.Diff(want, names(t, rec.reqs)); diff != "" {
			t.Errorf("batch (-want +got):\n%s", diff)
		}
		// The first newtable must not carry NLM_F_EXCL (it must succeed when the
		// table exists) and the second must carry NLM_F_CREATE.
		if f := rec.reqs[1].Header.Flags; f&netlink.Excl != 0 {
			t.Errorf("first newtable flags %v include EXCL", f)
		}
		if f := rec.reqs[3].Header.Flags; f&netlink.Create == 0 {
			t.Errorf("second newtable flags %v lack CREATE", f)
		}
	})

	t.Run("apply in place", func(t *testing.T) {
		rec := &recorder{}
		if err := rs.Apply(rec.conn(t)); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		// No deltable and no set flush: the guard sets keep their
		// elements; each chain is emptied and refilled in the same batch.
		var want []string
		want = append(want, "batch", "newtable inet tcpcrypt")
		want = append(want, sets...)
		want = append(want, chains[0], "delrule inet tcpcrypt output")
		want = append(want, chains[1:7]...)
		want = append(want, chains[7], "delrule inet tcpcrypt input")
		want = append(want, chains[8:]...)
		want = append(want, "batch")
		if diff := cmp.Diff(want, names(t, rec.reqs)); diff != "" {
			t.Errorf("batch (-want +got):\n%s", diff)
		}
		// Adding the existing table and sets must succeed: no NLM_F_EXCL.
		for _, m := range rec.reqs {
			if typ := msgType(m); (typ == unix.NFT_MSG_NEWTABLE || typ == unix.NFT_MSG_NEWSET) && m.Header.Flags&netlink.Excl != 0 {
				t.Errorf("%s carries EXCL", msgName(t, m))
			}
		}
	})
}

// TestApplyBatchRoundTrip parses the recorded rule messages back with the
// nftables library and compares them with the Ruleset Build made.
func TestApplyBatchRoundTrip(t *testing.T) {
	for _, kind := range []QueueKind{QueueNative, QueueCompat} {
		t.Run(kind.String(), func(t *testing.T) {
			rec := &recorder{}
			conn := rec.conn(t)
			cfg := DefaultConfig()
			cfg.QueueNum, cfg.QueueCount = 10, 3
			rs, err := Build(cfg, allFeaturesPolicies, kind)
			if err != nil {
				t.Fatal(err)
			}
			if err := rs.Replace(conn); err != nil {
				t.Fatal(err)
			}
			tbl := table()
			for _, c := range rs.Chains {
				rec.replies = nil
				for _, m := range rec.reqs {
					if msgType(m) == unix.NFT_MSG_NEWRULE && strings.HasSuffix(msgName(t, m), " "+c.Name) {
						rec.replies = append(rec.replies, m)
					}
				}
				got, err := conn.GetRules(tbl, &nftables.Chain{Name: c.Name, Table: tbl})
				if err != nil {
					t.Fatalf("GetRules: %v", err)
				}
				if len(got) != len(c.Rules) {
					t.Fatalf("chain %s: %d rules in batch, want %d", c.Name, len(got), len(c.Rules))
				}
				for i, r := range got {
					// The batch names each guard set by name and by its
					// batch-local id; the Ruleset only by name.
					for _, e := range r.Exprs {
						if l, ok := e.(*expr.Lookup); ok {
							if l.SetID == 0 {
								t.Errorf("chain %s rule %d: set lookup %q without the set's id", c.Name, i, l.SetName)
							}
							l.SetID = 0
						}
					}
					if diff := cmp.Diff(c.Rules[i].Exprs, r.Exprs); diff != "" {
						t.Errorf("chain %s rule %d (-built +sent):\n%s", c.Name, i, diff)
					}
				}
			}
		})
	}
}

func TestRemoveBatch(t *testing.T) {
	rec := &recorder{}
	if err := Remove(rec.conn(t)); err != nil {
		t.Fatal(err)
	}
	want := []string{"batch", "newtable inet tcpcrypt", "deltable inet tcpcrypt", "batch"}
	if diff := cmp.Diff(want, names(t, rec.reqs)); diff != "" {
		t.Errorf("batch (-want +got):\n%s", diff)
	}
	// Never a ruleset flush: a deltable without a table name.
	for _, m := range rec.reqs {
		if msgType(m) == unix.NFT_MSG_DELTABLE && !bytes.Contains(m.Data, []byte(TableName+"\x00")) {
			t.Error("deltable without our table name (ruleset flush)")
		}
	}
}

func TestDetectQueue(t *testing.T) {
	tests := []struct {
		name    string
		errno   unix.Errno // for the probe's rule; 0 = accepted
		want    QueueKind
		wantErr bool
	}{
		{"native accepted", 0, QueueNative, false},
		{"unknown expression", unix.ENOENT, QueueCompat, false},
		{"unsupported", unix.EOPNOTSUPP, QueueCompat, false},
		{"no permission", unix.EPERM, 0, true},
		{"invalid", unix.EINVAL, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			if tt.errno != 0 {
				rec.fail = failType(unix.NFT_MSG_NEWRULE, tt.errno)
			}
			var logs bytes.Buffer
			got, err := DetectQueue(rec.conn(t), slog.New(slog.NewTextHandler(&logs, nil)))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("DetectQueue = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, tt.errno) {
				t.Errorf("error %v does not wrap %v", err, tt.errno)
			}
			if !tt.wantErr && !strings.Contains(logs.String(), "queue="+tt.want.String()) {
				t.Errorf("decision not logged: %q", logs.String())
			}
			// The probe touches only its own table and deletes it in the same batch.
			want := []string{"batch", "newtable inet tcpcrypt-probe", "deltable inet tcpcrypt-probe",
				"newtable inet tcpcrypt-probe", "newchain inet tcpcrypt-probe probe",
				"newrule inet tcpcrypt-probe probe", "deltable inet tcpcrypt-probe", "batch"}
			if diff := cmp.Diff(want, names(t, rec.reqs)); diff != "" {
				t.Errorf("probe batch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestManager(t *testing.T) {
	// The kernel knows no native queue expression: only the probe's rule fails.
	rec := &recorder{fail: func(t *testing.T, m netlink.Message) unix.Errno {
		if strings.HasPrefix(msgName(t, m), "newrule inet "+probeTableName) {
			return unix.ENOENT
		}
		return 0
	}}
	var logs bytes.Buffer
	m := NewManager(rec.conn(t), slog.New(slog.NewTextHandler(&logs, nil)))
	if m.QueueKind() != 0 {
		t.Fatal("queue kind known before Apply")
	}
	policies := []Policy{{Port: 80, Side: SideLocal}}
	if err := m.Apply(DefaultConfig(), policies); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if m.QueueKind() != QueueCompat {
		t.Errorf("QueueKind = %v, want compat", m.QueueKind())
	}
	probes := func() int {
		n := 0
		for _, name := range names(t, rec.reqs) {
			if strings.Contains(name, probeTableName) {
				n++
			}
		}
		return n
	}
	if probes() == 0 {
		t.Error("first Apply did not probe")
	}
	if !strings.Contains(logs.String(), "queue=compat") {
		t.Errorf("fallback not logged: %q", logs.String())
	}

	// Later Applies reuse the answer, and send compat targets.
	rec.reqs = nil
	if err := m.Apply(DefaultConfig(), policies); err != nil {
		t.Fatal(err)
	}
	if n := probes(); n != 0 {
		t.Errorf("second Apply probed again (%d probe messages)", n)
	}
	// The second Apply updates the table in place (the guard sets keep
	// their elements): batch, newtable, two newsets, newchain output,
	// delrule (flush), two mark rules, two guard rules, then the queue rule.
	got := names(t, rec.reqs)
	if slices.Contains(got, "deltable inet tcpcrypt") {
		t.Errorf("second Apply deletes the table (and the guard sets with it): %v", got)
	}
	if len(rec.reqs) < 11 || !bytes.Contains(rec.reqs[10].Data, []byte("NFQUEUE\x00")) {
		t.Errorf("second Apply's queue rule carries no NFQUEUE target: %v", got)
	}

	// Invalid input sends nothing.
	rec.reqs = nil
	if err := m.Apply(DefaultConfig(), []Policy{{Port: 0, Side: SideLocal}}); !errors.Is(err, ErrPort) {
		t.Errorf("Apply with port 0: %v, want ErrPort", err)
	}
	if len(rec.reqs) != 0 {
		t.Errorf("invalid Apply sent %d messages", len(rec.reqs))
	}

	if err := m.Remove(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"batch", "newtable inet tcpcrypt", "deltable inet tcpcrypt", "batch"}, names(t, rec.reqs)); diff != "" {
		t.Errorf("Remove batch (-want +got):\n%s", diff)
	}

	rec.fail = failType(unix.NFT_MSG_NEWCHAIN, unix.EINVAL)
	if err := m.Apply(DefaultConfig(), nil); !errors.Is(err, unix.EINVAL) {
		t.Errorf("Apply with kernel error: %v, want EINVAL wrapped", err)
	}
	if err := m.Remove(); err != nil {
		t.Errorf("Remove after a failed Apply: %v", err)
	}
}

// allFeaturesPolicies exercise every match: both families, partial and full
// prefixes, /0, all sides and modes.
var allFeaturesPolicies = []Policy{
	{Port: 443, Side: SideBoth},
	{Port: 25, Side: SideRemote, Mode: ModeRequired, Prefix: mustPrefix("2001:db8::/33")},
	{Port: 22, Side: SideLocal, Mode: ModeExclude, Prefix: mustPrefix("10.0.0.0/8")},
	{Port: 993, Side: SideLocal, Prefix: mustPrefix("192.0.2.1/32")},
	{Port: 993, Side: SideLocal, Prefix: mustPrefix("::/0")},
	{Port: 80, Side: SideBoth, Mode: ModeRequired, Prefix: mustPrefix("fe80::1/128")},
}

// TestManagerFlowHash checks that a Manager with several queues probes the
// hash expression once and balances by flow when the kernel has it, and by
// the address pair, saying so, when it does not.
func TestManagerFlowHash(t *testing.T) {
	for _, has := range []bool{true, false} {
		t.Run(fmt.Sprintf("hash %v", has), func(t *testing.T) {
			rec := &recorder{fail: func(t *testing.T, m netlink.Message) unix.Errno {
				if !strings.HasPrefix(msgName(t, m), "newrule inet "+probeTableName) {
					return 0
				}
				if bytes.Contains(m.Data, []byte("queue\x00")) || (!has && bytes.Contains(m.Data, []byte("hash\x00"))) {
					return unix.ENOENT
				}
				return 0
			}}
			var logs bytes.Buffer
			m := NewManager(rec.conn(t), slog.New(slog.NewTextHandler(&logs, nil)))
			cfg := DefaultConfig()
			cfg.QueueCount = 2
			policies := []Policy{{Port: 80, Side: SideLocal}}
			for range 2 {
				if err := m.Apply(cfg, policies); err != nil {
					t.Fatalf("Apply: %v", err)
				}
			}
			hashProbes, maps, ranges := 0, 0, 0
			for _, msg := range rec.reqs {
				name := msgName(t, msg)
				switch {
				case strings.HasPrefix(name, "newrule inet "+probeTableName) && bytes.Contains(msg.Data, []byte("hash\x00")):
					hashProbes++
				case strings.HasPrefix(name, "newset inet tcpcrypt "+QueueMapName):
					maps++
				case strings.HasPrefix(name, "newrule inet tcpcrypt") && bytes.Contains(msg.Data, nfqInfoV3{QueueNum: cfg.QueueNum, QueuesTotal: 2}.marshal()[:4]):
					ranges++ // a target over both queues: the address hash
				}
			}
			if hashProbes != 1 {
				t.Errorf("%d hash probes over two Applies, want 1", hashProbes)
			}
			wantBalance := "balance=flow"
			if has && (maps != 4 || ranges != 0) {
				t.Errorf("with the hash: %d map messages (want 2 per Apply), %d rules over the whole range (want 0)", maps, ranges)
			}
			if !has {
				wantBalance = "balance=address"
				if maps != 0 || ranges == 0 {
					t.Errorf("without the hash: %d map messages (want 0), %d rules over the whole range", maps, ranges)
				}
				if !strings.Contains(logs.String(), "nft_hash") {
					t.Errorf("fallback not explained in the log: %q", logs.String())
				}
			}
			if !strings.Contains(logs.String(), wantBalance) {
				t.Errorf("log does not say %s: %q", wantBalance, logs.String())
			}
			if got := "balance=" + m.Balance(); got != wantBalance {
				t.Errorf("Balance() = %q, want %q", got, wantBalance)
			}
		})
	}
}
