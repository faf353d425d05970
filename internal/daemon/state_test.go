package daemon

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpcryptd/tcpcrypt/rules"
)

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "rules.json")
	got, err := LoadState(path)
	if err != nil || got != nil {
		t.Fatalf("LoadState(missing) = %v, %v; want nil, nil", got, err)
	}
	ps := []rules.Policy{
		{Port: 443, Side: rules.SideLocal, Mode: rules.ModeRequired},
		{Port: 25, Side: rules.SideRemote, Prefix: netip.MustParsePrefix("2001:db8::/32"), Mode: rules.ModeExclude},
		{Port: 8443, Side: rules.SideBoth, Mode: rules.ModeOpportunistic, Options: rules.OptNoResume | rules.OptAppAware},
	}
	if err := SaveState(path, ps); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	got, err = LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(ps, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	// Overwrite with nothing: an empty list, and no temporary files left.
	if err := SaveState(path, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadState(path); err != nil || len(got) != 0 {
		t.Errorf("after saving nil: %v, %v", got, err)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the state file", len(ents))
	}
}

// TestStateOptionsFormat: a rule's options are an array of names in the
// state file, absent when there are none, so a file written before options
// existed loads unchanged and a rule without options is written as before.
func TestStateOptionsFormat(t *testing.T) {
	old := `{"version": 1, "rules": [{"port": 443, "side": "local", "mode": "required"}, {"port": 25, "side": "remote", "prefix": "10.0.0.0/8", "mode": "exclude"}]}`
	got, err := parseState("old.json", []byte(old))
	if err != nil {
		t.Fatalf("a state file without options: %v", err)
	}
	want := []rules.Policy{
		{Port: 443, Side: rules.SideLocal, Mode: rules.ModeRequired},
		{Port: 25, Side: rules.SideRemote, Prefix: netip.MustParsePrefix("10.0.0.0/8"), Mode: rules.ModeExclude},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	path := filepath.Join(t.TempDir(), "rules.json")
	ps := []rules.Policy{
		{Port: 443, Side: rules.SideLocal, Mode: rules.ModeRequired},
		{Port: 444, Side: rules.SideLocal, Mode: rules.ModeRequired, Options: rules.OptAppAware | rules.OptNoResume},
	}
	if err := SaveState(path, ps); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if strings.Count(text, `"options"`) != 1 || !strings.Contains(text, `"options": [
        "noresume",
        "appaware"
      ]`) {
		t.Errorf("state file:\n%s\nwant one options array [noresume, appaware]", text)
	}
}

func TestLoadStateRejects(t *testing.T) {
	for name, text := range map[string]string{
		"not json":       "{",
		"wrong version":  `{"version": 2, "rules": []}`,
		"unknown field":  `{"version": 1, "rules": [], "extra": 1}`,
		"bad side":       `{"version": 1, "rules": [{"port": 1, "side": "up", "mode": "required"}]}`,
		"port zero":      `{"version": 1, "rules": [{"port": 0, "side": "local", "mode": "required"}]}`,
		"overlap":        `{"version": 1, "rules": [{"port": 1, "side": "local", "mode": "required"}, {"port": 1, "side": "both", "mode": "exclude"}]}`,
		"trailing field": `{"version": 1, "rules": [{"port": 1, "side": "local", "mode": "required", "color": 1}]}`,
		"bad option":     `{"version": 1, "rules": [{"port": 1, "side": "local", "mode": "required", "options": ["fast"]}]}`,
		"option twice":   `{"version": 1, "rules": [{"port": 1, "side": "local", "mode": "required", "options": ["nocache", "nocache"]}]}`,
		"options string": `{"version": 1, "rules": [{"port": 1, "side": "local", "mode": "required", "options": "nocache"}]}`,
		"exclude option": `{"version": 1, "rules": [{"port": 1, "side": "local", "mode": "exclude", "options": ["noresume"]}]}`,
	} {
		path := filepath.Join(t.TempDir(), "rules.json")
		os.WriteFile(path, []byte(text), 0o600)
		if _, err := LoadState(path); !errors.Is(err, ErrState) {
			t.Errorf("%s: LoadState = %v, want ErrState", name, err)
		}
	}
}

func TestSaveStateUnwritable(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o600)
	if err := SaveState(filepath.Join(blocker, "rules.json"), nil); !errors.Is(err, ErrState) {
		t.Errorf("SaveState under a regular file = %v, want ErrState", err)
	}
}

func TestParseStateTrailingData(t *testing.T) {
	if _, err := parseState("f", []byte(`{"version":1,"rules":[]} {}`)); !errors.Is(err, ErrState) {
		t.Errorf("trailing data accepted: %v", err)
	}
}
