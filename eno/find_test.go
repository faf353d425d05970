package eno

import (
	"bytes"
	"errors"
	"testing"
)

func TestFindENO(t *testing.T) {
	tests := []struct {
		name    string
		opts    string
		raw     string // "" = nil
		count   int
		wantErr bool
	}{
		{"empty", "", "", 0, false},
		{"no ENO: Linux SYN options", "02 04 05 b4 04 02 08 0a 00 00 00 01 00 00 00 00 01 03 03 07", "", 0, false},
		{"ENO after Linux options", "02 04 05 b4 04 02 08 0a 00 00 00 01 00 00 00 00 01 03 03 07 45 04 21 23", "45 04 21 23", 1, false},
		{"non-SYN form with NOP padding", "01 01 45 02", "45 02", 1, false},
		{"non-SYN form with contents (ignored by caller)", "45 04 aa bb", "45 04 aa bb", 1, false},
		{"two ENO options in a SYN", "45 03 23 01 45 03 24", "45 03 23", 2, false},
		{"ENO hidden after EOL", "00 45 03 23", "", 0, false},
		{"EOL then padding", "45 02 00 00", "45 02", 1, false},
		{"malformed SYN-form contents are not FindENO's business", "45 04 21 80", "45 04 21 80", 1, false},
		{"kind without length byte", "02", "", 0, true},
		{"option length 0", "45 00 23", "", 0, true},
		{"option length 1", "02 01", "", 0, true},
		{"option past the end", "02 04 05", "", 0, true},
		{"ENO then malformed option", "45 03 23 08 0a 00", "45 03 23", 1, true},
		{"ENO length past the end", "45 05 23", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, count, err := FindENO(h(t, tt.opts))
			if (err != nil) != tt.wantErr {
				t.Fatalf("FindENO error = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !(errors.Is(err, ErrOptionArea) && errors.Is(err, ErrMalformed)) {
				t.Errorf("error %v should match ErrOptionArea and ErrMalformed", err)
			}
			want := []byte(nil)
			if tt.raw != "" {
				want = h(t, tt.raw)
			}
			if !bytes.Equal(raw, want) || (raw == nil) != (want == nil) {
				t.Errorf("raw = % x, want % x", raw, want)
			}
			if count != tt.count {
				t.Errorf("count = %d, want %d", count, tt.count)
			}
			if got := HasENO(h(t, tt.opts)); got != (tt.count > 0 && !tt.wantErr) {
				t.Errorf("HasENO = %v", got)
			}
		})
	}
}

func TestFindENORawIsCapped(t *testing.T) {
	opts := h(t, "45 03 23 01")
	raw, _, _ := FindENO(opts)
	if cap(raw) != 3 {
		t.Fatalf("cap(raw) = %d, want 3 so appends cannot clobber the option area", cap(raw))
	}
}
