package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// DefaultQueueFile is where Linux lists the NFQUEUE instances of the
// reader's network namespace, one line per bound queue.
const DefaultQueueFile = "/proc/net/netfilter/nfnetlink_queue"

// maxQueueFile bounds how much of the queue file is read (65536 queues of
// about 60 bytes each fit well inside).
const maxQueueFile = 8 << 20

// ErrQueueStats matches every error about a malformed line of the queue
// file.
var ErrQueueStats = errors.New("malformed nfnetlink_queue line")

// QueueStats is one line of the queue file. The kernel keeps these counters
// as 32-bit numbers, so they wrap.
type QueueStats struct {
	Queue      uint16 // queue number
	PeerPortID uint32 // netlink port id of the reader bound to it
	Total      uint32 // packets waiting for a verdict right now
	CopyMode   uint8  // 0 none, 1 meta, 2 packet
	CopyRange  uint32 // bytes of each packet copied to the reader
	// Dropped counts packets the kernel dropped because the queue was full.
	Dropped uint32
	// UserDropped counts packets the kernel could not send to the reader
	// (its socket buffer was full: the reader sees ENOBUFS).
	UserDropped uint32
	IDSequence  uint32 // last packet id handed out
}

// queueFields is the number of columns the kernel prints; the ninth is a
// constant 1 (kept for compatibility). Later columns, if a kernel ever adds
// some, are ignored.
const queueFields = 9

// ParseQueueStats parses the queue file's contents. Blank lines are skipped;
// a line with fewer than nine columns, or a column that is not a number in
// range, is an error wrapping ErrQueueStats.
func ParseQueueStats(b []byte) ([]QueueStats, error) {
	var out []QueueStats
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < queueFields {
			return nil, fmt.Errorf("%w: line %d: %d columns, want %d", ErrQueueStats, n, len(f), queueFields)
		}
		var q QueueStats
		var err error
		num := func(i, bits int) uint64 {
			if err != nil {
				return 0
			}
			v, perr := strconv.ParseUint(string(f[i]), 10, bits)
			if perr != nil {
				err = fmt.Errorf("%w: line %d, column %d: %q is not a %d-bit number", ErrQueueStats, n, i+1, f[i], bits)
			}
			return v
		}
		q.Queue = uint16(num(0, 16))
		q.PeerPortID = uint32(num(1, 32))
		q.Total = uint32(num(2, 32))
		q.CopyMode = uint8(num(3, 8))
		q.CopyRange = uint32(num(4, 32))
		q.Dropped = uint32(num(5, 32))
		q.UserDropped = uint32(num(6, 32))
		q.IDSequence = uint32(num(7, 32))
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}

// String formats q as the kernel does, without the newline.
func (q QueueStats) String() string {
	return fmt.Sprintf("%5d %6d %5d %1d %5d %5d %5d %8d %2d", q.Queue, q.PeerPortID, q.Total,
		q.CopyMode, q.CopyRange, q.Dropped, q.UserDropped, q.IDSequence, 1)
}

// ReadQueueStats reads and parses the queue file at path. When the file
// does not exist (nfnetlink_queue not loaded) the error wraps
// fs.ErrNotExist.
func ReadQueueStats(path string) ([]QueueStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("metrics: queue stats: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxQueueFile))
	if err != nil {
		return nil, fmt.Errorf("metrics: read %s: %w", path, err)
	}
	qs, err := ParseQueueStats(b)
	if err != nil {
		return nil, fmt.Errorf("metrics: %s: %w", path, err)
	}
	return qs, nil
}
