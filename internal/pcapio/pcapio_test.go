package pcapio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed captures in testdata/")

// ipv4 is a minimal IPv4 header (no payload) for link-layer tests.
var ipv4 = []byte{0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}

func readAll(t testing.TB, b []byte) ([]Packet, error) {
	t.Helper()
	rd, err := NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	var out []Packet
	for {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		p.Data = bytes.Clone(p.Data)
		out = append(out, p)
	}
}

func TestPcapRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, LinkEthernet, 64)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1700000000, 123456000).UTC()
	big := bytes.Repeat([]byte{7}, 100)
	for i, d := range [][]byte{{1, 2, 3}, {}, big} {
		if err := w.WritePacket(t0.Add(time.Duration(i)*time.Second), d); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := readAll(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 {
		t.Fatalf("%d packets", len(ps))
	}
	if !bytes.Equal(ps[0].Data, []byte{1, 2, 3}) || len(ps[1].Data) != 0 || len(ps[2].Data) != 64 || ps[2].OrigLen != 100 {
		t.Errorf("packets %+v", ps)
	}
	if !ps[0].Time.Equal(t0) || !ps[2].Time.Equal(t0.Add(2*time.Second)) || ps[0].LinkType != LinkEthernet {
		t.Errorf("times %v %v, link %d", ps[0].Time, ps[2].Time, ps[0].LinkType)
	}
	// Every strict prefix that cuts a record is an error, never a panic.
	b := buf.Bytes()
	for n := 0; n < len(b); n++ {
		ps, err := readAll(t, b[:n])
		if err == nil && len(ps) == 3 {
			t.Fatalf("prefix of %d bytes read as whole", n)
		}
	}
}

// ngBlock appends one pcapng block in byte order bo.
func ngBlock(dst []byte, bo order, typ uint32, body []byte) []byte {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	n := uint32(12 + len(body))
	dst = bo.AppendUint32(dst, typ)
	dst = bo.AppendUint32(dst, n)
	dst = append(dst, body...)
	return bo.AppendUint32(dst, n)
}

// pcapng builds a pcapng file: a section, an Ethernet interface with
// nanosecond timestamps, an SLL2 one with the default microseconds, one
// enhanced packet on each and a simple packet.
func pcapng(bo order) []byte {
	shb := bo.AppendUint32(nil, 0x1a2b3c4d)
	shb = bo.AppendUint16(shb, 1)
	shb = bo.AppendUint16(shb, 0)
	shb = bo.AppendUint64(shb, ^uint64(0))
	b := ngBlock(nil, bo, blockSHB, shb)
	idb := bo.AppendUint16(nil, LinkEthernet)
	idb = bo.AppendUint16(idb, 0)
	idb = bo.AppendUint32(idb, 0)
	idb = bo.AppendUint16(idb, 9) // if_tsresol
	idb = bo.AppendUint16(idb, 1)
	idb = append(idb, 9, 0, 0, 0)
	idb = bo.AppendUint32(idb, 0) // opt_endofopt
	b = ngBlock(b, bo, blockIDB, idb)
	idb2 := bo.AppendUint16(nil, LinkSLL2)
	idb2 = bo.AppendUint16(idb2, 0)
	idb2 = bo.AppendUint32(idb2, 0)
	b = ngBlock(b, bo, blockIDB, idb2)
	b = ngBlock(b, bo, 0x0bad, []byte{1, 2, 3}) // unknown: skipped
	eth := append(append(make([]byte, 12), 0x81, 0x00, 0, 5, 0x08, 0x00), ipv4...)
	epb := func(id uint32, ts uint64, data []byte) []byte {
		e := bo.AppendUint32(nil, id)
		e = bo.AppendUint32(e, uint32(ts>>32))
		e = bo.AppendUint32(e, uint32(ts))
		e = bo.AppendUint32(e, uint32(len(data)))
		e = bo.AppendUint32(e, uint32(len(data)))
		return append(e, data...)
	}
	b = ngBlock(b, bo, blockEPB, epb(0, 1_500_000_000_250_000_000, eth))
	sll2 := append(append([]byte{0x08, 0x00}, make([]byte, 18)...), ipv4...)
	b = ngBlock(b, bo, blockEPB, epb(1, 1_500_000_000_250_000, sll2))
	b = ngBlock(b, bo, blockSPB, append(bo.AppendUint32(nil, uint32(len(eth))), eth...))
	return b
}

func TestPcapng(t *testing.T) {
	for _, bo := range []order{binary.LittleEndian, binary.BigEndian} {
		ps, err := readAll(t, pcapng(bo))
		if err != nil {
			t.Fatalf("%v: %v", bo, err)
		}
		if len(ps) != 3 {
			t.Fatalf("%v: %d packets", bo, len(ps))
		}
		if want := time.Unix(1_500_000_000, 250_000_000).UTC(); !ps[0].Time.Equal(want) || !ps[1].Time.Equal(want) {
			t.Errorf("%v: times %v %v, want %v", bo, ps[0].Time, ps[1].Time, want)
		}
		for i, p := range ps {
			ip, ok, err := IPPacket(p.LinkType, p.Data)
			if err != nil || !ok || !bytes.Equal(ip, ipv4) {
				t.Errorf("%v packet %d (link %d): %x %v %v", bo, i, p.LinkType, ip, ok, err)
			}
		}
	}
}

func TestIPPacket(t *testing.T) {
	sll := append(append(make([]byte, 14), 0x86, 0xdd), 0x60, 0, 0, 0)
	null := append([]byte{2, 0, 0, 0}, ipv4...)
	arp := append(make([]byte, 12), 0x08, 0x06, 1, 2, 3)
	for _, tc := range []struct {
		link uint32
		in   []byte
		want []byte
		ok   bool
		err  error
	}{
		{LinkRaw, ipv4, ipv4, true, nil},
		{LinkIPv4, ipv4, ipv4, true, nil},
		{LinkSLL, sll, []byte{0x60, 0, 0, 0}, true, nil},
		{LinkNull, null, ipv4, true, nil},
		{LinkEthernet, arp, nil, false, nil},
		{LinkEthernet, []byte{1, 2, 3}, nil, false, ErrFormat},
		{LinkSLL2, make([]byte, 19), nil, false, ErrFormat},
		{147, ipv4, nil, false, ErrLinkType},
	} {
		got, ok, err := IPPacket(tc.link, tc.in)
		if !bytes.Equal(got, tc.want) || ok != tc.ok || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("link %d %x: %x %v %v, want %x %v %v", tc.link, tc.in, got, ok, err, tc.want, tc.ok, tc.err)
		}
	}
}

