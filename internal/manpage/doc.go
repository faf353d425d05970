// Package manpage renders the documentation that ships with the commands —
// roff man pages and bash completion scripts — from their urfave/cli
// definitions, so that neither can drift from the flags the programs
// really accept.
//
// The generated parts (SYNOPSIS, OPTIONS, COMMANDS, every flag with its
// aliases and default) come from the *cli.App; the prose comes from a Page
// (pages.go) written in a small markup (see Markup in roff.go). Each command
// renders its own files in a test (cmd/*/man_test.go) and compares them with
// the committed ones in man/ and completion/; `make man` (go test ... -update)
// regenerates them.
package manpage
