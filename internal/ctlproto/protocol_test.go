package ctlproto

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadLine(t *testing.T) {
	tests := []struct {
		in    string
		max   int
		lines []string
		err   error
	}{
		{"a\nbb\n", 2, []string{"a", "bb"}, io.EOF},
		{"a\nbbb\n", 2, []string{"a"}, ErrLineTooLong},
		{"abc", 3, []string{"abc"}, io.EOF},
		{"abcd", 3, nil, ErrLineTooLong},
		{"\n\n", 0, []string{"", ""}, io.EOF},
		{strings.Repeat("z", 10000) + "\n", 10000, []string{strings.Repeat("z", 10000)}, io.EOF},
		{strings.Repeat("z", 10001) + "\n", 10000, nil, ErrLineTooLong},
	}
	for _, tt := range tests {
		br := bufio.NewReaderSize(strings.NewReader(tt.in), 16)
		var got []string
		var err error
		for {
			var l []byte
			l, err = ReadLine(br, tt.max)
			if err != nil {
				break
			}
			got = append(got, string(l))
		}
		if !errors.Is(err, tt.err) || strings.Join(got, "|") != strings.Join(tt.lines, "|") {
			t.Errorf("ReadLine(%.20q, %d) = %q, %v; want %q, %v", tt.in, tt.max, got, err, tt.lines, tt.err)
		}
	}
}
