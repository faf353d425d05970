package engine

import "fmt"

// dump describes the internal state of every flow, for failing tests.
func (m *middle) dump() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := ""
	for _, f := range m.e.tab.flows {
		s += fmt.Sprintf("\n  %v<->%v %v keys=%v carry=%v held=%d rtxAt=%v redeliverAt=%v",
			f.key.local, f.key.remote, f.state, f.keys, f.carryENO, len(f.held), !f.rtxAt.IsZero(), !f.redeliverAt.IsZero())
		if f.sndReady {
			h := &f.snd
			s += fmt.Sprintf("\n    snd: pNext=%d cNext=%d pAcked=%d cAcked=%d fin=%v finAcked=%v frames=%d init=%d",
				h.pNext, h.cNext, h.pAcked, h.cAcked, h.fin, h.finAcked, len(h.live()), h.initLen)
		}
		if f.rcvReady {
			r := &f.rcv
			s += fmt.Sprintf("\n    rcv: cBase=%d contig=%d ooo=%d/%dB pNext=%d pAckLocal=%d cAckOut=%d finFrame=%v finLocal=%v finC=%d frames=%d plain=%d ackedToPeer=%d",
				r.cBase(), r.contigEnd(), len(r.ooo), r.oooBytes, r.pNext, r.pAckLocal, r.cAckOut, r.finFrame, r.finLocal, r.finC, len(r.frames[r.fh:]), r.plain.size(), f.ackedToPeer)
		}
	}
	return s + "\n  trace:" + m.traceDump()
}
