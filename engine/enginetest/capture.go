package enginetest

import (
	"slices"
	"sync"
	"time"
)

// Captured is one packet seen on the wire.
type Captured struct {
	Dir  WireDir
	Time time.Time
	Pkt  []byte // a copy, truncated to Config.CaptureSnap if set
	Len  int    // the packet's length on the wire (before truncation)
}

// captureRing keeps the most recent wire packets.
type captureRing struct {
	mu    sync.Mutex
	limit int
	snap  int
	buf   []Captured
	next  int // ring write position once full
	total uint64
}

func (c *captureRing) add(dir WireDir, p []byte) {
	if c.limit <= 0 {
		return
	}
	e := Captured{Dir: dir, Time: time.Now(), Len: len(p)}
	if c.snap > 0 && len(p) > c.snap {
		p = p[:c.snap]
	}
	e.Pkt = slices.Clone(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	if len(c.buf) < c.limit {
		c.buf = append(c.buf, e)
		return
	}
	c.buf[c.next] = e
	c.next = (c.next + 1) % c.limit
}

// snapshot returns the kept packets, oldest first, and how many were ever
// captured.
func (c *captureRing) snapshot() ([]Captured, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Captured, 0, len(c.buf))
	out = append(out, c.buf[c.next:]...)
	out = append(out, c.buf[:c.next]...)
	return out, c.total
}
