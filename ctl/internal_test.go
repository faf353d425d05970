package ctl

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestAuthorize(t *testing.T) {
	tests := []struct {
		op   Op
		peer Peer
		ok   bool
	}{
		{OpRulesAdd, Peer{Network: "unix", Cred: true, UID: 0}, true},
		{OpRulesDel, Peer{Network: "unix", Cred: true, UID: 0}, true},
		{OpRulesAdd, Peer{Network: "unix", Cred: true, UID: 1}, false},
		{OpRulesDel, Peer{Network: "unix", Cred: true, UID: 65534}, false},
		{OpRulesAdd, Peer{Network: "unix", Cred: false, UID: 0}, false},
		{OpRulesAdd, Peer{Network: "tcp", Cred: true, UID: 0}, false},
		{OpRulesAdd, Peer{}, false},
		{OpRulesList, Peer{Network: "tcp"}, true},
		{OpSessID, Peer{Network: "unix", Cred: true, UID: 1000}, true},
		{OpStatus, Peer{}, true},
		{Op("whatever"), Peer{Network: "tcp"}, true}, // unknown ops are refused later as bad_request
	}
	for _, tt := range tests {
		err := authorize(tt.op, tt.peer)
		if (err == nil) != tt.ok {
			t.Errorf("authorize(%s, %+v) = %v, want ok=%v", tt.op, tt.peer, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrForbidden) {
			t.Errorf("authorize error %v does not match ErrForbidden", err)
		}
	}
}

func TestReadLine(t *testing.T) {
	tests := []struct {
		in    string
		max   int
		lines []string
		err   error
	}{
		{"a\nbb\n", 2, []string{"a", "bb"}, io.EOF},
		{"a\nbbb\n", 2, []string{"a"}, errLineTooLong},
		{"abc", 3, []string{"abc"}, io.EOF},
		{"abcd", 3, nil, errLineTooLong},
		{"\n\n", 0, []string{"", ""}, io.EOF},
		{strings.Repeat("z", 10000) + "\n", 10000, []string{strings.Repeat("z", 10000)}, io.EOF},
		{strings.Repeat("z", 10001) + "\n", 10000, nil, errLineTooLong},
	}
	for _, tt := range tests {
		br := bufio.NewReaderSize(strings.NewReader(tt.in), 16)
		var got []string
		var err error
		for {
			var l []byte
			l, err = readLine(br, tt.max)
			if err != nil {
				break
			}
			got = append(got, string(l))
		}
		if !errors.Is(err, tt.err) || strings.Join(got, "|") != strings.Join(tt.lines, "|") {
			t.Errorf("readLine(%.20q, %d) = %q, %v; want %q, %v", tt.in, tt.max, got, err, tt.lines, tt.err)
		}
	}
}
