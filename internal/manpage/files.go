package manpage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
)

// ErrStale reports a committed page or completion script that differs from
// what the command's definition renders.
var ErrStale = errors.New("manpage: generated file is out of date")

// Files are the committed outputs of one command.
type Files struct {
	// Man is the man page, e.g. man/man8/tcpcryptd.8.
	Man string
	// Bash is the bash completion script, e.g. completion/tcpcryptd.
	Bash string
}

// Check renders the man page and completion script of the App that newApp
// returns and compares them with the committed files. With update it
// rewrites the files instead. A difference is an error wrapping ErrStale
// that names the first differing line.
func Check(newApp func() *cli.App, p Page, f Files, update bool) error {
	var man, bash bytes.Buffer
	if err := Render(&man, newApp(), p); err != nil {
		return err
	}
	if err := Bash(&bash, newApp(), p); err != nil {
		return err
	}
	var errs []error
	for _, o := range []struct {
		path string
		data []byte
	}{{f.Man, man.Bytes()}, {f.Bash, bash.Bytes()}} {
		if update {
			if err := os.MkdirAll(filepath.Dir(o.path), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(o.path, o.data, 0o644); err != nil {
				return err
			}
			continue
		}
		old, err := os.ReadFile(o.path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %w (run `make man`)", ErrStale, err))
			continue
		}
		if !bytes.Equal(old, o.data) {
			errs = append(errs, fmt.Errorf("%w: %s: %s (run `make man` and commit the result)", ErrStale, o.path, firstDiff(old, o.data)))
		}
	}
	return errors.Join(errs...)
}

// firstDiff describes the first line where have and want differ.
func firstDiff(have, want []byte) string {
	h := strings.Split(string(have), "\n")
	w := strings.Split(string(want), "\n")
	for i := 0; i < max(len(h), len(w)); i++ {
		var a, b string
		if i < len(h) {
			a = h[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf("line %d: committed %q, generated %q", i+1, a, b)
		}
	}
	return "same lines, different bytes"
}

// ErrIncompleteCompletion reports a committed completion script that lacks
// a flag of its command.
var ErrIncompleteCompletion = errors.New("manpage: completion script lacks a flag")

// CheckCompletion reads the committed completion script at path and reports
// every flag name of app (see AllFlagNames) it does not mention.
func CheckCompletion(app *cli.App, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range AllFlagNames(app) {
		if !strings.Contains(string(b), name) {
			errs = append(errs, fmt.Errorf("%w: %s does not complete %s", ErrIncompleteCompletion, path, name))
		}
	}
	return errors.Join(errs...)
}
