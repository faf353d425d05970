package rules

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestOptionsText(t *testing.T) {
	all := OptAppAware | OptNoCache | OptNoResume
	if got := all.String(); got != "noresume+nocache+appaware" {
		t.Errorf("String = %q", got)
	}
	if got := Options(0).String(); got != "" {
		t.Errorf("zero String = %q", got)
	}
	if got := Options(0x80 | 1).String(); got != "noresume+option(0x80)" {
		t.Errorf("undefined bit String = %q", got)
	}
	for _, n := range OptionNames() {
		bit, err := ParseOption(n)
		if err != nil || bit.String() != n {
			t.Errorf("ParseOption(%q) = %v, %v", n, bit, err)
		}
	}
	if _, err := ParseOption("NoResume"); !errors.Is(err, ErrOption) {
		t.Errorf("ParseOption(NoResume) = %v, want ErrOption (names are lower case)", err)
	}
}

func TestOptionsJSON(t *testing.T) {
	b, err := json.Marshal(OptAppAware | OptNoResume)
	if err != nil || string(b) != `["noresume","appaware"]` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
	if _, err := json.Marshal(Options(0x40)); err == nil {
		t.Error("Marshal of an undefined bit succeeded")
	}
	var o Options
	if err := json.Unmarshal([]byte(`["appaware","nocache"]`), &o); err != nil || o != OptAppAware|OptNoCache {
		t.Errorf("Unmarshal = %v, %v", o, err)
	}
	for _, bad := range []string{`["x"]`, `["nocache","nocache"]`, `"nocache"`, `3`} {
		if err := json.Unmarshal([]byte(bad), &o); !errors.Is(err, ErrOption) {
			t.Errorf("Unmarshal(%s) = %v, want ErrOption", bad, err)
		}
	}
	// A policy without options has no "options" key.
	b, _ = json.Marshal(Policy{Port: 1, Side: SideLocal})
	if string(b) != `{"port":1,"side":"local","mode":"opportunistic"}` {
		t.Errorf("Policy JSON = %s", b)
	}
}

func TestPolicyOptionsValidate(t *testing.T) {
	ok := Policy{Port: 1, Side: SideLocal, Mode: ModeRequired, Options: OptNoCache}
	if err := ok.Validate(); err != nil {
		t.Errorf("%v: %v", ok, err)
	}
	if got := ok.String(); got != "local 1 required +nocache" {
		t.Errorf("String = %q", got)
	}
	for _, p := range []Policy{
		{Port: 1, Side: SideLocal, Mode: ModeExclude, Options: OptNoResume},
		{Port: 1, Side: SideLocal, Mode: ModeRequired, Options: 0x20},
	} {
		if err := p.Validate(); !errors.Is(err, ErrOption) {
			t.Errorf("%v: Validate = %v, want ErrOption", p, err)
		}
	}
}
