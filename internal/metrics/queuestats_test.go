package metrics

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseQueueStats(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []QueueStats
		bad  bool
	}{
		{name: "empty", in: ""},
		{name: "blank lines", in: "\n  \n\t\n"},
		{
			// As the kernel prints it (seq_printf "%5u %6u %5u %1u %5u %5u %5u %8u %2d").
			name: "kernel format",
			in:   " 7463  12345     0 2 65531     3     9     4711  1\n",
			want: []QueueStats{{Queue: 7463, PeerPortID: 12345, CopyMode: 2, CopyRange: 65531,
				Dropped: 3, UserDropped: 9, IDSequence: 4711}},
		},
		{
			name: "two queues, maximum values, no final newline",
			in: "0 0 0 0 0 0 0 0 1\n" +
				"65535 4294967295 4294967295 255 4294967295 4294967295 4294967295 4294967295 1",
			want: []QueueStats{{}, {Queue: 65535, PeerPortID: 1<<32 - 1, Total: 1<<32 - 1, CopyMode: 255,
				CopyRange: 1<<32 - 1, Dropped: 1<<32 - 1, UserDropped: 1<<32 - 1, IDSequence: 1<<32 - 1}},
		},
		{
			name: "extra columns ignored",
			in:   "5 1 2 2 100 7 8 9 1 42 43\n",
			want: []QueueStats{{Queue: 5, PeerPortID: 1, Total: 2, CopyMode: 2, CopyRange: 100, Dropped: 7, UserDropped: 8, IDSequence: 9}},
		},
		{name: "too few columns", in: "7463 1 0 2 65531 3 9 4711\n", bad: true},
		{name: "queue out of range", in: "65536 1 0 2 65531 3 9 4711 1\n", bad: true},
		{name: "counter out of range", in: "1 1 0 2 65531 4294967296 9 4711 1\n", bad: true},
		{name: "copy mode out of range", in: "1 1 0 256 65531 3 9 4711 1\n", bad: true},
		{name: "negative", in: "1 1 0 2 65531 -3 9 4711 1\n", bad: true},
		{name: "not a number", in: "1 1 0 2 65531 x 9 4711 1\n", bad: true},
		{name: "bad second line", in: "1 1 0 2 65531 3 9 4711 1\nfoo\n", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseQueueStats([]byte(tt.in))
			if tt.bad {
				if !errors.Is(err, ErrQueueStats) {
					t.Errorf("error %v, want ErrQueueStats", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestQueueStatsString(t *testing.T) {
	q := QueueStats{Queue: 7463, PeerPortID: 12345, CopyMode: 2, CopyRange: 65531, Dropped: 3, UserDropped: 9, IDSequence: 4711}
	if got, want := q.String(), " 7463  12345     0 2 65531     3     9     4711  1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestReadQueueStats(t *testing.T) {
	qs, err := ReadQueueStats("testdata/nfnetlink_queue")
	if err != nil || len(qs) != 3 || qs[0].Queue != 7463 || qs[0].UserDropped != 9 {
		t.Errorf("ReadQueueStats(testdata) = %+v, %v", qs, err)
	}
	if _, err := ReadQueueStats("/nonexistent/nfnetlink_queue"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}

// FuzzParseQueueStats: no input panics, and whatever parses formats back
// (kernel style) to text that parses to the same entries.
func FuzzParseQueueStats(f *testing.F) {
	f.Add([]byte(" 7463  12345     0 2 65531     3     9     4711  1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		qs, err := ParseQueueStats(b)
		if err != nil {
			if !errors.Is(err, ErrQueueStats) {
				t.Fatalf("error %v does not wrap ErrQueueStats", err)
			}
			return
		}
		var sb strings.Builder
		for _, q := range qs {
			sb.WriteString(q.String() + "\n")
		}
		again, err := ParseQueueStats([]byte(sb.String()))
		if err != nil {
			t.Fatalf("formatted %q does not parse: %v", sb.String(), err)
		}
		if d := cmp.Diff(qs, again); d != "" {
			t.Fatalf("round trip (-first +again):\n%s", d)
		}
	})
}