func TestBadHeaders(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":       nil,
		"magic":       {1, 2, 3, 4, 5, 6, 7, 8},
		"pcap short":  {0xd4, 0xc3, 0xb2, 0xa1, 2, 0},
		"ng bom":      {0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4},
		"ng huge shb": {0x0a, 0x0d, 0x0d, 0x0a, 0xff, 0xff, 0xff, 0x7f, 0x4d, 0x3c, 0x2b, 0x1a},
	} {
		if _, err := NewReader(bytes.NewReader(b)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A record claiming more than MaxRecord is refused before allocating.
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, LinkRaw, 0)
	_ = w.WritePacket(time.Unix(0, 0), ipv4)
	b := buf.Bytes()
	binary.LittleEndian.PutUint32(b[24+8:], MaxRecord+1)
	if _, err := readAll(t, b); !errors.Is(err, ErrFormat) {
		t.Errorf("huge record: %v", err)
	}
}

// seeds returns the fuzz seeds, rewriting testdata/ with -update.
func seeds(t testing.TB) map[string][]byte {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, LinkEthernet, 0)
	eth := append(append(make([]byte, 12), 0x08, 0x00), ipv4...)
	_ = w.WritePacket(time.Unix(1, 2000), eth)
	_ = w.WritePacket(time.Unix(3, 4000), eth[:10])
	m := map[string][]byte{
		"seed.pcap":      buf.Bytes(),
		"seed-le.pcapng": pcapng(binary.LittleEndian),
		"seed-be.pcapng": pcapng(binary.BigEndian),
	}
	if *update {
		for name, b := range m {
			if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return m
}

func TestSeedsCommitted(t *testing.T) {
	for name, want := range seeds(t) {
		got, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("testdata/%s is stale or missing (go test -run TestSeedsCommitted -update): %v", name, err)
		}
	}
}

// FuzzReader: any input gives packets or an error, never a panic, and
// every packet respects the bounds.
func FuzzReader(f *testing.F) {
	names, _ := filepath.Glob("testdata/*.pcap*")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, _ := readAll(t, b)
		for _, p := range ps {
			if len(p.Data) > MaxRecord || p.OrigLen < len(p.Data) {
				t.Fatalf("packet of %d bytes, orig %d", len(p.Data), p.OrigLen)
			}
			_, _, _ = IPPacket(p.LinkType, p.Data)
		}
	})
}

// order is a byte order that can also append.
type order interface {
	binary.ByteOrder
	binary.AppendByteOrder
}
