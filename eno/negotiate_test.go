package eno

import (
	"bytes"
	"testing"
)

// side describes one endpoint's view for Negotiate in a scenario.
type side struct {
	cfg      Config
	passive  bool
	local    string // our option as sent, "" = none
	peer     string // peer's option as received, "" = none
	peerN    int    // ENO options in the peer's SYN (0 = 1 if peer != "")
	ackENO   bool
	valid    func(uint8, Suboption, Suboption) bool
	wantOK   bool
	reason   FallbackReason
	tep      uint8
	tepByte  uint8
	role     Role
	peerA    bool
	transcr  string
	localSub Suboption
	peerSub  Suboption
}

func (s side) input(t *testing.T) Input {
	in := Input{Config: s.cfg, Passive: s.passive, PeerACKHasENO: s.ackENO, Valid: s.valid, PeerSYNENOCount: s.peerN}
	if s.local != "" {
		in.LocalSYN = h(t, s.local)
	}
	if s.peer != "" {
		in.PeerSYN = h(t, s.peer)
		if in.PeerSYNENOCount == 0 {
			in.PeerSYNENOCount = 1
		}
	}
	return in
}

func (s side) check(t *testing.T, got Result) {
	t.Helper()
	if got.OK != s.wantOK || got.Reason != s.reason {
		t.Fatalf("OK=%v reason=%v (err %v), want OK=%v reason=%v", got.OK, got.Reason, got.Err, s.wantOK, s.reason)
	}
	if !s.wantOK {
		if got.Role != RoleNone || got.Transcript != nil {
			t.Errorf("failed result carries role %v / transcript % x", got.Role, got.Transcript)
		}
		return
	}
	if got.TEP != s.tep || got.TEPByte != s.tepByte || got.V != (s.tepByte&0x80 != 0) {
		t.Errorf("TEP=0x%02x TEPByte=0x%02x V=%v, want 0x%02x 0x%02x", got.TEP, got.TEPByte, got.V, s.tep, s.tepByte)
	}
	if got.Role != s.role || got.PeerA != s.peerA {
		t.Errorf("role=%v peerA=%v, want %v %v", got.Role, got.PeerA, s.role, s.peerA)
	}
	if want := h(t, s.transcr); !bytes.Equal(got.Transcript, want) {
		t.Errorf("transcript = % x, want % x", got.Transcript, want)
	}
	if s.localSub.ID != 0 && (!got.LocalSub.Equal(s.localSub) || !got.PeerSub.Equal(s.peerSub)) {
		t.Errorf("subs = %+v / %+v, want %+v / %+v", got.LocalSub, got.PeerSub, s.localSub, s.peerSub)
	}
}

var (
	cfgXY  = Config{TEPs: []uint8{tepY, tepX}}
	cfgY   = Config{TEPs: []uint8{tepY}}
	cfgXYZ = Config{TEPs: []uint8{tepZ, tepY, tepX}}
)

