package deploy

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseContainerfile(t *testing.T) {
	src := "# comment\n\nFROM debian:bookworm-slim AS base\nCOPY --chown=0:0 a.deb b.deb /tmp/\nRUN apt-get update \\\n # inside\n && true\nENTRYPOINT [\"/x\", \"-a\"]\nCMD echo hi\n"
	ins, err := ParseContainerfile([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, in := range ins {
		cmds = append(cmds, in.Cmd)
	}
	if want := []string{"FROM", "COPY", "RUN", "ENTRYPOINT", "CMD"}; !slices.Equal(cmds, want) {
		t.Fatalf("instructions %v, want %v", cmds, want)
	}
	if ins[2].Args != "apt-get update && true" || ins[2].Line != 5 {
		t.Errorf("RUN = line %d %q, want line 5 with the continuation joined", ins[2].Line, ins[2].Args)
	}
	if got := CopySources(ins[1]); !slices.Equal(got, []string{"a.deb", "b.deb"}) {
		t.Errorf("COPY sources %v", got)
	}
	if !slices.Equal(ins[3].JSON, []string{"/x", "-a"}) || ins[4].JSON != nil {
		t.Errorf("exec forms: ENTRYPOINT %q, CMD %q", ins[3].JSON, ins[4].JSON)
	}
	for _, bad := range []string{"FROM\n", "RUN a \\\n"} {
		if _, err := ParseContainerfile([]byte(bad)); !errors.Is(err, ErrContainerfile) {
			t.Errorf("ParseContainerfile(%q) = %v, want ErrContainerfile", bad, err)
		}
	}
}

const helpSample = `NAME:
   tcpcryptd - x

GLOBAL OPTIONS:
   --queue QUEUE, -p QUEUE      QUEUE number (default: "7463")
   --verbose, -v                log more
   --rule SPEC [ --rule SPEC ]  cover a port; repeatable
   --config FILE                read settings
   --help, -h                   show help
`

func TestParseHelp(t *testing.T) {
	f, err := ParseHelp([]byte(helpSample))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Flag{
		"queue": {Name: "queue", Aliases: []string{"p"}, Value: true},
		"p":     {Name: "queue", Aliases: []string{"p"}, Value: true},
		"v":     {Name: "verbose", Aliases: []string{"v"}},
		"rule":  {Name: "rule", Value: true},
		"h":     {Name: "help", Aliases: []string{"h"}},
	}
	for k, w := range want {
		g, ok := f[k]
		if !ok || g.Name != w.Name || g.Value != w.Value || !slices.Equal(g.Aliases, w.Aliases) {
			t.Errorf("flag %s = %+v (present %v), want %+v", k, g, ok, w)
		}
	}
	if _, err := ParseHelp([]byte("NAME:\n   tcpcryptd\n")); !errors.Is(err, ErrHelp) {
		t.Errorf("help without options: %v, want ErrHelp", err)
	}

	args, err := f.ParseArgs([]string{"-p", "7", "--rule=443", "-v", "--queue", "9"})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := Last(args, "queue"); v != "9" {
		t.Errorf("last --queue = %q, want 9", v)
	}
	if v, ok := Last(args, "verbose"); !ok || v != "" {
		t.Errorf("--verbose = %q %v", v, ok)
	}
	for _, bad := range [][]string{{"--nope"}, {"--queue"}, {"443"}, {"-"}} {
		if _, err := f.ParseArgs(bad); err == nil {
			t.Errorf("ParseArgs(%q) accepted", bad)
		}
	}

	conf, err := f.ParseConfigFile([]byte("# c\nrule = 443\n\nqueue=7\n"))
	if err != nil || len(conf) != 2 || conf[1] != (Arg{Name: "queue", Value: "7"}) {
		t.Errorf("ParseConfigFile = %v, %v", conf, err)
	}
	for _, bad := range []string{"config = x\n", "p = 7\n", "nonsense\n", "help = 1\n"} {
		if _, err := f.ParseConfigFile([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("ParseConfigFile(%q) = %v, want an error on line 1", bad, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"256M": 256 << 20, "1G": 1 << 30, "4096": 4096, "8k": 8 << 10} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "M", "1T", "-1", "99999999999G"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
	for in, want := range map[string]int64{"448MiB": 448 << 20, "1GiB": 1 << 30, "1024": 1024, "7B": 7} {
		if got, err := parseGoMemLimit(in); err != nil || got != want {
			t.Errorf("parseGoMemLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"448M", "", "x", "-5MiB"} {
		if _, err := parseGoMemLimit(bad); err == nil {
			t.Errorf("parseGoMemLimit(%q) accepted", bad)
		}
	}
}

// An empty document (comments only) between separators is skipped; one
// without a kind is not.
func TestLoadManifestsDocuments(t *testing.T) {
	m, err := LoadManifests([]byte("# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n"))
	if err != nil || len(m.Namespaces) != 1 || m.Namespaces[0].Name != "a" {
		t.Fatalf("LoadManifests = %+v, %v", m, err)
	}
	if _, err := LoadManifests([]byte("metadata:\n  name: a\n")); !errors.Is(err, ErrManifest) {
		t.Errorf("a document without a kind: %v, want ErrManifest", err)
	}
	if _, err := LoadManifests([]byte("apiVersion: v1\nkind: Namespace\n\tbad")); !errors.Is(err, ErrManifest) {
		t.Errorf("invalid YAML: %v, want ErrManifest", err)
	}
}
