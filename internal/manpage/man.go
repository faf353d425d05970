package manpage

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// Page is the hand-written part of a command's documentation.
type Page struct {
	// Section is the manual section, e.g. "8".
	Section string
	// Date is the page's date (YYYY-MM-DD), fixed so that regenerating
	// gives the same bytes.
	Date string
	// Source is the package the command belongs to, e.g. "tcpcrypt".
	Source string
	// Manual is the title of the manual, e.g. "System Manager's Manual".
	Manual string
	// Description is the DESCRIPTION section (markup); the App's
	// Description when empty.
	Description string
	// Sections follow OPTIONS and COMMANDS, in order (markup bodies).
	Sections []Section
	// FileFlags are the long names of flags whose value is a file name, for
	// completion. Flags whose placeholder is FILE or SOCKET are file flags
	// anyway.
	FileFlags []string
	// Placeholders name the value of flags whose usage string has no
	// `NAME` placeholder, by long name ("address": "ADDRESS").
	Placeholders map[string]string
	// FlagValues are the values offered for a flag by completion, by long
	// name (e.g. "mode": opportunistic, required, exclude).
	FlagValues map[string][]string
	// ArgsFrom completes the arguments of a command, by command path
	// ("rules del"), with the words that the program itself prints when
	// run with these arguments after the global options typed so far
	// (e.g. "rules list --ports"). Errors and a missing daemon complete
	// nothing.
	ArgsFrom map[string]string
}

// Section is a titled part of a page.
type Section struct {
	// Title is the heading, conventionally upper case ("FILES").
	Title string
	// Body is markup.
	Body string
}

// ErrIncomplete reports a Page or App that lacks what a page needs.
var ErrIncomplete = errors.New("manpage: incomplete definition")

// Render writes the roff man page of app to w. app is completed as running
// it would (help and version flags, help command) and must not be run
// afterwards.
func Render(w io.Writer, app *cli.App, p Page) error {
	if app.Name == "" || p.Section == "" || p.Date == "" {
		return fmt.Errorf("%w: need the App's Name and the Page's Section and Date", ErrIncomplete)
	}
	prepare(app)
	bw := bufio.NewWriter(w)
	line := func(s ...string) {
		for _, l := range s {
			bw.WriteString(l)
			bw.WriteByte('\n')
		}
	}
	line(`.\" Generated from the command's urfave/cli definition by internal/manpage;`,
		`.\" do not edit: change the flags or internal/manpage/pages.go and run "make man".`)
	line(fmt.Sprintf(`.TH %s %s %s %s %s`, quoteArg(strings.ToUpper(app.Name)), p.Section,
		quoteArg(p.Date), quoteArg(p.Source), quoteArg(p.Manual)))

	line(".SH NAME", escape(app.Name, true)+` \- `+escape(app.Usage, false))

	line(".SH SYNOPSIS", ".nh", ".ad l")
	line(synopsis(app, p.Placeholders)...)
	line(".ad", ".hy")

	line(".SH DESCRIPTION")
	desc := p.Description
	if desc == "" {
		desc = app.Description
	}
	if desc == "" {
		desc = app.Usage
	}
	line(toRoff(desc)...)

	if fs := describeAll(app.Flags, p.Placeholders); len(fs) > 0 {
		title := "OPTIONS"
		if len(app.Commands) > 0 {
			title = "GLOBAL OPTIONS"
		}
		line(".SH " + title)
		for _, f := range fs {
			line(flagItem(f)...)
		}
	}

	if cs := visibleCommands(app.Commands); len(cs) > 0 {
		line(".SH COMMANDS")
		line(commands(app.Name, cs, p.Placeholders)...)
	}

	for _, s := range p.Sections {
		line(".SH "+quoteArg(strings.ToUpper(s.Title)), "")
		body := toRoff(s.Body)
		line(body...)
	}
	return bw.Flush()
}

// quoteArg quotes a macro argument when it holds spaces.
func quoteArg(s string) string {
	s = escape(s, false)
	if strings.ContainsAny(s, " \t") || s == "" {
		return `"` + strings.ReplaceAll(s, `"`, `\(dq`) + `"`
	}
	return s
}

// bold and italic set code-escaped text in a font.
func bold(s string) string   { return `\fB\%` + escape(s, true) + `\fR` }
func italic(s string) string { return `\fI` + escape(s, true) + `\fR` }

// flagUsage is "-p QUEUE" for the synopsis: the shortest name and the value.
func flagUsage(f flagDoc) string {
	s := bold(dashed(f.names[0]))
	if f.placeholder != "" {
		s += " " + italic(f.placeholder)
	}
	return s
}

