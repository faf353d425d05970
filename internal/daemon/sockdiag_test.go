package daemon

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

func TestDiagRoundTrip(t *testing.T) {
	for _, s := range []diagSock{
		{Family: afInet, State: tcpEstablished, Local: netip.MustParseAddrPort("192.0.2.1:443"),
			Remote: netip.MustParseAddrPort("198.51.100.7:40000"), If: 3, Cookie: [2]uint32{7, 9}},
		{Family: afInet6, State: tcpCloseWait, Local: netip.MustParseAddrPort("[2001:db8::1]:1"),
			Remote: netip.MustParseAddrPort("[::ffff:192.0.2.9]:65535"), Cookie: [2]uint32{0xffffffff, 1}},
	} {
		req := marshalDiagReq(s.Family, connectedStates, &s)
		if len(req) != diagReqLen || req[0] != s.Family || req[1] != ipProtoTCP {
			t.Fatalf("request header % x", req[:8])
		}
		if binary.NativeEndian.Uint32(req[4:]) != connectedStates {
			t.Errorf("states field wrong")
		}
		// A reply carries the same sockid after family, state, timer, retrans.
		msg := make([]byte, diagMsgLen+8)
		msg[0], msg[1] = s.Family, s.State
		copy(msg[4:], req[8:])
		got, err := unmarshalDiagMsg(msg)
		if err != nil {
			t.Fatal(err)
		}
		if got != s {
			t.Errorf("round trip: got %+v, want %+v", got, s)
		}
	}
	if binary.BigEndian.Uint16(marshalDiagReq(afInet, 0, &diagSock{Family: afInet,
		Local: netip.MustParseAddrPort("1.2.3.4:258")})[8:]) != 258 {
		t.Error("source port not big endian")
	}
}

func TestDiagMsgRejects(t *testing.T) {
	if _, err := unmarshalDiagMsg(make([]byte, diagMsgLen-1)); err == nil {
		t.Error("short message accepted")
	}
	m := make([]byte, diagMsgLen)
	m[0] = 17
	if _, err := unmarshalDiagMsg(m); err == nil {
		t.Error("unknown family accepted")
	}
}

func FuzzDiagMsg(f *testing.F) {
	for _, fam := range []byte{afInet, afInet6} {
		b := make([]byte, diagMsgLen)
		b[0] = fam
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := unmarshalDiagMsg(b)
		if err != nil {
			return
		}
		req := marshalDiagReq(s.Family, 0, &s)
		copy(b[4:], req[8:])
		s2, err := unmarshalDiagMsg(b)
		if err != nil || s2 != s {
			t.Fatalf("re-encoding changed %+v to %+v (%v)", s, s2, err)
		}
	})
}
