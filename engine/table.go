package engine

import (
	"container/heap"
	"time"
)

// table is the flow table: a map by key, a timer heap ordered by each
// flow's next deadline, and two eviction lists, oldest first: flows that
// only linger (closed, aborted, reset) and half-open flows. Established
// flows are on neither list and are never evicted to make room.
type table struct {
	flows    map[flowKey]*flow
	max      int
	timers   flowHeap
	lingers  flowList
	halfOpen flowList
}

func (t *table) init(max int) {
	t.flows = make(map[flowKey]*flow)
	t.max = max
}

func (t *table) full() bool { return len(t.flows) >= t.max }

// add inserts a new flow (the caller made room) and puts it on the
// half-open list.
func (t *table) add(f *flow) {
	t.flows[f.key] = f
	f.heapIdx = -1
	t.halfOpen.pushBack(f)
}

// remove deletes f from every structure.
func (t *table) remove(f *flow) {
	delete(t.flows, f.key)
	if f.list != nil {
		f.list.remove(f)
	}
	if f.heapIdx >= 0 {
		heap.Remove(&t.timers, f.heapIdx)
	}
}

// victim returns the flow to evict to make room: the oldest lingering
// flow, else the oldest half-open one, else nil.
func (t *table) victim() *flow {
	if f := t.lingers.head; f != nil {
		return f
	}
	return t.halfOpen.head
}

// moved updates the eviction lists after f changed state.
func (t *table) moved(f *flow) {
	var want *flowList
	switch {
	case f.state.dead():
		want = &t.lingers
	case f.state.halfOpen():
		want = &t.halfOpen
	}
	if f.list == want {
		return
	}
	if f.list != nil {
		f.list.remove(f)
	}
	if want != nil {
		want.pushBack(f)
	}
}

// schedule makes sure f's timer fires no later than at.
func (t *table) schedule(f *flow, at time.Time) {
	if at.IsZero() {
		return
	}
	if f.heapIdx >= 0 {
		if !at.Before(f.deadline) {
			return
		}
		f.deadline = at
		heap.Fix(&t.timers, f.heapIdx)
		return
	}
	f.deadline = at
	heap.Push(&t.timers, f)
}

// popDue removes and returns the flow with the earliest deadline if it is
// not after now.
func (t *table) popDue(now time.Time) *flow {
	if len(t.timers) == 0 || t.timers[0].deadline.After(now) {
		return nil
	}
	return heap.Pop(&t.timers).(*flow)
}

// nextDeadline returns the earliest deadline, or the zero time.
func (t *table) nextDeadline() time.Time {
	if len(t.timers) == 0 {
		return time.Time{}
	}
	return t.timers[0].deadline
}

// flowHeap is a min-heap of flows by deadline (container/heap).
type flowHeap []*flow

func (h flowHeap) Len() int           { return len(h) }
func (h flowHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h flowHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *flowHeap) Push(x any) {
	f := x.(*flow)
	f.heapIdx = len(*h)
	*h = append(*h, f)
}
func (h *flowHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	f.heapIdx = -1
	return f
}

// flowList is an intrusive doubly linked list of flows, oldest first.
type flowList struct {
	head, tail *flow
	n          int
}

func (l *flowList) pushBack(f *flow) {
	f.list = l
	f.prev = l.tail
	f.next = nil
	if l.tail != nil {
		l.tail.next = f
	} else {
		l.head = f
	}
	l.tail = f
	l.n++
}

func (l *flowList) remove(f *flow) {
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		l.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else {
		l.tail = f.prev
	}
	f.prev, f.next, f.list = nil, nil, nil
	l.n--
}
