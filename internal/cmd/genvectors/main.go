// Command genvectors writes the tcpcrypt test vectors:
//
//	go run ./internal/cmd/genvectors -o testdata/vectors/tcpcrypt.json
//
// The output is deterministic (fixed keys, nonces and plaintexts); the
// tests in crypto/ check that regenerating gives the committed bytes.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tcpcryptd/tcpcrypt/internal/vectors"
)

func main() {
	out := flag.String("o", "", "output file (default: standard output)")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "genvectors:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	b, err := vectors.Bytes()
	if err != nil {
		return err
	}
	if out == "" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(out, b, 0o644)
}
