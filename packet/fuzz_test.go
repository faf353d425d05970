package packet

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// sentinels are the errors Parse may return (wrapped).
var sentinels = []error{ErrTruncated, ErrNotTCP, ErrIPv6ExtHeader, ErrFragment, ErrBadHeader}

func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds(f) {
		f.Add(s.b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := append([]byte(nil), data...)
		var p Packet
		err := Parse(data, &p)
		if !bytes.Equal(data, orig) {
			t.Fatal("Parse modified its input")
		}
		if err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("Parse returned a non-sentinel error: %v", err)
		}
		checkParsed(t, &p, len(data))

		// Round trip: rebuilding with the same options and payload gives
		// the same packet apart from the checksums, which then verify.
		out, err := Rebuild(nil, &p, p.TCP.Options(), p.Payload())
		if err != nil {
			t.Fatalf("Rebuild of a parsed packet: %v", err)
		}
		var q Packet
		if err := Parse(out, &q); err != nil {
			t.Fatalf("Parse(Rebuild()) = %v", err)
		}
		ps, qs := summarize(&p), summarize(&q)
		ps.Checksum, qs.Checksum = 0, 0
		if ps != qs {
			t.Fatalf("round trip changed fields:\n was %+v\n now %+v", ps, qs)
		}
		if !q.VerifyTCPChecksum() || !q.VerifyIPChecksum() {
			t.Fatal("rebuilt packet has a bad checksum")
		}
		a, b := append([]byte(nil), p.Buf...), out
		zeroChecksums(&p, a)
		zeroChecksums(&q, b)
		if !bytes.Equal(a, b) {
			t.Fatalf("rebuilt bytes differ beyond checksums:\n was %x\n now %x", a, b)
		}
	})
}

// checkParsed exercises every getter of a successfully parsed packet and
// checks the view invariants.
func checkParsed(t *testing.T, p *Packet, n int) {
	t.Helper()
	if p.Version != 4 && p.Version != 6 {
		t.Fatalf("Version %d", p.Version)
	}
	if len(p.Buf) > n || p.IPHdrLen+len(p.TCP) != len(p.Buf) {
		t.Fatalf("lengths: buf %d of %d, ip %d, tcp %d", len(p.Buf), n, p.IPHdrLen, len(p.TCP))
	}
	if p.Version == 4 && (p.IPHdrLen < 20 || p.IPHdrLen > 60 || !p.Src.Is4()) || p.Version == 6 && (p.IPHdrLen != 40 || !p.Src.Is6()) {
		t.Fatalf("IP header: version %d len %d src %v", p.Version, p.IPHdrLen, p.Src)
	}
	tc := p.TCP
	off := tc.DataOffset()
	if off < 20 || off > len(tc) || len(tc.Options()) != off-20 || len(tc.Payload()) != len(tc)-off || len(p.Payload()) != len(tc)-off {
		t.Fatalf("data offset %d, tcp %d", off, len(tc))
	}
	_ = p.SrcAddrPort()
	_ = p.DstAddrPort()
	_, _, _, _, _, _, _ = tc.Seq(), tc.Ack(), tc.Flags(), tc.Window(), tc.Checksum(), tc.Urgent(), p.TTL()
	_ = p.VerifyTCPChecksum()
	_ = p.VerifyIPChecksum()
	_ = p.ComputeTCPChecksum()
	_ = p.IPHeader()
	checkOptionArea(t, tc.Options())
}

func zeroChecksums(p *Packet, b []byte) {
	if p.Version == 4 {
		b[ipv4Checksum], b[ipv4Checksum+1] = 0, 0
	}
	b[p.IPHdrLen+tcpChecksum], b[p.IPHdrLen+tcpChecksum+1] = 0, 0
}

