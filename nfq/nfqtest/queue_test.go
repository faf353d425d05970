package nfqtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
)

// verdictMsg builds one verdict message the way the kernel expects it.
func verdictMsg(t *testing.T, id uint32, verdict int, payload []byte) []byte {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	vh := binary.BigEndian.AppendUint32(nil, uint32(verdict))
	ae.Bytes(attrVerdict, binary.BigEndian.AppendUint32(vh, id))
	if payload != nil {
		ae.Bytes(attrPayload, payload)
	}
	attrs, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m := netlink.Message{Header: netlink.Header{Length: uint32(16 + 4 + len(attrs)), Type: netlink.HeaderType(subsysQueue<<8 | msgVerdict), Flags: netlink.Request},
		Data: append([]byte{0, 0, 0x1d, 0x27}, attrs...)}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestQueue(t *testing.T) {
	q := NewQueue(4)
	bufs := [][]byte{make([]byte, 256), make([]byte, 256), make([]byte, 256)}
	sizes := make([]int, 3)
	q.Packet(7, 3, []byte{1, 2, 3})
	q.Packet(8, 1, []byte{4})
	boom := errors.New("boom")
	q.Error(boom)
	n, err := q.Recv(bufs, sizes)
	if err != nil || n != 2 {
		t.Fatalf("Recv = %d, %v; want both packets before the error", n, err)
	}
	var m netlink.Message
	if err := m.UnmarshalBinary(bufs[0][:sizes[0]]); err != nil {
		t.Fatal(err)
	}
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		t.Fatal(err)
	}
	var hdr, payload []byte
	for ad.Next() {
		switch ad.Type() {
		case attrPacketHdr:
			hdr = ad.Bytes()
		case attrPayload:
			payload = ad.Bytes()
		}
	}
	if m.Header.Type != netlink.HeaderType(subsysQueue<<8|msgPacket) || len(hdr) != 7 ||
		binary.BigEndian.Uint32(hdr) != 7 || hdr[6] != 3 || !bytes.Equal(payload, []byte{1, 2, 3}) {
		t.Errorf("first datagram: %+v hdr %x payload %x", m.Header, hdr, payload)
	}
	if _, err := q.Recv(bufs, sizes); err != boom {
		t.Errorf("second Recv = %v, want boom", err)
	}
	wire := append(verdictMsg(t, 7, nfqueue.NfAccept, []byte{9}), verdictMsg(t, 8, nfqueue.NfDrop, nil)...)
	if err := q.Send([][]byte{wire[:5], wire[5:]}); err != nil {
		t.Fatal(err)
	}
	if v := <-q.Verdicts(); v.ID != 7 || v.Verdict != nfqueue.NfAccept || !bytes.Equal(v.Packet, []byte{9}) {
		t.Errorf("verdict %+v", v)
	}
	if v := <-q.Verdicts(); v.ID != 8 || v.Verdict != nfqueue.NfDrop || v.Packet != nil {
		t.Errorf("verdict %+v", v)
	}
	if err := q.Send([][]byte{{1, 2, 3}}); err == nil || len(q.Errors()) != 1 {
		t.Errorf("garbage verdict datagram: %v, errors %v", err, q.Errors())
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Recv(bufs, sizes); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Recv after Close = %v", err)
	}
	one := verdictMsg(t, 1, nfqueue.NfDrop, nil)
	for range 4 {
		_ = q.Send([][]byte{one})
	}
	if err := q.Send([][]byte{one}); !errors.Is(err, ErrVerdictsFull) {
		t.Errorf("full verdict channel: %v", err)
	}
}

func TestQueueCloseUnblocksRecv(t *testing.T) {
	q := NewQueue(1)
	done := make(chan error)
	go func() {
		_, err := q.Recv([][]byte{make([]byte, 16)}, []int{0})
		done <- err
	}()
	_ = q.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Recv = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv did not return after Close")
	}
}

func TestInjector(t *testing.T) {
	inj := NewInjector(1)
	p := []byte{1, 2}
	if err := inj.ToPeer(p); err != nil {
		t.Fatal(err)
	}
	p[0] = 9
	if got := <-inj.Peer(); !bytes.Equal(got, []byte{1, 2}) {
		t.Errorf("recorded %x, want a copy 0102", got)
	}
	if err := inj.ToLocal(p); err != nil {
		t.Fatal(err)
	}
	if err := inj.ToLocal(p); !errors.Is(err, ErrInjectFull) {
		t.Errorf("full channel: %v", err)
	}
	boom := errors.New("boom")
	inj.SetError(boom)
	if err := inj.ToPeer(p); err != boom {
		t.Errorf("ToPeer = %v, want boom", err)
	}
}
