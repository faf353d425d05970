package main

import (
	"io"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	o, err := parseArgs([]string{"-hook", "local", "-port", "5001", "-q", "9", "-loss", "0.5", "-reorder", "0.25",
		"-dup", "0.125", "-gap", "4", "-max-hold", "5ms", "-max-held", "7", "-seed", "99", "-gso"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := options{
		table:  tableConfig{hook: hookLocal, port: 5001, queue: 9, mark: defaultMark},
		params: Params{Loss: 0.5, Reorder: 0.25, Dup: 0.125, Gap: 4, MaxHold: 5 * time.Millisecond, MaxHeld: 7},
		seed:   99, gso: true,
	}
	if o != want {
		t.Errorf("got %+v\nwant %+v", o, want)
	}
	if d, err := parseArgs(nil, io.Discard); err != nil || d.table.hook != hookForward || d.table.queue != 7400 || d.params.Gap != 3 {
		t.Errorf("defaults: %+v, %v", d, err)
	}
	for _, bad := range [][]string{
		{"-hook", "prerouting"}, {"-port", "70000"}, {"-q", "65536"}, {"-loss", "2"},
		{"-gap", "0"}, {"extra"}, {"-nosuchflag"},
	} {
		if _, err := parseArgs(bad, io.Discard); err == nil {
			t.Errorf("parseArgs(%q) accepted", bad)
		}
	}
}

func TestRunUsage(t *testing.T) {
	if code := run([]string{"-loss", "-1"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
}
