// Package wiretap captures the TCP segments on one network interface through
// an AF_PACKET socket and summarises them for the end-to-end tests: how much
// payload went by, whether any of it contained the plaintext marker of the
// test streams (package payload), how much of it was printable text, and the
// first bytes of the first few segments as evidence.
//
// A Tap belongs to the network namespace of the thread that opened it, so a
// test opens it inside the namespace (netns.NS.Do) and may read it from
// anywhere.
package wiretap

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ErrOpen matches errors of Open.
var ErrOpen = errors.New("wiretap: open")

// Filter selects the segments a Tap summarises.
type Filter struct {
	// Port, when non-zero, keeps only segments with this source or
	// destination port.
	Port uint16
	// Marker is the byte string to look for in payloads (payload.Marker).
	Marker []byte
	// Samples is how many payload-carrying segments to keep the first
	// bytes of (SampleLen bytes each).
	Samples, SampleLen int
	// InboundOnly skips frames the interface sends. On loopback every
	// packet is seen twice, once leaving and once arriving: set it there.
	InboundOnly bool
	// OutboundOnly keeps only the frames the interface sends.
	OutboundOnly bool
}

// Sample is the start of one captured payload.
type Sample struct {
	At       time.Duration // since the Tap started
	Src, Dst netip.AddrPort
	Flags    uint8
	Len      int    // payload length on the wire
	Head     []byte // its first bytes
}

// Stats summarises what a Tap saw.
type Stats struct {
	Frames          uint64 // frames read from the socket
	Segments        uint64 // TCP segments that passed the filter
	PayloadSegments uint64 // of which carried payload
	PayloadBytes    uint64 // payload bytes announced by their IP headers
	CapturedBytes   uint64 // payload bytes actually captured and scanned
	PrintableBytes  uint64 // of the sampled bytes, those printable ASCII or newline
	// SampledBytes counts the bytes the printable ratio looked at: the
	// first printableSample bytes of each payload (the marker search
	// covers all of it). A full byte-by-byte pass made the reader, built
	// with -race in the tests, too slow to keep up with a bulk transfer.
	SampledBytes    uint64
	SYNs, RSTs      uint64 // segments with SYN, with RST
	ECNSetupSYNs    uint64 // SYNs with ECE and CWR: an ECN-setup SYN (RFC 3168 §6.1.1)
	ECNSetupSYNACKs uint64 // SYN-ACKs with ECE and without CWR: ECN accepted
	MarkerHits      uint64 // segments whose payload contains the marker
	FirstHit        *Sample
	KernelDrops     uint64 // frames the kernel dropped for lack of buffer
	Samples         []Sample
}

// PrintableRatio is PrintableBytes/SampledBytes, or 0 when nothing was
// captured. Plain text test streams give 1; ciphertext about 0.38.
func (s Stats) PrintableRatio() float64 {
	if s.SampledBytes == 0 {
		return 0
	}
	return float64(s.PrintableBytes) / float64(s.SampledBytes)
}

// printableSample is how many bytes of each payload the printable ratio
// samples.
const printableSample = 256

// String is a one-line summary.
func (s Stats) String() string {
	return fmt.Sprintf("%d frames, %d TCP segments (%d SYN, %d RST), %d with payload, %d payload bytes (%d scanned, %.0f%% printable), %d marker hits, %d kernel drops",
		s.Frames, s.Segments, s.SYNs, s.RSTs, s.PayloadSegments, s.PayloadBytes, s.CapturedBytes,
		100*s.PrintableRatio(), s.MarkerHits, s.KernelDrops)
}

// Tap is a running capture. Stop ends it.
type Tap struct {
	fd      int
	filter  Filter
	start   time.Time
	stop    atomic.Bool
	done    chan struct{}
	mu      sync.Mutex
	stats   Stats
	readErr error
}

// TCP flag bits (RFC 9293 §3.1, RFC 3168 §6.1).
const (
	flagSYN = 0x02
	flagRST = 0x04
	flagACK = 0x10
	flagECE = 0x40
	flagCWR = 0x80
)

// bufLen holds any frame, GSO super-packets included.
const bufLen = 1 << 17

// Open starts capturing every frame sent or received on interface ifname in
// the calling thread's network namespace. Needs CAP_NET_RAW.
func Open(ifname string, f Filter) (*Tap, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("%w: socket: %w", ErrOpen, err)
	}
	fail := func(what string, err error) (*Tap, error) {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("%w: %s: %w", ErrOpen, what, err)
	}
	ifi, err := interfaceIndex(ifname)
	if err != nil {
		return fail("interface "+ifname, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi}); err != nil {
		return fail("bind", err)
	}
	// A large buffer: the reader runs in a test binary built with -race
	// on a shared machine, and a bulk transfer's GSO frames (about 128 KiB
	// of buffer each) come faster than it parses them; every frame the
	// kernel drops is payload the no-plaintext check never sees.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 512<<20); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 512<<20)
	}
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("SO_RCVTIMEO", err)
	}
	t := &Tap{fd: fd, filter: f, start: time.Now(), done: make(chan struct{})}
	go t.loop()
	return t, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// interfaceIndex looks ifname up in the calling thread's namespace (the net
