package manpage

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

// complete sources the generated script in bash and returns what the
// completion function offers for words (the last one is being typed).
func complete(t *testing.T, bash, script string, words ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prog := `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _demo; printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.CommandContext(ctx, bash, append([]string{"--norc", "--noprofile", "-c", prog, "bash", script}, words...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bash completion of %q: %v", words, err)
	}
	var got []string
	for l := range strings.SplitSeq(string(out), "\n") {
		if l != "" {
			got = append(got, l)
		}
	}
	slices.Sort(got)
	return got
}

func TestBashCompletion(t *testing.T) {
	bash := testenv.LookPath(t, "bash", "apt-get install bash")
	dir := t.TempDir()
	var b bytes.Buffer
	if err := Bash(&b, testApp(), testPage()); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "demo")
	if err := os.WriteFile(script, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	if strings.Contains(b.String(), "secret") {
		t.Error("script offers a hidden flag or command")
	}
	conf := filepath.Join(dir, "demo.conf")
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		words []string
		want  []string
	}{
		{[]string{"demo", ""}, []string{"h", "help", "rules", "st", "status"}},
		{[]string{"demo", "--q"}, []string{"--queue", "--quiet"}},
		{[]string{"demo", "-"}, []string{"--address", "--config", "--help", "--interval", "--queue", "--quiet",
			"--resumption", "--rule", "--verbose", "--workers", "-h", "-p", "-u", "-v"}},
		{[]string{"demo", "rules", ""}, []string{"a", "add", "list"}},
		{[]string{"demo", "rules", "add", "--mode", "r"}, []string{"required"}},
		{[]string{"demo", "rules", "a", "--mode", ""}, []string{"opportunistic", "required"}},
		{[]string{"demo", "rules", "list", "--"}, []string{"--help", "--json"}},
		{[]string{"demo", "-p", "rul"}, nil},                      // a value, not a command
		{[]string{"demo", "-p", "7463", "ru"}, []string{"rules"}}, // the value was skipped
		{[]string{"demo", "--config", filepath.Join(dir, "demo.c")}, []string{conf}},
		{[]string{"demo", "st", "--"}, []string{"--help"}},
		{[]string{"demo", "status", ""}, []string{"--help", "-h"}},
	}
	for _, tt := range tests {
		got := complete(t, bash, script, tt.words...)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("completing %q (-want +got):\n%s", tt.words, diff)
		}
	}
}

func TestShellWord(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"rules add|--mode", "'rules add|--mode'"},
		{"", "''"},
		{"it's", `'it'\''s'`},
	}
	for _, tt := range tests {
		if got := shellWord(tt.in); got != tt.want {
			t.Errorf("shellWord(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