func TestNegotiateScenarios(t *testing.T) {
	tests := []struct {
		name string
		s    side
	}{
		// RFC 8547 §6 Fig. 9: A→B SYN ENO<X,Y>; B→A SYN-ACK ENO<b=1,Y>; A→B ACK ENO<>.
		{"fig 9 at A", side{cfg: cfgXY, local: "45 04 21 23", peer: "45 04 01 23", ackENO: true,
			wantOK: true, tep: tepY, tepByte: tepY, role: RoleA, transcr: "45 04 21 23 45 04 01 23",
			localSub: Suboption{ID: tepY}, peerSub: Suboption{ID: tepY}}},
		{"fig 9 at B", side{cfg: cfgY, passive: true, local: "45 04 01 23", peer: "45 04 21 23", ackENO: true,
			wantOK: true, tep: tepY, tepByte: tepY, role: RoleB, transcr: "45 04 21 23 45 04 01 23"}},
		{"fig 9 at B before the third segment", side{cfg: cfgY, passive: true, local: "45 04 01 23", peer: "45 04 21 23",
			reason: ReasonNoENOOnACK}},
		// Fig. 10: the SYN-ACK comes back without ENO.
		{"fig 10 at A: no ENO in SYN-ACK", side{cfg: cfgXY, local: "45 04 21 23", reason: ReasonNoPeerENO}},
		{"fig 10 at B: ENO stripped from A's SYN", side{cfg: cfgY, passive: true, reason: ReasonNoLocalENO}},
		{"fig 10 at B: SYN stripped, B still tried", side{cfg: cfgY, passive: true, local: "45 04 01 23", reason: ReasonNoPeerENO}},
		// Fig. 11: B's ENO is stripped on the way back; A's ACK has none.
		{"fig 11 at A", side{cfg: cfgXY, local: "45 04 21 23", reason: ReasonNoPeerENO}},
		{"fig 11 at B", side{cfg: cfgXY, passive: true, local: "45 04 01 21", peer: "45 04 21 23", ackENO: false, reason: ReasonNoENOOnACK}},
		// Fig. 12: simultaneous open, SYN ENO<Y,X> and SYN ENO<b=1,X,Y,Z>: Y wins.
		{"fig 12 at A", side{cfg: cfgXY, local: "45 04 23 21", peer: "45 06 01 21 23 24", ackENO: true,
			wantOK: true, tep: tepY, tepByte: tepY, role: RoleA, transcr: "45 04 23 21 45 06 01 21 23 24"}},
		{"fig 12 at B", side{cfg: cfgXYZ, local: "45 06 01 21 23 24", peer: "45 04 23 21", ackENO: true,
			wantOK: true, tep: tepY, tepByte: tepY, role: RoleB, transcr: "45 04 23 21 45 06 01 21 23 24"}},
		{"simultaneous open, both b=0", side{cfg: cfgXY, local: "45 04 23 21", peer: "45 04 21 23", ackENO: true, reason: ReasonRoleClash}},
		{"simultaneous open, both b=1", side{cfg: cfgXY, local: "45 04 01 23", peer: "45 04 01 23", ackENO: true, reason: ReasonRoleClash}},
		{"active opener with b=1 meets a passive opener", side{cfg: cfgXY, local: "45 05 01 21 23", peer: "45 04 01 23", ackENO: true, reason: ReasonRoleClash}},
		{"passive opener that sent b=0 (bug)", side{cfg: cfgXY, passive: true, local: "45 03 23", peer: "45 04 01 23", ackENO: true, reason: ReasonRoleClash}},
		// Echoing middlebox: A gets its own SYN option back in the SYN-ACK.
		{"echoing middlebox", side{cfg: cfgXY, local: "45 04 21 23", peer: "45 04 21 23", ackENO: true, reason: ReasonRoleClash}},
		{"echoing middlebox, explicit a", side{cfg: cfgXY, local: "45 05 02 21 23", peer: "45 05 02 21 23", ackENO: true, reason: ReasonRoleClash}},
		// Vacuous ENO on either side.
		{"peer vacuous with b=1", side{cfg: cfgXY, local: "45 04 21 23", peer: "45 03 01", ackENO: true, reason: ReasonVacuous}},
		{"peer vacuous, SYN 45 02", side{cfg: cfgY, passive: true, local: "45 04 01 23", peer: "45 02", ackENO: true, reason: ReasonVacuous}},
		{"we sent vacuous", side{cfg: cfgXY, local: "45 02", peer: "45 04 01 23", ackENO: true, reason: ReasonVacuous}},
		// Duplicate ENO options in the peer's SYN.
		{"duplicate ENO in SYN", side{cfg: cfgY, passive: true, local: "45 04 01 23", peer: "45 04 21 23", peerN: 2, ackENO: true, reason: ReasonDuplicateENO}},
		// Malformed options.
		{"peer malformed: length byte overrun", side{cfg: cfgXY, local: "45 04 21 23", peer: "45 05 01 81 a3", ackENO: true, reason: ReasonMalformed}},
		{"peer malformed: length byte then v=0", side{cfg: cfgXY, local: "45 04 21 23", peer: "45 06 01 80 23 00", ackENO: true, reason: ReasonMalformed}},
		{"our option malformed", side{cfg: cfgXY, local: "45 04 21", peer: "45 04 01 23", ackENO: true, reason: ReasonLocalMalformed}},
		// Mandatory application-aware mode.
		{"mandatory app-aware, peer a=0", side{cfg: Config{TEPs: []uint8{tepY}, MandatoryAppAware: true}, local: "45 04 02 23", peer: "45 04 01 23", ackENO: true, reason: ReasonAppAwareRequired}},
		{"mandatory app-aware, peer a=1", side{cfg: Config{TEPs: []uint8{tepY}, MandatoryAppAware: true}, local: "45 04 02 23", peer: "45 04 03 23", ackENO: true,
			wantOK: true, tep: tepY, tepByte: tepY, role: RoleA, peerA: true, transcr: "45 04 02 23 45 04 03 23"}},
		{"a=1 from peer without mandatory mode is just reported", side{cfg: cfgY, passive: true, local: "45 04 01 23", peer: "45 04 02 23", ackENO: true,
			wantOK: true, tep: tepY, tepByte: tepY, role: RoleB, peerA: true, transcr: "45 04 02 23 45 04 01 23"}},
		{"z bits ignored on receipt", side{cfg: cfgY, local: "45 03 23", peer: "45 04 1d 23", ackENO: true,
			wantOK: true, tep: tepY, tepByte: tepY, role: RoleA, transcr: "45 03 23 45 04 1d 23"}},
		// TEP choice.
		{"no common TEP", side{cfg: cfgXY, local: "45 04 21 23", peer: "45 04 01 24", ackENO: true, reason: ReasonNoCommonTEP}},
		{"last valid TEP in B wins, not our preference", side{cfg: cfgXY, local: "45 04 23 21", peer: "45 05 01 23 21", ackENO: true,
			wantOK: true, tep: tepX, tepByte: tepX, role: RoleA, transcr: "45 04 23 21 45 05 01 23 21"}},
		{"A's order has no effect", side{cfg: cfgXY, passive: false, local: "45 04 21 23", peer: "45 05 01 23 21", ackENO: true,
			wantOK: true, tep: tepX, tepByte: tepX, role: RoleA, transcr: "45 04 21 23 45 05 01 23 21"}},
		{"B's last TEP not offered by A is skipped", side{cfg: cfgXY, local: "45 04 21 23", peer: "45 05 01 23 24", ackENO: true,
			wantOK: true, tep: tepY, tepByte: tepY, role: RoleA, transcr: "45 04 21 23 45 05 01 23 24"}},
		{"Config.TEPs is not consulted: the options decide", side{cfg: cfgY, local: "45 04 21 23", peer: "45 05 01 23 21", ackENO: true,
			wantOK: true, tep: tepX, tepByte: tepX, role: RoleA, transcr: "45 04 21 23 45 05 01 23 21"}},
		{"repeated TEP id is not valid", side{cfg: cfgXY, local: "45 04 21 23", peer: "45 06 01 23 21 21", ackENO: true,
			wantOK: true, tep: tepY, tepByte: tepY, role: RoleA, transcr: "45 04 21 23 45 06 01 23 21 21"}},
		{"v bit does not select: B answers resumption offer with v=0", side{cfg: cfgY, local: "45 05 a3 01 02", peer: "45 04 01 23", ackENO: true,
			wantOK: true, tep: tepY, tepByte: tepY, role: RoleA, transcr: "45 05 a3 01 02 45 04 01 23",
			localSub: Suboption{ID: tepY, V: true, Data: []byte{1, 2}}, peerSub: Suboption{ID: tepY}}},
		{"B's v=1 sets TEPByte", side{cfg: cfgY, local: "45 03 23", peer: "45 06 01 a3 09 08", ackENO: true,
			wantOK: true, tep: tepY, tepByte: 0xa3, role: RoleA, transcr: "45 03 23 45 06 01 a3 09 08",
			localSub: Suboption{ID: tepY}, peerSub: Suboption{ID: tepY, V: true, Data: []byte{9, 8}}}},
		{"Valid vetoes the last TEP, earlier one wins", side{cfg: cfgXY, local: "45 04 21 23", peer: "45 05 01 21 23", ackENO: true,
			valid:  func(tep uint8, _, _ Suboption) bool { return tep != tepY },
			wantOK: true, tep: tepX, tepByte: tepX, role: RoleA, transcr: "45 04 21 23 45 05 01 21 23"}},
		{"Valid vetoes everything", side{cfg: cfgXY, local: "45 04 21 23", peer: "45 05 01 21 23", ackENO: true,
			valid: func(uint8, Suboption, Suboption) bool { return false }, reason: ReasonNoCommonTEP}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.check(t, Negotiate(tt.s.input(t)))
		})
	}
}

