package daemon

import (
	"container/list"
	"net/netip"
	"sync"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/engine"
)

// Bounds of the fallback record (DESIGN.md invariant 12: a fixed cap,
// whatever the peers do).
const (
	// fallbackRecordMax is how many fallen-back connections are
	// remembered; past it, the oldest entry is evicted (counted).
	fallbackRecordMax = 4096
	// fallbackRecordMaxAge is how long an entry is kept at most; an older
	// one is dropped (counted) even if its connection is still open.
	fallbackRecordMaxAge = 24 * time.Hour
	// fallbackGrace is how long a new entry is kept without asking the
	// kernel: a passive open falls back on the peer's SYN, while the
	// kernel holds only a request socket (not a connected one) until the
	// handshake's last ACK.
	fallbackGrace = 10 * time.Second
)

// fallenBack is one connection end that fell back to plain TCP.
type fallenBack struct {
	Local, Remote netip.AddrPort // Local is this host's end
	Reason        string         // engine.FallbackReason name, e.g. "no_peer_eno"
	At            time.Time      // when it fell back
}

// fallbackRecord remembers the connections the engines forgot because they
// fell back to plain TCP, so that tcnetstat lists them and ctl can say "not
// encrypted, and why" rather than "not tracked".
//
// The engines report a fallback once, through Config.Events; from then on
// a fallen-back connection's packets pass through the engine without a
// flow, and nothing here is touched per packet. So the record cannot see
// the connection end. Entries leave it:
//   - when the record is full: the oldest is evicted (counter evicted);
//   - after fallbackRecordMaxAge (counter expired), checked whenever the
//     record is used;
//   - when a query finds the connection's socket gone (sock_diag reports no
//     socket in a connected state for the tuple, i.e. none or one in
//     TIME_WAIT; counter ended): the daemon checks at every netstat and
//     every sessid that hits the record, for entries older than
//     fallbackGrace;
//   - when the same tuple gets encrypted or aborted later (a new
//     connection reusing it).
//
// It is safe for concurrent use: workers add to it, control clients read.
type fallbackRecord struct {
	max    int
	maxAge time.Duration
	now    func() time.Time
	// socks checks that a recorded connection still has its socket.
	socks sockLiveness

	mu    sync.Mutex
	byKey map[[2]netip.AddrPort]*list.Element // of *fallenBack
	order list.List                           // oldest first
	// evicted, expired and ended count the entries dropped for being the
	// oldest of a full record, too old, and gone from the kernel.
	evicted, expired, ended uint64
}

func newFallbackRecord(max int, maxAge time.Duration, now func() time.Time) *fallbackRecord {
	return &fallbackRecord{max: max, maxAge: maxAge, now: now, socks: kernelSockets{},
		byKey: map[[2]netip.AddrPort]*list.Element{}}
}

func recKey(local, remote netip.AddrPort) [2]netip.AddrPort {
	return [2]netip.AddrPort{unmapAP(local), unmapAP(remote)}
}

// event updates the record from an engine event: an opportunistic
// connection that fell back is added; a tuple that is encrypted or aborted
// is removed. A fallback under the Required policy is not added: the engine
// aborts that connection at once.
func (r *fallbackRecord) event(ev engine.Event) {
	switch {
	case ev.Kind == engine.EventFallback && ev.Mode != engine.Required:
		r.add(fallenBack{Local: unmapAP(ev.Local), Remote: unmapAP(ev.Remote), Reason: ev.Reason, At: r.now()})
	case ev.Kind == engine.EventEncrypted, ev.Kind == engine.EventAbort:
		r.remove(ev.Local, ev.Remote)
	}
}

// add records fb, replacing an entry for the same tuple.
func (r *fallbackRecord) add(fb fallenBack) {
	k := recKey(fb.Local, fb.Remote)
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.byKey[k]; ok {
		r.order.Remove(el)
		delete(r.byKey, k)
	}
	r.expireLocked()
	for r.order.Len() >= r.max && r.order.Len() > 0 {
		r.dropLocked(r.order.Front())
		r.evicted++
	}
	r.byKey[k] = r.order.PushBack(&fb)
}

func (r *fallbackRecord) remove(local, remote netip.AddrPort) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.byKey[recKey(local, remote)]; ok {
		r.dropLocked(el)
	}
}

// gone drops the entry of a connection whose socket is gone.
func (r *fallbackRecord) gone(local, remote netip.AddrPort) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.byKey[recKey(local, remote)]; ok {
		r.dropLocked(el)
		r.ended++
	}
}

func (r *fallbackRecord) dropLocked(el *list.Element) {
	fb := r.order.Remove(el).(*fallenBack)
	delete(r.byKey, recKey(fb.Local, fb.Remote))
}

