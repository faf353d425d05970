package main

import (
	"flag"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/tcpcryptd/tcpcrypt/internal/manpage"
)

var update = flag.Bool("update", false, "rewrite the man page and completion script from the command definition")

var docFiles = manpage.Files{Man: "../../man/man8/tcpcryptctl.8", Bash: "../../completion/tcpcryptctl"}

func docApp() *cli.App { return newApp(io.Discard, io.Discard) }

// TestManPage fails when a flag or command changed without `make man`.
func TestManPage(t *testing.T) {
	if err := manpage.Check(docApp, manpage.Tcpcryptctl(), docFiles, *update); err != nil {
		t.Fatal(err)
	}
}

// TestCompletionHasEveryFlag checks the committed completion script itself.
func TestCompletionHasEveryFlag(t *testing.T) {
	b, err := os.ReadFile(docFiles.Bash)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range manpage.AllFlagNames(docApp()) {
		if !strings.Contains(string(b), name) {
			t.Errorf("%s does not complete %s", docFiles.Bash, name)
		}
	}
}
