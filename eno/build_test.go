package eno

import (
	"bytes"
	"errors"
	"testing"
)

// resumption builds a tcpcrypt resumption suboption (RFC 8548 §3.5): the TEP
// with v=1, a 9-byte resume half and a nonce.
func resumption(tep uint8, half, nonce []byte) Suboption {
	return Suboption{ID: tep, V: true, Data: append(append([]byte{}, half...), nonce...)}
}

var (
	halfA  = seqBytes(0x10, 9) // resume[i][0..8]
	halfB  = seqBytes(0x20, 9) // resume[i][9..17]
	nonceA = seqBytes(0x40, 8)
	nonceB = seqBytes(0x50, 8)
)

func TestBuildSYN(t *testing.T) {
	res := resumption(tepY, halfA, nonceA)
	tests := []struct {
		name   string
		cfg    Config
		maxLen int
		extra  []Suboption
		want   string
		err    error
	}{
		{"fresh, implicit global, least preferred first", Config{TEPs: []uint8{tepY, tepZ, tepX}}, 0, nil, "45 05 21 24 23", nil},
		{"fig 9 A", Config{TEPs: []uint8{tepY, tepX}}, 40, nil, "45 04 21 23", nil},
		{"fig 12 B: SimOpenB", Config{TEPs: []uint8{tepZ, tepY, tepX}, SimOpenB: true}, 40, nil, "45 06 01 21 23 24", nil},
		{"digest §3: a=1", Config{TEPs: []uint8{tepX, tepZ, tepY}, AppAware: true}, 40, nil, "45 06 02 23 24 21", nil},
		{"mandatory app-aware sends a=1", Config{TEPs: []uint8{tepY}, MandatoryAppAware: true}, 40, nil, "45 04 02 23", nil},
		{"a and b", Config{TEPs: []uint8{tepY}, AppAware: true, SimOpenB: true}, 40, nil, "45 04 03 23", nil},
		{"digest §3: resumption last, fresh Z", Config{TEPs: []uint8{tepY, tepZ}}, 40, []Suboption{res}, "45 15 24 a3" + hexOf(halfA) + hexOf(nonceA), nil},
		{"digest §3 budget: 20 bytes left, resumption alone", Config{TEPs: []uint8{tepY, tepZ}}, 20, []Suboption{res}, "45 14 a3" + hexOf(halfA) + hexOf(nonceA), nil},
		{"budget 21 keeps Z", Config{TEPs: []uint8{tepY, tepZ}}, 21, []Suboption{res}, "45 15 24 a3" + hexOf(halfA) + hexOf(nonceA), nil},
		{"budget 19 cannot hold the resumption", Config{TEPs: []uint8{tepY, tepZ}}, 19, []Suboption{res}, "", ErrNoSpace},
		{"budget drops least preferred first", Config{TEPs: []uint8{tepY, tepZ, tepX, tepW}}, 4, nil, "45 04 24 23", nil},
		{"budget with global", Config{TEPs: []uint8{tepY, tepZ}, AppAware: true}, 4, nil, "45 04 02 23", nil},
		{"budget too small for anything", Config{TEPs: []uint8{tepY}, AppAware: true}, 3, nil, "", ErrNoSpace},
		{"38-byte contents limit", Config{TEPs: seqBytes(0x20, 60)}, 40, nil, "45 28" + hexOf(reverse(seqBytes(0x20, 38))), nil},
		{"no TEP", Config{}, 40, nil, "", ErrNoTEP},
		{"bad TEP in config", Config{TEPs: []uint8{0x10}}, 40, nil, "", ErrBadTEP},
		{"duplicate TEP in config", Config{TEPs: []uint8{tepY, tepY}}, 40, nil, "", ErrBadTEP},
		{"bad extra", Config{TEPs: []uint8{tepY}}, 40, []Suboption{{ID: 0x05}}, "", ErrBadTEP},
		{"two extras: first gets a length byte", Config{}, 40, []Suboption{{ID: tepX, V: true, Data: []byte{1}}, {ID: tepY, V: true, Data: []byte{2}}}, "45 07 80 a1 01 a3 02", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := BuildSYN(tt.cfg, tt.maxLen, tt.extra...)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("BuildSYN error = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("BuildSYN: %v", err)
			}
			got := mustMarshal(t, o)
			if want := h(t, tt.want); !bytes.Equal(got, want) {
				t.Fatalf("BuildSYN = % x, want % x", got, want)
			}
			if max := tt.maxLen; max > 0 && len(got) > max {
				t.Errorf("len %d over budget %d", len(got), max)
			}
		})
	}
}