func TestNegotiateValidSeesLocalAndPeer(t *testing.T) {
	in := Input{Config: cfgY, Passive: true, LocalSYN: h(t, "45 05 01 a3 bb"), PeerSYN: h(t, "45 04 a3 aa"),
		PeerSYNENOCount: 1, PeerACKHasENO: true}
	var gotLocal, gotPeer Suboption
	in.Valid = func(tep uint8, l, p Suboption) bool {
		gotLocal, gotPeer = l, p
		return true
	}
	r := Negotiate(in)
	if !r.OK || !gotLocal.Equal(Suboption{ID: tepY, V: true, Data: []byte{0xbb}}) || !gotPeer.Equal(Suboption{ID: tepY, V: true, Data: []byte{0xaa}}) {
		t.Fatalf("r=%+v local=%+v peer=%+v", r, gotLocal, gotPeer)
	}
	// Result data must not alias the input buffers.
	in.PeerSYN[3] = 0
	in.LocalSYN[4] = 0
	if r.PeerSub.Data[0] != 0xaa || r.LocalSub.Data[0] != 0xbb || r.Transcript[3] != 0xaa {
		t.Errorf("result aliases its input: %+v", r)
	}
}

func TestFallbackReasonString(t *testing.T) {
	seen := map[string]bool{}
	for r := ReasonNone; r <= ReasonNoENOOnACK; r++ {
		s := r.String()
		if s == "" || seen[s] {
			t.Errorf("reason %d has empty or duplicate name %q", r, s)
		}
		seen[s] = true
	}
	if got := FallbackReason(200).String(); got != "reason(200)" {
		t.Errorf("unknown reason = %q", got)
	}
	if RoleA.String() != "A" || RoleB.String() != "B" || RoleNone.String() != "none" {
		t.Errorf("role names wrong")
	}
}
