package rules

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// probeTableName is the throwaway table DetectQueue creates and deletes in the
// same batch; it never becomes visible.
const probeTableName = "tcpcrypt-probe"

// table is the daemon's table.
func table() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
}

// deleteIfExists queues "add table; delete table": adding an existing table
// without NLM_F_EXCL succeeds, so the pair removes t whether or not it existed,
// inside the batch that also carries the rest.
func deleteIfExists(conn *nftables.Conn, t *nftables.Table) {
	conn.AddTable(t)
	conn.DelTable(t)
}

// Replace replaces the daemon's table with rs in one atomic batch: delete the
// table if it exists (a stale copy from an earlier run included), then add the
// table, its empty guard sets, its queue maps with their chains, its base
// chains and their rules. On error nothing has changed. Other tables are
// never touched.
func (rs *Ruleset) Replace(conn *nftables.Conn) error {
	return rs.send(conn, true)
}

// Apply updates the daemon's table to rs in one atomic batch, keeping the
// guard sets and their elements: the table and the sets are added if missing,
// each chain and queue map is flushed and refilled. Protected flows stay
// protected across the change (DESIGN.md invariant 11). On error nothing has
// changed.
func (rs *Ruleset) Apply(conn *nftables.Conn) error {
	return rs.send(conn, false)
}

func (rs *Ruleset) send(conn *nftables.Conn, replace bool) error {
	t := table()
	if replace {
		deleteIfExists(conn, t)
	}
	conn.AddTable(t)
	ids := map[string]uint32{}
	for _, v6 := range []bool{false, true} {
		s := guardSet(t, v6)
		if err := conn.AddSet(s, nil); err != nil {
			return fmt.Errorf("rules: apply table inet %s: set %s: %w", TableName, s.Name, err)
		}
		ids[s.Name] = s.ID
	}
	// The queue chains come before the maps that jump to them, the maps
	// before the select chains that look them up, and those before the
	// base-chain rules that jump to them.
	for _, m := range rs.Maps {
		for _, c := range m.Chains {
			addRules(conn, t, conn.AddChain(&nftables.Chain{Name: c.Name, Table: t}), c.Rules, ids, replace)
		}
		s := m.nftMap(t)
		if err := conn.AddSet(s, nil); err != nil {
			return fmt.Errorf("rules: apply table inet %s: map %s: %w", TableName, s.Name, err)
		}
		if !replace {
			conn.FlushSet(s)
		}
		if err := conn.SetAddElements(s, m.elements()); err != nil {
			return fmt.Errorf("rules: apply table inet %s: map %s: %w", TableName, s.Name, err)
		}
		ids[s.Name] = s.ID
		addRules(conn, t, conn.AddChain(&nftables.Chain{Name: m.Select.Name, Table: t}), m.Select.Rules, ids, replace)
	}
	accept := nftables.ChainPolicyAccept
	for _, c := range rs.Chains {
		hook, prio := c.Hook, c.Priority
		ch := conn.AddChain(&nftables.Chain{
			Name:     c.Name,
			Table:    t,
			Type:     nftables.ChainTypeFilter,
			Hooknum:  &hook,
			Priority: &prio,
			Policy:   &accept,
		})
		addRules(conn, t, ch, c.Rules, ids, replace)
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("rules: apply table inet %s: %w", TableName, err)
	}
	return nil
}

// addRules queues rules for chain ch of table t, after flushing the chain
// unless the table is being replaced.
func addRules(conn *nftables.Conn, t *nftables.Table, ch *nftables.Chain, rules []Rule, ids map[string]uint32, replace bool) {
	if !replace {
		conn.FlushChain(ch)
	}
	for _, r := range rules {
		conn.AddRule(&nftables.Rule{
			Table:    t,
			Chain:    ch,
			Exprs:    withSetIDs(r.Exprs, ids),
			UserData: userdata.AppendString(nil, userdata.TypeComment, r.Comment),
		})
	}
}

// withSetIDs returns exprs with each set lookup given the batch-local id of
// the set it names (the kernel resolves a set added in the same batch by id),
// leaving the Ruleset's own expressions untouched.
func withSetIDs(exprs []expr.Any, ids map[string]uint32) []expr.Any {
	var out []expr.Any
	for i, e := range exprs {
		l, ok := e.(*expr.Lookup)
		if !ok {
			continue
		}
		if out == nil {
			out = slices.Clone(exprs)
		}
		c := *l
		c.SetID = ids[l.SetName]
		out[i] = &c
	}
	if out == nil {
		return exprs
	}
	return out
}

// Remove deletes the daemon's table if it exists, in one batch; it is not an
// error when there is none. Other tables are never touched.
func Remove(conn *nftables.Conn) error {
	deleteIfExists(conn, table())
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("rules: remove table inet %s: %w", TableName, err)
	}
	return nil
}