func reverse(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[len(b)-1-i] = c
	}
	return out
}

func TestAnswer(t *testing.T) {
	bigReply := resumption(tepY, halfB, append(nonceB, seqBytes(0, 20)...)) // 37 data bytes
	tests := []struct {
		name   string
		cfg    Config
		peer   string
		maxLen int
		choose func(Suboption) (Suboption, bool)
		want   string // "" = no ENO
	}{
		{"fig 9: B picks Y", Config{TEPs: []uint8{tepY}}, "45 04 21 23", 40, nil, "45 04 01 23"},
		{"our most preferred offered TEP", Config{TEPs: []uint8{tepZ, tepY, tepX}}, "45 04 21 23", 40, nil, "45 04 01 23"},
		{"peer order does not matter", Config{TEPs: []uint8{tepX, tepY}}, "45 04 23 21", 40, nil, "45 04 01 21"},
		{"a bit", Config{TEPs: []uint8{tepY}, AppAware: true}, "45 03 23", 40, nil, "45 04 03 23"},
		{"digest §3: mandatory mode, peer a=1", Config{TEPs: []uint8{tepY}, MandatoryAppAware: true}, "45 06 02 23 24 21", 40, nil, "45 04 03 23"},
		{"fig 10: mandatory mode, peer a=0", Config{TEPs: []uint8{tepY}, MandatoryAppAware: true}, "45 04 21 23", 40, nil, ""},
		{"fig 10: no TEP in common", Config{TEPs: []uint8{tepZ}}, "45 04 21 23", 40, nil, ""},
		{"vacuous SYN: no ENO back", Config{TEPs: []uint8{tepY}}, "45 02", 40, nil, ""},
		{"vacuous SYN with a=1: no ENO back", Config{TEPs: []uint8{tepY}}, "45 03 02", 40, nil, ""},
		{"peer b=1: roles would clash", Config{TEPs: []uint8{tepY}}, "45 04 01 23", 40, nil, ""},
		{"peer repeats our TEP: next one", Config{TEPs: []uint8{tepY, tepX}}, "45 05 23 23 21", 40, nil, "45 04 01 21"},
		{"choose skips Y", Config{TEPs: []uint8{tepY, tepX}}, "45 04 21 23", 40,
			func(p Suboption) (Suboption, bool) { return Suboption{ID: p.ID}, p.ID != tepY }, "45 04 01 21"},
		{"choose skips all", Config{TEPs: []uint8{tepY, tepX}}, "45 04 21 23", 40,
			func(Suboption) (Suboption, bool) { return Suboption{}, false }, ""},
		{"choose changing the id is ignored", Config{TEPs: []uint8{tepY, tepX}}, "45 04 21 23", 40,
			func(p Suboption) (Suboption, bool) { return Suboption{ID: tepZ}, p.ID == tepY }, ""},
		{"digest §3: resumption accepted", Config{TEPs: []uint8{tepY, tepZ}}, "45 15 24 a3" + hexOf(halfA) + hexOf(nonceA), 40,
			func(p Suboption) (Suboption, bool) {
				if p.V && len(p.Data) >= 9 && bytes.Equal(p.Data[:9], halfA) {
					return resumption(p.ID, halfB, nonceB), true
				}
				return Suboption{ID: p.ID}, true
			}, "45 15 01 a3" + hexOf(halfB) + hexOf(nonceB)},
		{"resumption reply over budget falls back to fresh", Config{TEPs: []uint8{tepY}}, "45 15 24 a3" + hexOf(halfA) + hexOf(nonceA), 20,
			func(p Suboption) (Suboption, bool) { return resumption(p.ID, halfB, nonceB), true }, "45 04 01 23"},
		{"reply over 38 bytes falls back to fresh", Config{TEPs: []uint8{tepY}}, "45 03 23", 0,
			func(p Suboption) (Suboption, bool) { return bigReply, true }, "45 04 01 23"},
		{"budget too small for anything", Config{TEPs: []uint8{tepY}}, "45 03 23", 3, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer := mustParse(t, h(t, tt.peer))
			o, ok := AnswerWithin(tt.cfg, peer, tt.maxLen, tt.choose)
			if tt.want == "" {
				if ok {
					t.Fatalf("Answer = %+v, want no ENO", o)
				}
				return
			}
			if !ok {
				t.Fatalf("Answer gave no ENO, want %s", tt.want)
			}
			got := mustMarshal(t, o)
			if !bytes.Equal(got, h(t, tt.want)) {
				t.Fatalf("Answer = % x, want %s", got, tt.want)
			}
			if !o.HasGlobal || !o.B() || len(o.Subs) != 1 {
				t.Errorf("SYN-ACK option must have an explicit b=1 and one TEP: %+v", o)
			}
			if tt.maxLen == 40 {
				o2, ok2 := Answer(tt.cfg, peer, tt.choose)
				if !ok2 || !o2.Equal(&o) {
					t.Errorf("Answer and AnswerWithin(40) differ")
				}
			}
		})
	}
}

