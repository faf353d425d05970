package main

import (
	"flag"
	"io"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/tcpcryptd/tcpcrypt/internal/manpage"
)

var update = flag.Bool("update", false, "rewrite the man page and completion script from the command definition")

var docFiles = manpage.Files{Man: "../../man/man1/tcpcryptdump.1", Bash: "../../completion/tcpcryptdump"}

func docApp() *cli.App { return newApp(io.Discard, io.Discard) }

// TestManPage fails when a flag changed without `make man`.
func TestManPage(t *testing.T) {
	if err := manpage.Check(docApp, manpage.Tcpcryptdump(), docFiles, *update); err != nil {
		t.Fatal(err)
	}
}

// TestCompletionHasEveryFlag checks the committed completion script itself.
func TestCompletionHasEveryFlag(t *testing.T) {
	if err := manpage.CheckCompletion(docApp(), docFiles.Bash); err != nil {
		t.Error(err)
	}
}
