package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ErrHelp is wrapped by every error ParseHelp returns.
var ErrHelp = errors.New("tcpcryptd -h")

// Flag is one command-line option of tcpcryptd, as its -h lists it.
type Flag struct {
	// Name is the long name without dashes ("queue").
	Name string
	// Aliases are the other names without dashes ("p").
	Aliases []string
	// Value reports whether the option takes a value (-h shows a
	// placeholder after its name, e.g. "--queue QUEUE").
	Value bool
}

// Flags are tcpcryptd's options by every name and alias.
type Flags map[string]Flag

// ParseHelp reads the option list of `tcpcryptd -h` (urfave/cli's layout:
// the lines after "GLOBAL OPTIONS:", each "   --name PLACEHOLDER, -a
// PLACEHOLDER   usage"). No option at all is an error.
func ParseHelp(b []byte) (Flags, error) {
	out := Flags{}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasSuffix(strings.TrimSpace(line), "OPTIONS:") {
			in = true
			continue
		}
		trimmed := strings.TrimSpace(line)
		if !in || !strings.HasPrefix(trimmed, "-") {
			continue
		}
		// The names end where the usage text starts: two spaces or more.
		names, _, _ := strings.Cut(trimmed, "  ")
		var f Flag
		for part := range strings.SplitSeq(names, ", ") {
			words := strings.Fields(part)
			if len(words) == 0 || !strings.HasPrefix(words[0], "-") {
				continue
			}
			name := strings.TrimLeft(words[0], "-")
			if name == "" {
				return nil, fmt.Errorf("%w: an option without a name in %q", ErrHelp, line)
			}
			if f.Name == "" {
				f.Name = name
				f.Value = len(words) > 1
			} else {
				f.Aliases = append(f.Aliases, name)
			}
		}
		if f.Name == "" {
			continue
		}
		for _, n := range append([]string{f.Name}, f.Aliases...) {
			out[n] = f
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHelp, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no options listed", ErrHelp)
	}
	return out, nil
}

// Arg is one option of a command line.
type Arg struct {
	Name  string // long name as the daemon knows it (an alias is resolved)
	Value string // "" for an option without a value
}

// ParseArgs splits a tcpcryptd command line (without the program name) into
// its options, checking each against flags: "--name value", "--name=value",
// "-a value", and "--name" alone for an option without a value. An unknown
// option, a missing value or a word that is no option is an error.
func (flags Flags) ParseArgs(args []string) ([]Arg, error) {
	var out []Arg
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			return nil, fmt.Errorf("argument %q is not an option", a)
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f, ok := flags[name]
		if !ok {
			return nil, fmt.Errorf("tcpcryptd has no option %q", a)
		}
		if f.Value && !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("option %q needs a value", a)
			}
			i++
			val = args[i]
		}
		out = append(out, Arg{Name: f.Name, Value: val})
	}
	return out, nil
}

// Last returns the value of the last option named name in args, and whether
// there is one (the daemon, like most, lets a later option win).
func Last(args []Arg, name string) (string, bool) {
	for i := len(args) - 1; i >= 0; i-- {
		if args[i].Name == name {
			return args[i].Value, true
		}
	}
	return "", false
}

// ParseConfigFile reads tcpcryptd's configuration file format: "key =
// value" lines, blank lines and lines starting with '#' skipped. Keys are
// the daemon's long option names; each must be in flags (and not "config").
func (flags Flags) ParseConfigFile(b []byte) ([]Arg, error) {
	var out []Arg
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: want key = value", n)
		}
		f, known := flags[k]
		if !known || f.Name != k || k == "config" || k == "help" || k == "version" {
			return nil, fmt.Errorf("line %d: %q is not a setting of tcpcryptd", n, k)
		}
		out = append(out, Arg{Name: k, Value: v})
	}
	return out, sc.Err()
}
