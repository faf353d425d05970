package manpage

import (
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// flagDoc is what the generators need to know about one flag.
type flagDoc struct {
	names       []string // short names first, then long ones; without dashes
	placeholder string   // value name, "" when the flag takes no value
	usage       string
	def         string // default shown to the reader, "" for none
	repeatable  bool
	env         []string
}

// dashed returns name with its dashes: "-v", "--verbose".
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// long is the flag's first long name (or its only name).
func (f flagDoc) long() string {
	for _, n := range f.names {
		if len(n) > 1 {
			return n
		}
	}
	return f.names[0]
}

// unquoteUsage takes the `NAME` placeholder out of a usage string, as
// urfave/cli does for its help output.
func unquoteUsage(usage string) (name, text string) {
	i := strings.IndexByte(usage, '`')
	if i < 0 {
		return "", usage
	}
	j := strings.IndexByte(usage[i+1:], '`')
	if j < 0 {
		return "", usage
	}
	name = usage[i+1 : i+1+j]
	return name, usage[:i] + name + usage[i+2+j:]
}

// describe returns the documentation of f, or false for a hidden flag.
// placeholders name the values of flags whose usage string has no `NAME`
// placeholder, by long name.
func describe(f cli.Flag, placeholders map[string]string) (flagDoc, bool) {
	if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
		return flagDoc{}, false
	}
	names := slices.Clone(f.Names())
	slices.SortStableFunc(names, func(a, b string) int {
		return min(len(a), 2) - min(len(b), 2) // single letters first
	})
	d := flagDoc{names: names}
	df, ok := f.(cli.DocGenerationFlag)
	if !ok {
		return d, true
	}
	ph, usage := unquoteUsage(df.GetUsage())
	d.usage = usage
	d.env = df.GetEnvVars()
	if df.TakesValue() {
		d.placeholder = ph
		if d.placeholder == "" {
			d.placeholder = placeholders[d.long()]
		}
		if d.placeholder == "" {
			d.placeholder = "VALUE"
		}
	}
	if sf, ok := f.(cli.DocGenerationSliceFlag); ok && sf.IsSliceFlag() {
		d.repeatable = true
	}
	switch bf := f.(type) {
	case *cli.BoolFlag:
		if !bf.DisableDefaultText {
			if t := bf.GetDefaultText(); t != "false" {
				d.def = t
			}
		}
	default:
		d.def = df.GetDefaultText()
		if u, err := strconv.Unquote(d.def); err == nil {
			d.def = u // urfave/cli shows string defaults quoted
		}
	}
	return d, true
}

// describeAll documents the visible flags of fs, in order.
func describeAll(fs []cli.Flag, ph map[string]string) []flagDoc {
	var out []flagDoc
	for _, f := range fs {
		if d, ok := describe(f, ph); ok {
			out = append(out, d)
		}
	}
	return out
}

// commandFlags are the flags of c as its help shows them: its own, plus
// -h/--help, which urfave/cli adds when the command runs.
func commandFlags(c *cli.Command, ph map[string]string) []flagDoc {
	fs := slices.Clone(c.Flags)
	if !c.HideHelp && cli.HelpFlag != nil && !hasFlag(fs, cli.HelpFlag.Names()[0]) {
		fs = append(fs, cli.HelpFlag)
	}
	return describeAll(fs, ph)
}

func hasFlag(fs []cli.Flag, name string) bool {
	for _, f := range fs {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}

// visibleCommands lists the commands that help would show.
func visibleCommands(cs []*cli.Command) []*cli.Command {
	var out []*cli.Command
	for _, c := range cs {
		if !c.Hidden {
			out = append(out, c)
		}
	}
	return out
}

// prepare completes app the way running it would (help and version flags,
// help command), without running it.
func prepare(app *cli.App) {
	app.Setup()
}

// AllFlagNames returns every flag name of app and its commands, with
// dashes, as a user may type them; for tests that check coverage.
func AllFlagNames(app *cli.App) []string {
	prepare(app)
	var out []string
	add := func(ds []flagDoc) {
		for _, d := range ds {
			for _, n := range d.names {
				out = append(out, dashed(n))
			}
		}
	}
	add(describeAll(app.Flags, nil))
	var walk func([]*cli.Command)
	walk = func(cs []*cli.Command) {
		for _, c := range visibleCommands(cs) {
			add(commandFlags(c, nil))
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
	slices.Sort(out)
	return slices.Compact(out)
}