// expireLocked drops the entries older than maxAge; they are at the front,
// since entries are added in time order.
func (r *fallbackRecord) expireLocked() {
	now := r.now()
	for el := r.order.Front(); el != nil; el = r.order.Front() {
		if now.Sub(el.Value.(*fallenBack).At) < r.maxAge {
			return
		}
		r.dropLocked(el)
		r.expired++
	}
}

// get returns the entry for the tuple.
func (r *fallbackRecord) get(local, remote netip.AddrPort) (fallenBack, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked()
	el, ok := r.byKey[recKey(local, remote)]
	if !ok {
		return fallenBack{}, false
	}
	return *el.Value.(*fallenBack), true
}

// list returns every entry, oldest first.
func (r *fallbackRecord) list() []fallenBack {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked()
	out := make([]fallenBack, 0, r.order.Len())
	for el := r.order.Front(); el != nil; el = el.Next() {
		out = append(out, *el.Value.(*fallenBack))
	}
	return out
}

// lookup returns the live entry for the tuple: one whose socket still
// exists. An entry whose socket is gone is dropped (counted as ended). If
// the kernel cannot be asked, the entry is believed.
func (r *fallbackRecord) lookup(local, remote netip.AddrPort) (fallenBack, bool) {
	fb, ok := r.get(local, remote)
	if !ok || r.now().Sub(fb.At) < fallbackGrace {
		return fb, ok
	}
	if alive, err := r.socks.alive(local, remote); err == nil && !alive {
		r.gone(local, remote)
		return fallenBack{}, false
	}
	return fb, true
}

// live returns the entries whose sockets still exist, dropping the others
// (counted as ended), oldest first. If the kernel cannot be asked, every
// entry is returned.
func (r *fallbackRecord) live() []fallenBack {
	all := r.list()
	now := r.now()
	if len(all) == 0 || now.Sub(all[0].At) < fallbackGrace {
		return all // oldest first: all are within the grace period
	}
	socks, err := r.socks.connected()
	if err != nil {
		return all
	}
	out := all[:0]
	for _, fb := range all {
		if now.Sub(fb.At) < fallbackGrace || socks.has(fb.Local, fb.Remote) {
			out = append(out, fb)
			continue
		}
		r.gone(fb.Local, fb.Remote)
	}
	return out
}

// addCounters adds the record's size and drop counters to a status map.
func (r *fallbackRecord) addCounters(m map[string]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m["fallback_record_entries"] = uint64(r.order.Len())
	m["fallback_record_evicted"] = r.evicted
	m["fallback_record_expired"] = r.expired
	m["fallback_record_ended"] = r.ended
}

// conn is fb's control-protocol form: state "plain", its reason, and its
// age since it fell back.
func (fb fallenBack) conn(now time.Time) ctl.Conn {
	return ctl.Conn{
		Local: fb.Local, Remote: fb.Remote, State: "plain",
		AgeSeconds:     now.Sub(fb.At).Seconds(),
		LastError:      "fell back to plain TCP: " + fallbackText(fb.Reason),
		FallbackReason: fb.Reason,
	}
}

// fallbackText explains a fallback reason for people.
func fallbackText(reason string) string {
	if s, ok := fallbackTexts[reason]; ok {
		return s + " (" + reason + ")"
	}
	return reason
}

var fallbackTexts = map[string]string{
	engine.FallbackNoLocalENO.String():     "this host sent no TCP-ENO option",
	engine.FallbackLocalMalformed.String(): "this host's TCP-ENO option is malformed",
	engine.FallbackDuplicateENO.String():   "the peer sent several TCP-ENO options",
	engine.FallbackNoPeerENO.String():      "the peer has no tcpcrypt (no TCP-ENO option in its SYN or SYN-ACK)",
	engine.FallbackMalformed.String():      "the peer's TCP-ENO option is malformed",
	engine.FallbackVacuous.String():        "a SYN offered no encryption protocol",
	engine.FallbackRoleClash.String():      "both ends claimed the same TCP-ENO role",
	engine.FallbackAppAware.String():       "application-aware mode is required and the peer did not set it",
	engine.FallbackNoCommonTEP.String():    "no encryption protocol both ends support",
	engine.FallbackNoENOOnACK.String():     "the peer's first ACK carried no TCP-ENO option",
	engine.FallbackNoOptionSpace.String():  "no room for the TCP-ENO option in the SYN",
	engine.FallbackSYNData.String():        "the SYN carried data or a Fast Open cookie",
	engine.FallbackNoAnswer.String():       "no acceptable encryption protocol to answer with",
	engine.FallbackTableFull.String():      "the daemon's flow table was full",
	engine.FallbackSimOpen.String():        "simultaneous open without arranged roles",
	engine.FallbackEvicted.String():        "the daemon's flow table was full and this connection, still in its handshake, was evicted",
}

// onEvent is the engines' Config.Events: the fallback record, then the
// event log.
func (d *Daemon) onEvent(ev engine.Event) {
	d.fallbacks.event(ev)
	if d.events != nil {
		d.events.Event(ev)
	}
}