// handshake runs a normal three-way handshake between two configs through a
// path that may strip ENO in either direction or echo the SYN's options.
type path struct {
	stripAB, stripBA bool // drop ENO from segments A->B / B->A
	echo             bool // a middlebox answers A's SYN with A's own options
}

func handshake(t *testing.T, cfgA, cfgB Config, p path, extraA []Suboption,
	choose func(Suboption) (Suboption, bool), valid func(uint8, Suboption, Suboption) bool) (ra, rb Result) {
	t.Helper()
	synOpt, err := BuildSYN(cfgA, 40, extraA...)
	if err != nil {
		t.Fatal(err)
	}
	synA := mustMarshal(t, synOpt)
	// B receives the SYN.
	var atB []byte
	if !p.stripAB {
		atB = synA
	}
	var synAckB []byte
	if atB != nil {
		peer := mustParse(t, atB)
		if o, ok := Answer(cfgB, peer, choose); ok {
			synAckB = mustMarshal(t, o)
		}
	}
	// A receives the SYN-ACK.
	atA := synAckB
	if p.stripBA {
		atA = nil
	}
	if p.echo {
		atA = synA
	}
	ra = Negotiate(Input{Config: cfgA, LocalSYN: synA, PeerSYN: atA, PeerACKHasENO: atA != nil, Valid: valid})
	// A's third segment carries 45 02 only while A still uses ENO.
	ackHasENO := ra.OK && !p.stripAB
	if !p.echo {
		rb = Negotiate(Input{Config: cfgB, Passive: true, LocalSYN: synAckB, PeerSYN: atB, PeerACKHasENO: ackHasENO, Valid: valid})
	}
	return ra, rb
}

func TestHandshakePaths(t *testing.T) {
	a := Config{TEPs: []uint8{tepY, tepX}}
	b := Config{TEPs: []uint8{tepZ, tepY}}
	tests := []struct {
		name     string
		p        path
		cfgB     Config
		okA, okB bool
		reasonA  FallbackReason
		reasonB  FallbackReason
	}{
		{"clean path", path{}, b, true, true, ReasonNone, ReasonNone},
		{"stripped A->B", path{stripAB: true}, b, false, false, ReasonNoPeerENO, ReasonNoLocalENO},
		{"stripped B->A", path{stripBA: true}, b, false, false, ReasonNoPeerENO, ReasonNoENOOnACK},
		{"echoing middlebox", path{echo: true}, b, false, false, ReasonRoleClash, ReasonNone},
		{"B mandatory app-aware, A a=0", path{}, Config{TEPs: []uint8{tepY}, MandatoryAppAware: true}, false, false, ReasonNoPeerENO, ReasonNoLocalENO},
		{"no common TEP", path{}, Config{TEPs: []uint8{tepZ}}, false, false, ReasonNoPeerENO, ReasonNoLocalENO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ra, rb := handshake(t, a, tt.cfgB, tt.p, nil, nil, nil)
			if ra.OK != tt.okA || ra.Reason != tt.reasonA {
				t.Errorf("A: OK=%v reason=%v, want %v %v", ra.OK, ra.Reason, tt.okA, tt.reasonA)
			}
			if tt.p.echo {
				return
			}
			if rb.OK != tt.okB || rb.Reason != tt.reasonB {
				t.Errorf("B: OK=%v reason=%v, want %v %v", rb.OK, rb.Reason, tt.okB, tt.reasonB)
			}
			if ra.OK && rb.OK {
				if ra.TEP != tepY || rb.TEP != tepY || ra.Role != RoleA || rb.Role != RoleB ||
					!bytes.Equal(ra.Transcript, rb.Transcript) || ra.TEPByte != rb.TEPByte {
					t.Errorf("sides disagree: A=%+v B=%+v", ra, rb)
				}
			}
		})
	}
}