// checkOptionArea walks opts and checks that the walk ends, returns slices
// inside the area, and that rebuilding the options keeps them within 40
// bytes and aligned.
func checkOptionArea(t *testing.T, opts []byte) {
	t.Helper()
	type kv struct {
		k uint8
		d string
	}
	var added []kv
	var b OptionBuilder
	it := NewOptionIter(opts)
	steps := 0
	for k, d, ok := it.Next(); ok; k, d, ok = it.Next() {
		steps++
		if steps > len(opts) {
			t.Fatalf("option walk did not end after %d steps on %d bytes", steps, len(opts))
		}
		raw := it.Raw()
		if len(raw) != len(d)+2 || raw[0] != k || int(raw[1]) != len(raw) || !bytes.Equal(raw[2:], d) {
			t.Fatalf("Raw %x disagrees with kind %d data %x", raw, k, d)
		}
		if k == OptEnd || k == OptNOP {
			t.Fatalf("iterator returned kind %d", k)
		}
		err := b.AddRaw(raw)
		if err == nil {
			added = append(added, kv{k, string(d)})
		} else if !errors.Is(err, ErrOptionsTooLong) {
			t.Fatalf("AddRaw(%x) = %v", raw, err)
		}
		if b.Len() > MaxOptionsLen {
			t.Fatalf("builder length %d", b.Len())
		}
	}
	if err := it.Err(); err != nil && !errors.Is(err, ErrBadOption) {
		t.Fatalf("Err = %v", err)
	}
	built := b.Bytes()
	if len(built) > MaxOptionsLen || len(built)%4 != 0 || len(built) < b.Len() {
		t.Fatalf("builder output %d bytes (unpadded %d)", len(built), b.Len())
	}
	// The built area holds exactly the accepted options, well formed.
	var got []kv
	it = NewOptionIter(built)
	for k, d, ok := it.Next(); ok; k, d, ok = it.Next() {
		got = append(got, kv{k, string(d)})
	}
	if it.Err() != nil || len(got) != len(added) {
		t.Fatalf("re-walk of built options: %v, %d options, want %d", it.Err(), len(got), len(added))
	}
	for i := range got {
		if got[i] != added[i] {
			t.Fatalf("built option %d = %v, want %v", i, got[i], added[i])
		}
	}

	_, _ = MSS(opts)
	_, _ = WindowScale(opts)
	_, _, _ = Timestamps(opts)
	blocks, n := SACKBlocks(opts)
	if n < 0 || n > MaxSACKBlocks {
		t.Fatalf("SACK blocks %d", n)
	}
	_ = CountOption(opts, OptENO)
	_, _ = FindOption(opts, OptENO)

	// In-place setters on a copy.
	c := append([]byte(nil), opts...)
	if SetMSS(c, 536) {
		if v, ok := MSS(c); !ok || v != 536 {
			t.Fatalf("MSS after SetMSS = %d, %v", v, ok)
		}
	}
	for i := -1; i <= n; i++ {
		ok := SetSACKBlock(c, i, 1, 2)
		if ok != (i >= 0 && i < n) {
			t.Fatalf("SetSACKBlock(%d) = %v with %d blocks", i, ok, n)
		}
	}
	if n > 0 {
		after, m := SACKBlocks(c)
		if m != n || after[0][0] != 1 || after[0][1] != 2 {
			t.Fatalf("SACK after SetSACKBlock: %v (%d), was %v", after, m, blocks)
		}
	}
}

func FuzzOptions(f *testing.F) {
	for _, s := range optionSeeds() {
		f.Add(s.b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Real option areas are at most 40 bytes; 300 leaves room for a
		// whole 255-byte option. Longer inputs add nothing but slow the
		// fuzzer's minimization of them to a crawl.
		if len(data) > 300 {
			return
		}
		checkOptionArea(t, data)
		// Arbitrary bytes as a raw option and as option data.
		var b OptionBuilder
		_ = b.AddRaw(data)
		if len(data) > 0 {
			_ = b.Add(data[0], data[1:])
		}
		out := b.Bytes()
		if len(out) > MaxOptionsLen || len(out)%4 != 0 {
			t.Fatalf("builder output %d bytes", len(out))
		}
		if walkErr(out) != nil {
			t.Fatalf("builder produced a malformed area %x", out)
		}
	})
}

