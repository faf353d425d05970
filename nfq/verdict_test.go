package nfq

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/florianl/go-nfqueue/v2"

	"github.com/tcpcryptd/tcpcrypt/nfq/nfqtest"
)

// parseBatch decodes the bytes a batch would send as the kernel's nfnetlink
// would (nfqtest.DecodeVerdicts, built on mdlayher/netlink) and checks that
// every message names queue 7463.
func parseBatch(t testing.TB, wire []byte) (ids []uint32, verdicts []int, payloads [][]byte) {
	t.Helper()
	vs, err := nfqtest.DecodeVerdicts(wire)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Queue != 7463 {
			t.Fatalf("verdict for queue %d, want 7463", v.Queue)
		}
		ids, verdicts, payloads = append(ids, v.ID), append(verdicts, v.Verdict), append(payloads, v.Packet)
	}
	return ids, verdicts, payloads
}

// TestBatchWire: a batch of verdicts with and without payloads of every
// length modulo 4 decodes, message by message, to exactly what was added.
func TestBatchWire(t *testing.T) {
	b := newBatch(nil, 7463, nil)
	var want [][]byte
	for i := range 9 {
		var pkt []byte
		if i%3 != 0 {
			pkt = bytes.Repeat([]byte{byte(i)}, 20+i)
		}
		want = append(want, pkt)
		b.add(uint32(100+i), []int{nfqueue.NfAccept, nfqueue.NfDrop}[i%2], pkt)
	}
	ids, verdicts, payloads := parseBatch(t, bytes.Join(b.iov, nil))
	if len(ids) != 9 || b.n != 9 {
		t.Fatalf("%d messages decoded, batch says %d", len(ids), b.n)
	}
	for i := range ids {
		if ids[i] != uint32(100+i) || verdicts[i] != []int{nfqueue.NfAccept, nfqueue.NfDrop}[i%2] || !bytes.Equal(payloads[i], want[i]) {
			t.Errorf("message %d: id %d verdict %d payload %x", i, ids[i], verdicts[i], payloads[i])
		}
	}
	if got := len(bytes.Join(b.iov, nil)); got != b.bytes {
		t.Errorf("batch counts %d bytes, holds %d", b.bytes, got)
	}
	b.reset()
	if b.n != 0 || len(b.iov) != 0 || b.bytes != 0 {
		t.Errorf("reset left %d verdicts", b.n)
	}
}

// TestBatchBounds: full() keeps a batch under the socket's limits.
func TestBatchBounds(t *testing.T) {
	b := newBatch(nil, 7463, nil)
	big := make([]byte, engineMaxPacketForTest)
	for !b.full(big) {
		b.add(1, nfqueue.NfAccept, big)
	}
	if b.bytes > defaultBatchBytes || b.n > maxBatchVerdicts || len(b.iov) > 1024 {
		t.Errorf("batch of %d verdicts, %d bytes, %d iovecs", b.n, b.bytes, len(b.iov))
	}
	b.reset()
	for !b.full(nil) {
		b.add(1, nfqueue.NfDrop, nil)
	}
	if b.n != maxBatchVerdicts {
		t.Errorf("%d payload-less verdicts in a full batch, want %d", b.n, maxBatchVerdicts)
	}
}

const engineMaxPacketForTest = 65531

// limitQueue is a Queue that states its datagram limit.
type limitQueue struct {
	discardQueue
	limit int
}

func (q limitQueue) SendLimit() int { return q.limit }

// TestBatchSendLimit: a queue's SendLimit sets the batch size, up to
// maxBatchBytes; without one, or with none known, the default holds.
func TestBatchSendLimit(t *testing.T) {
	for _, tt := range []struct {
		q    Queue
		want int
	}{
		{discardQueue{}, defaultBatchBytes},
		{limitQueue{limit: 0}, defaultBatchBytes},
		{limitQueue{limit: 300 << 10}, 300 << 10},
		{limitQueue{limit: 8 << 20}, maxBatchBytes},
	} {
		b := newBatch(tt.q, 7463, nil)
		big := make([]byte, engineMaxPacketForTest)
		for !b.full(big) {
			b.add(1, nfqueue.NfAccept, big)
		}
		if b.bytes > tt.want || b.bytes+maxVerdictHdr+len(big)+3 <= tt.want && b.n < maxBatchVerdicts {
			t.Errorf("%T limit %d: full at %d bytes (%d verdicts), want the most that fits %d", tt.q, batchBytes(tt.q), b.bytes, b.n, tt.want)
		}
	}
}

// FuzzBatchWire: any sequence of verdicts (ids, verdicts, payload lengths
// from the input) round-trips through the wire format.
func FuzzBatchWire(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte{255, 255, 255, 255, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		b := newBatch(nil, 7463, nil)
		type v struct {
			id      uint32
			verdict int
			pkt     []byte
		}
		var want []v
		for len(in) >= 4 && !b.full(make([]byte, int(in[3])*7)) {
			x := v{id: binary.BigEndian.Uint32([]byte{in[0], in[1], in[2], 0}), verdict: int(in[3] & 1)}
			if in[3]&2 != 0 {
				x.pkt = bytes.Repeat([]byte{in[0]}, int(in[3])*7)
			}
			b.add(x.id, x.verdict, x.pkt)
			want = append(want, x)
			in = in[4:]
		}
		ids, verdicts, payloads := parseBatch(t, bytes.Join(b.iov, nil))
		if len(ids) != len(want) {
			t.Fatalf("%d decoded, %d added", len(ids), len(want))
		}
		for i, w := range want {
			if ids[i] != w.id || verdicts[i] != w.verdict || !bytes.Equal(payloads[i], w.pkt) {
				t.Fatalf("message %d differs", i)
			}
		}
	})
}

// TestBatchRecycle: once a batch is sent (reset), each packet it carried
// goes back through recycle exactly once, and verdicts without a packet
// give nothing back.
func TestBatchRecycle(t *testing.T) {
	b := newBatch(nil, 7463, nil)
	var got [][]byte
	b.recycle = func(p []byte) { got = append(got, p) }
	p1, p2 := []byte{1, 2, 3}, []byte{4, 5}
	b.add(1, nfqueue.NfAccept, p1)
	b.add(2, nfqueue.NfDrop, nil)
	b.add(3, nfqueue.NfAccept, p2)
	if len(got) != 0 {
		t.Fatalf("recycled %d packets before the batch was sent", len(got))
	}
	b.reset()
	if len(got) != 2 || &got[0][0] != &p1[0] || &got[1][0] != &p2[0] {
		t.Fatalf("recycled %v, want the two packets", got)
	}
	b.reset()
	if len(got) != 2 {
		t.Errorf("a second reset recycled again: %d", len(got))
	}
}
