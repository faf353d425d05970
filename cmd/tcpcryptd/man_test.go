package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/tcpcryptd/tcpcrypt/internal/daemon"
	"github.com/tcpcryptd/tcpcrypt/internal/manpage"
)

var update = flag.Bool("update", false, "rewrite the man page and completion script from the command definition")

var docFiles = manpage.Files{Man: "../../man/man8/tcpcryptd.8", Bash: "../../completion/tcpcryptd"}

func docApp() *cli.App { return newApp(nil, io.Discard, io.Discard, nil) }

// TestManPage fails when a flag or command changed without `make man`.
func TestManPage(t *testing.T) {
	if err := manpage.Check(docApp, manpage.Tcpcryptd(), docFiles, *update); err != nil {
		t.Fatal(err)
	}
}

// TestCompletionHasEveryFlag checks the committed completion script itself.
func TestCompletionHasEveryFlag(t *testing.T) {
	if err := manpage.CheckCompletion(docApp(), docFiles.Bash); err != nil {
		t.Error(err)
	}
}

// defaultConfig is the commented-out configuration file that `make install`
// and the .deb put in /etc/tcpcrypt.
const defaultConfig = "../../scripts/tcpcryptd.conf"

// TestDefaultConfigFile checks that the shipped configuration file lists
// every key, that each commented line is valid as it stands, and that it
// shows the defaults --help shows. Example lines (keys without a default)
// are marked "No default" in the comment above them.
func TestDefaultConfigFile(t *testing.T) {
	b, err := os.ReadFile(defaultConfig)
	if err != nil {
		t.Fatal(err)
	}
	// As shipped, everything is commented out: it parses to nothing.
	if kvs, err := daemon.ParseFile(defaultConfig); err != nil || len(kvs) != 0 {
		t.Fatalf("ParseFile(%s) = %v, %v; want no settings", defaultConfig, kvs, err)
	}
	shown := map[string]string{}
	example := false
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(line, "No default") {
			example = true
		}
		body, ok := strings.CutPrefix(line, "#")
		if !ok || strings.HasPrefix(body, " ") || !strings.Contains(body, "=") {
			if line == "" {
				example = false
			}
			continue
		}
		k, v, _ := strings.Cut(body, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		var scratch daemon.Config
		if err := scratch.Set(k, v); err != nil {
			t.Errorf("%s: line %q: %v", defaultConfig, line, err)
		}
		if !example {
			shown[k] = v
		} else if _, dup := shown[k]; !dup {
			shown[k] = "(example)"
		}
	}
	for _, k := range daemon.Keys {
		if _, ok := shown[k]; !ok {
			t.Errorf("%s does not mention key %q", defaultConfig, k)
		}
	}
	// Defaults that --help shows must be the ones the file shows.
	for _, f := range flags() {
		name := f.Names()[0]
		got, ok := shown[name]
		if !ok || got == "(example)" {
			continue
		}
		want := ""
		switch ff := f.(type) {
		case *cli.StringFlag:
			if ff.Value == "" {
				continue // unset; the file shows what "unset" is written as
			}
			want = ff.Value
		case *cli.BoolFlag:
			if ff.Count != nil {
				continue // -v, -vv: a number in the file
			}
			want = fmt.Sprint(ff.Value)
			if name == "fail-open" {
				want = "true" // shown as "on" in --help
			}
		default:
			continue // numbers shown as 0 mean "the built-in choice"
		}
		if got != want {
			t.Errorf("%s shows %s = %q, but the default is %q", defaultConfig, name, got, want)
		}
	}
}