// walkErr walks opts to the end and returns the walk's error.
func walkErr(opts []byte) error {
	it := NewOptionIter(opts)
	for _, _, ok := it.Next(); ok; _, _, ok = it.Next() {
	}
	return it.Err()
}

type seed struct {
	name string
	b    []byte
}

func parseSeeds(tb testing.TB) []seed {
	v4 := unhex(tb, ipv4SYN)
	v6 := unhex(tb, ipv6Data)
	set := func(b []byte, i int, v byte) []byte {
		c := append([]byte(nil), b...)
		c[i] = v
		return c
	}
	seeds := []seed{
		{"ipv4_syn", v4},
		{"ipv6_data", v6},
		{"ipv4_trailing", append(append([]byte(nil), v4...), 0, 0, 0, 0)},
		{"ipv4_ihl4", set(v4, 0, 0x44)},
		{"ipv4_ihl15", set(v4, 0, 0x4f)},
		{"ipv4_udp", set(v4, 9, 17)},
		{"ipv4_mf", set(v4, 6, 0x20)},
		{"ipv4_fragoff", set(v4, 7, 1)},
		{"ipv4_totlen_short", set(v4, 3, 20)},
		{"tcp_doff4", set(v4, 32, 0x40)},
		{"tcp_doff15", set(v4, 32, 0xf0)},
		{"opt_len0", set(v4, 41, 0)},
		{"opt_len1", set(v4, 41, 1)},
		{"opt_overrun", set(v4, 58, 9)},
		{"opt_missing_len", set(set(set(v4, 57, 1), 58, 1), 59, 3)},
		{"ipv6_hbh", set(v6, 6, 0)},
		{"ipv6_frag", set(v6, 6, 44)},
		{"ipv6_udp", set(v6, 6, 17)},
		{"ipv6_payload0", set(v6, 5, 0)},
		{"version7", set(v4, 0, 0x75)},
	}
	// Truncations at every header boundary, and one byte either side.
	for _, n := range []int{0, 1, 19, 20, 21, 39, 40, 41, 59} {
		seeds = append(seeds, seed{fmt.Sprintf("ipv4_cut%d", n), v4[:n]})
	}
	for _, n := range []int{39, 40, 41, 59, 60, 61, 71, 72, 76} {
		seeds = append(seeds, seed{fmt.Sprintf("ipv6_cut%d", n), v6[:n]})
	}
	return seeds
}

func optionSeeds() []seed {
	return []seed{
		{"empty", nil},
		{"linux_syn", []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}},
		{"sack3", []byte{1, 1, 5, 26, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 5}},
		{"eno", []byte{69, 5, 0x00, 0x20, 0x21, 0}},
		{"len0", []byte{9, 0, 1, 1}},
		{"len1", []byte{9, 1}},
		{"overrun", []byte{8, 10, 0, 0}},
		{"missing_len", []byte{1, 1, 1, 2}},
		{"eol_then_junk", []byte{0, 9, 0, 2}},
		{"too_long_for_builder", append([]byte{69, 40}, make([]byte, 38)...)},
		{"nops", bytes.Repeat([]byte{1}, 40)},
	}
}

// TestSeedCorpus checks that the seed files are present (regenerate them
// with -update-seeds) and that every seed passes the fuzz checks.
func TestSeedCorpus(t *testing.T) {
	targets := map[string][]seed{"FuzzParse": parseSeeds(t), "FuzzOptions": optionSeeds()}
	for target, seeds := range targets {
		dir := filepath.Join("testdata", "fuzz", target)
		for _, s := range seeds {
			path := filepath.Join(dir, s.name)
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.b)
			if *updateSeeds {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("missing seed (run with -update-seeds): %v", err)
				continue
			}
			if string(got) != content {
				t.Errorf("seed %s is stale (run with -update-seeds)", path)
			}
		}
	}
}