// TestHandshakeResumption follows the digest §3 resumption example through
// BuildSYN, Answer and Negotiate, with a Valid that checks the halves as
// tcpcrypt would (RFC 8548 §3.5).
func TestHandshakeResumption(t *testing.T) {
	a := Config{TEPs: []uint8{tepY, tepZ}}
	b := Config{TEPs: []uint8{tepY, tepZ}}
	offer := resumption(tepY, halfA, nonceA)
	valid := func(tep uint8, l, p Suboption) bool {
		if !l.V || !p.V { // fresh on one side: fine, v does not decide the TEP
			return !(l.V && len(l.Data) >= 9) || !p.V
		}
		// Both resumption: halves must be the pair we know.
		x, y := l.Data[:9], p.Data[:9]
		return (bytes.Equal(x, halfA) && bytes.Equal(y, halfB)) || (bytes.Equal(x, halfB) && bytes.Equal(y, halfA))
	}
	accept := func(p Suboption) (Suboption, bool) {
		if p.V && len(p.Data) >= 9 && bytes.Equal(p.Data[:9], halfA) {
			return resumption(p.ID, halfB, nonceB), true
		}
		return Suboption{ID: p.ID}, true
	}
	ra, rb := handshake(t, a, b, path{}, []Suboption{offer}, accept, valid)
	if !ra.OK || !rb.OK || ra.TEPByte != 0xa3 || rb.TEPByte != 0xa3 || !ra.V {
		t.Fatalf("resumption: A=%+v B=%+v", ra, rb)
	}
	want := h(t, "45 15 24 a3"+hexOf(halfA)+hexOf(nonceA)+" 45 15 01 a3"+hexOf(halfB)+hexOf(nonceB))
	if !bytes.Equal(ra.Transcript, want) || !bytes.Equal(rb.Transcript, want) {
		t.Errorf("transcript = % x, want % x", ra.Transcript, want)
	}
	if !ra.PeerSub.Equal(resumption(tepY, halfB, nonceB)) || !rb.PeerSub.Equal(offer) {
		t.Errorf("subs: A peer %+v, B peer %+v", ra.PeerSub, rb.PeerSub)
	}

	// B does not know the secret: it answers v=0, a fresh exchange with Y.
	fresh := func(p Suboption) (Suboption, bool) { return Suboption{ID: p.ID}, true }
	ra, rb = handshake(t, a, b, path{}, []Suboption{offer}, fresh, valid)
	if !ra.OK || !rb.OK || ra.TEPByte != tepY || ra.V {
		t.Fatalf("fresh fallback: A=%+v B=%+v", ra, rb)
	}

	// B answers with a half that does not match: A must not use it, and Y was
	// the only TEP in B's SYN-ACK, so ENO fails (RFC 8548 §3.5).
	wrong := func(p Suboption) (Suboption, bool) { return resumption(p.ID, seqBytes(0x99, 9), nonceB), true }
	ra, _ = handshake(t, a, b, path{}, []Suboption{offer}, wrong, valid)
	if ra.OK || ra.Reason != ReasonNoCommonTEP {
		t.Fatalf("mismatching half: A=%+v", ra)
	}
}
