package metrics

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
)

// maxHandshakeSeries bounds the (TEP, AEAD) pairs Handshakes keeps apart;
// further pairs are counted under "other". The engine negotiates only the
// configured suites, so the bound is never reached in practice.
const maxHandshakeSeries = 64

// otherLabel names the series that collects pairs beyond the bound.
const otherLabel = "other"

type suite struct{ tep, aead string }

// Handshakes counts encrypted connections by key agreement (TEP) and frame
// cipher (AEAD). Inc is safe from any goroutine and takes no lock once a
// pair has been seen. The zero value is ready to use.
type Handshakes struct {
	m sync.Map // suite -> *atomic.Uint64
	n atomic.Int32
}

// Inc counts one connection that negotiated tep and aead (their IANA names,
// RFC 8548 §7). Inc on a nil *Handshakes does nothing.
func (h *Handshakes) Inc(tep, aead string) {
	if h == nil {
		return
	}
	k := suite{tep, aead}
	if v, ok := h.m.Load(k); ok {
		v.(*atomic.Uint64).Add(1)
		return
	}
	if h.n.Load() >= maxHandshakeSeries {
		k = suite{otherLabel, otherLabel}
	}
	v, loaded := h.m.LoadOrStore(k, new(atomic.Uint64))
	if !loaded {
		h.n.Add(1)
	}
	v.(*atomic.Uint64).Add(1)
}

// Each calls fn for every pair counted so far, ordered by TEP then AEAD.
func (h *Handshakes) Each(fn func(tep, aead string, n uint64)) {
	if h == nil {
		return
	}
	type row struct {
		suite
		n uint64
	}
	var rows []row
	h.m.Range(func(k, v any) bool {
		rows = append(rows, row{k.(suite), v.(*atomic.Uint64).Load()})
		return true
	})
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.tep, b.tep), cmp.Compare(a.aead, b.aead))
	})
	for _, r := range rows {
		fn(r.tep, r.aead, r.n)
	}
}
