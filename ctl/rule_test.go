package ctl

import (
	"errors"
	"testing"
)

func TestRuleOptions(t *testing.T) {
	r := Rule{Port: 443, Side: SideLocal, Mode: ModeRequired, Options: []Option{OptionNoResume, OptionAppAware}}
	if err := r.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got := r.String(); got != "443/local required +noresume+appaware" {
		t.Errorf("String = %q", got)
	}
	same := Rule{Port: 443, Side: SideLocal, Mode: ModeRequired, Options: []Option{OptionAppAware, OptionNoResume}}
	if !r.Equal(same) || !same.Equal(r) {
		t.Error("rules with the same options in another order are not Equal")
	}
	for _, o := range []Rule{
		{Port: 443, Side: SideLocal, Mode: ModeRequired, Options: []Option{OptionNoResume}},
		{Port: 443, Side: SideLocal, Mode: ModeRequired, Options: []Option{OptionNoResume, OptionNoCache}},
		{Port: 443, Side: SideLocal, Mode: ModeRequired},
		{Port: 443, Side: SideBoth, Mode: ModeRequired, Options: []Option{OptionNoResume, OptionAppAware}},
	} {
		if r.Equal(o) {
			t.Errorf("%v Equal %v", r, o)
		}
	}
	for _, bad := range []Rule{
		{Port: 1, Side: SideLocal, Mode: ModeRequired, Options: []Option{"NoResume"}},
		{Port: 1, Side: SideLocal, Mode: ModeRequired, Options: []Option{OptionNoCache, OptionNoCache}},
		{Port: 1, Side: SideLocal, Mode: ModeExclude, Options: []Option{OptionAppAware}},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Validate(%+v) = %v, want ErrBadRequest", bad, err)
		}
	}
}