// probe sends, in one batch, a throwaway table with a regular (unhooked)
// chain holding one rule of e, and the table's deletion: the batch either
// fails as a whole or leaves nothing behind, and no packet ever sees it. The
// error is the kernel's answer to the rule.
func probe(conn *nftables.Conn, e expr.Any) error {
	t := &nftables.Table{Name: probeTableName, Family: nftables.TableFamilyINet}
	deleteIfExists(conn, t)
	conn.AddTable(t)
	ch := conn.AddChain(&nftables.Chain{Name: "probe", Table: t})
	conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{e}})
	conn.DelTable(t)
	return conn.Flush()
}

// DetectQueue finds out whether the kernel has the native queue expression. In
// one batch it adds a throwaway table with a regular (unhooked) chain holding a
// native queue rule, and deletes the table again; the batch either fails as a
// whole or leaves nothing behind, and no packet ever sees the probe.
//
// If the kernel rejects the expression as unknown (ENOENT) or unsupported
// (EOPNOTSUPP), the answer is QueueCompat. Any other error (for instance EPERM)
// is returned, since the compat path would fail the same way. The decision is
// logged to log (nil means discard).
func DetectQueue(conn *nftables.Conn, log *slog.Logger) (QueueKind, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	err := probe(conn, &expr.Queue{Num: 0, Total: 1, Flag: expr.QueueFlagBypass})
	switch {
	case err == nil:
		log.Info("nftables queue expression available", "queue", QueueNative)
		return QueueNative, nil
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP):
		// Expected on kernels built without nft_queue: the probe's one
		// netlink error reply (ENOENT) is the answer, not a fault.
		log.Info("this kernel has no native nftables queue expression (nft_queue); using the xt NFQUEUE target through nft_compat",
			"queue", QueueCompat)
		log.Debug("queue expression probe refused", "err", err)
		return QueueCompat, nil
	default:
		return 0, fmt.Errorf("rules: probe queue expression: %w", err)
	}
}

// Manager applies and removes the daemon's rules over one nftables connection.
// It detects the queue mechanism once, on the first Apply. Its methods are safe
// for concurrent use.
type Manager struct {
	mu    sync.Mutex
	conn  *nftables.Conn
	log   *slog.Logger
	queue QueueKind // 0 until detected
	// hash: whether the kernel has the hash expression flow balancing
	// needs; hashKnown is false until it was probed (on the first Apply
	// that needs it).
	hash, hashKnown bool
	// balance is how the rules in force spread packets over the queues
	// (see Balance).
	balance string
	// applied: the table was replaced by this Manager and is kept since,
	// so later Applies update it in place (keeping the guard sets).
	applied bool
}

// NewManager returns a Manager sending to conn and logging to log (nil means
// discard).
func NewManager(conn *nftables.Conn, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{conn: conn, log: log}
}

// Apply builds the rule set for cfg and policies and installs it atomically.
// With several queues and flow balancing asked for, it first checks that the
// kernel has the hash expression (DetectFlowHash) and, if not, balances by
// the address pair instead (Config.AddressHash).
// The first Apply (and the first after Remove) replaces the table, a stale
// one left by an earlier run included (Ruleset.Replace); later ones update it
// in place, keeping the guard sets (Ruleset.Apply). On error the previous
// table, if any, stays in place.
func (m *Manager) Apply(cfg Config, policies []Policy) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.queue == 0 {
		k, err := DetectQueue(m.conn, m.log)
		if err != nil {
			return err
		}
		m.queue = k
	}
	if cfg.flowBalanced() && !m.hashKnown {
		ok, err := DetectFlowHash(m.conn, m.log)
		if err != nil {
			return err
		}
		m.hash, m.hashKnown = ok, true
	}
	if cfg.flowBalanced() && !m.hash {
		cfg.AddressHash = true
	}
	rs, err := Build(cfg, policies, m.queue)
	if err != nil {
		return err
	}
	send := rs.Replace
	if m.applied {
		send = rs.Apply
	}
	if err := send(m.conn); err != nil {
		return err
	}
	m.applied = true
	m.balance = cfg.balance()
	m.log.Info("nftables rules applied", "table", "inet "+TableName, "policies", len(policies),
		"queue", m.queue, "queue_num", cfg.QueueNum, "queue_count", cfg.queueCount(), "balance", cfg.balance())
	return nil
}

// Remove deletes the table (see Remove). Call it on exit, and at start before
// the first Apply when the daemon should not cover anything yet.
func (m *Manager) Remove() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := Remove(m.conn); err != nil {
		return err
	}
	m.applied = false
	m.log.Info("nftables rules removed", "table", "inet "+TableName)
	return nil
}

// Balance says how the rules in force spread packets over the queues: "flow"
// (the symmetric flow hash), "address" (the NFQUEUE target's address-pair
// hash: all connections between two hosts on one queue), "cpu" (CPU fanout),
// "none" (one queue), or "" before the first Apply.
func (m *Manager) Balance() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.balance
}

// QueueKind returns the detected queue mechanism, or 0 before the first Apply.
func (m *Manager) QueueKind() QueueKind {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.queue
}