// flagItem is the OPTIONS entry of f.
func flagItem(f flagDoc) []string {
	var names []string
	for _, n := range f.names {
		names = append(names, bold(dashed(n)))
	}
	head := strings.Join(names, ", ")
	if f.placeholder != "" {
		head += " " + italic(f.placeholder)
	}
	body := escape(f.usage, false)
	if body != "" && !strings.HasSuffix(body, ".") {
		body += "."
	}
	if f.repeatable && !strings.Contains(f.usage, "repeatable") {
		body += " May be given more than once."
	}
	if f.def != "" {
		body += " Default: " + bold(f.def) + "."
	}
	if len(f.env) > 0 {
		body += " Environment: " + bold(strings.Join(f.env, ", ")) + "."
	}
	return []string{".TP", protect(head), protect(strings.TrimSpace(body))}
}

// synopsis lists the command lines: every option for a program without
// commands, one line per leaf command otherwise.
func synopsis(app *cli.App, ph map[string]string) []string {
	global := describeAll(app.Flags, ph)
	if len(app.Commands) == 0 {
		parts := []string{bold(app.Name)}
		for _, f := range global {
			if isHelpOrVersion(f) {
				continue
			}
			parts = append(parts, "["+flagUsage(f)+"]")
		}
		if app.ArgsUsage != "" {
			parts = append(parts, escape(app.ArgsUsage, true))
		}
		return []string{protect(strings.Join(parts, " "))}
	}
	var gparts []string
	for _, f := range global {
		if !isHelpOrVersion(f) {
			gparts = append(gparts, "["+flagUsage(f)+"]")
		}
	}
	prefix := bold(app.Name)
	if len(gparts) > 0 {
		prefix += " " + strings.Join(gparts, " ")
	}
	var out []string
	var walk func(path string, cs []*cli.Command)
	walk = func(path string, cs []*cli.Command) {
		for _, c := range visibleCommands(cs) {
			if c.Name == "help" {
				continue
			}
			p := strings.TrimSpace(path + " " + c.Name)
			if len(c.Subcommands) > 0 {
				walk(p, c.Subcommands)
				continue
			}
			if len(out) > 0 {
				out = append(out, ".br")
			}
			out = append(out, protect(prefix+" "+bold(p)+commandArgs(c, ph)))
		}
	}
	walk("", app.Commands)
	return out
}

// commandArgs is a command's options (those its ArgsUsage does not show
// already) and its ArgsUsage.
func commandArgs(c *cli.Command, ph map[string]string) string {
	var s string
	for _, f := range commandFlags(c, ph) {
		if isHelpOrVersion(f) || strings.Contains(c.ArgsUsage, dashed(f.long())) {
			continue
		}
		s += " [" + flagUsage(f) + "]"
	}
	if c.ArgsUsage != "" {
		s += " " + escape(c.ArgsUsage, true)
	}
	return s
}

func isHelpOrVersion(f flagDoc) bool {
	return f.long() == "help" || (f.long() == "version" && f.placeholder == "")
}

// commands documents cs and their subcommands, nested.
func commands(path string, cs []*cli.Command, ph map[string]string) []string {
	var out []string
	for _, c := range cs {
		p := path + " " + c.Name
		head := bold(strings.TrimPrefix(p, strings.Fields(p)[0]+" "))
		for _, a := range c.Aliases {
			head += ", " + bold(a)
		}
		if len(c.Subcommands) == 0 {
			head += commandArgs(c, ph)
		}
		out = append(out, ".TP", protect(head))
		text := escape(c.Usage, false)
		if text != "" && !strings.HasSuffix(text, ".") {
			text += "."
		}
		out = append(out, protect(text))
		if c.Description != "" {
			for _, l := range strings.Split(c.Description, "\n") {
				if l = strings.TrimSpace(l); l != "" {
					out = append(out, protect(escape(l, false)))
				}
			}
		}
		fs := commandFlags(c, ph)
		var shown []flagDoc
		for _, f := range fs {
			if f.long() != "help" {
				shown = append(shown, f)
			}
		}
		if len(shown) > 0 || len(c.Subcommands) > 0 {
			out = append(out, ".RS")
			for _, f := range shown {
				out = append(out, flagItem(f)...)
			}
			if len(c.Subcommands) > 0 {
				out = append(out, commands(p, visibleCommands(c.Subcommands), ph)...)
			}
			out = append(out, ".RE")
		}
	}
	return out
}