// package's lookup may run on another thread).
func interfaceIndex(ifname string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, err
	}
	return int(ifr.Uint32()), nil
}

// drainLimit bounds how long Stop keeps reading frames that were already
// queued on the socket when it was called.
const drainLimit = 2 * time.Second

func (t *Tap) loop() {
	defer close(t.done)
	buf := make([]byte, bufLen)
	var (
		seg       Segment
		drainFrom time.Time
	)
	for {
		// Once Stop is called, read what the socket already holds (until
		// it has nothing for one receive timeout), so that the frames of
		// a transfer that just ended are counted too.
		if t.stop.Load() {
			if drainFrom.IsZero() {
				drainFrom = time.Now()
			} else if time.Since(drainFrom) > drainLimit {
				return
			}
		}
		n, from, err := unix.Recvfrom(t.fd, buf, unix.MSG_TRUNC)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				if t.stop.Load() {
					return
				}
				continue
			}
			t.mu.Lock()
			t.readErr = err
			t.mu.Unlock()
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok {
			out := ll.Pkttype == unix.PACKET_OUTGOING
			if (out && t.filter.InboundOnly) || (!out && t.filter.OutboundOnly) {
				continue
			}
		}
		frame := buf[:min(n, len(buf))]
		t.mu.Lock()
		t.stats.Frames++
		if ParseEthernet(frame, &seg) && t.match(&seg) {
			t.account(&seg)
		}
		t.mu.Unlock()
	}
}

func (t *Tap) match(s *Segment) bool {
	p := t.filter.Port
	return p == 0 || s.Src.Port() == p || s.Dst.Port() == p
}

// account adds s to the statistics; t.mu is held.
func (t *Tap) account(s *Segment) {
	st := &t.stats
	st.Segments++
	if s.Flags&flagSYN != 0 {
		st.SYNs++
		ecn := s.Flags & (flagECE | flagCWR)
		switch {
		case s.Flags&flagACK == 0 && ecn == flagECE|flagCWR:
			st.ECNSetupSYNs++
		case s.Flags&flagACK != 0 && ecn == flagECE:
			st.ECNSetupSYNACKs++
		}
	}
	if s.Flags&flagRST != 0 {
		st.RSTs++
	}
	if s.PayloadLen == 0 {
		return
	}
	st.PayloadSegments++
	st.PayloadBytes += uint64(s.PayloadLen)
	st.CapturedBytes += uint64(len(s.Payload))
	smp0 := s.Payload[:min(len(s.Payload), printableSample)]
	st.SampledBytes += uint64(len(smp0))
	st.PrintableBytes += uint64(printable(smp0))
	hit := len(t.filter.Marker) > 0 && bytes.Contains(s.Payload, t.filter.Marker)
	if !hit && len(st.Samples) >= t.filter.Samples {
		return
	}
	smp := t.sample(s)
	if hit {
		st.MarkerHits++
		if st.FirstHit == nil {
			st.FirstHit = &smp
		}
	}
	if len(st.Samples) < t.filter.Samples {
		st.Samples = append(st.Samples, smp)
	}
}

func (t *Tap) sample(s *Segment) Sample {
	n := t.filter.SampleLen
	if n <= 0 {
		n = 32
	}
	return Sample{
		At: time.Since(t.start), Src: s.Src, Dst: s.Dst, Flags: s.Flags, Len: s.PayloadLen,
		Head: bytes.Clone(s.Payload[:min(n, len(s.Payload))]),
	}
}

// printable counts bytes of b that are printable ASCII, tab or newline.
func printable(b []byte) int {
	n := 0
	for _, c := range b {
		if (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t' {
			n++
		}
	}
	return n
}

// Snapshot returns the statistics so far.
func (t *Tap) Snapshot() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats
	s.Samples = append([]Sample(nil), s.Samples...)
	return s
}

// Stop ends the capture, after reading the frames already queued on the
// socket, and returns its statistics, with the kernel's count of frames
// dropped for lack of buffer space. A read error that ended the
// capture early is returned too. Stop is safe to call more than once.
func (t *Tap) Stop() (Stats, error) {
	if !t.stop.Swap(true) {
		<-t.done
		if ps, err := unix.GetsockoptTpacketStats(t.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			t.mu.Lock()
			t.stats.KernelDrops += uint64(ps.Drops)
			t.mu.Unlock()
		}
		_ = unix.Close(t.fd)
	}
	<-t.done
	t.mu.Lock()
	err := t.readErr
	t.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("wiretap: read: %w", err)
	}
	return t.Snapshot(), err
}
