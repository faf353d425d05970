package manpage

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// level is one command level for completion: "" for the program itself,
// "rules add" for a subcommand.
type level struct {
	path     string
	flags    []flagDoc
	commands []string // names and aliases of the subcommands
}

// levels walks app and its commands.
func levels(app *cli.App, ph map[string]string) []level {
	prepare(app)
	var out []level
	var walk func(path string, flags []flagDoc, cs []*cli.Command)
	walk = func(path string, flags []flagDoc, cs []*cli.Command) {
		l := level{path: path, flags: flags}
		vis := visibleCommands(cs)
		for _, c := range vis {
			l.commands = append(l.commands, c.Name)
			l.commands = append(l.commands, c.Aliases...)
		}
		out = append(out, l)
		for _, c := range vis {
			walk(strings.TrimSpace(path+" "+c.Name), commandFlags(c, ph), c.Subcommands)
		}
	}
	walk("", describeAll(app.Flags, ph), app.Commands)
	return out
}

// shellWord quotes s for bash when needed (our words are plain).
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:/@+=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// funcName is the completion function's name for a program.
func funcName(prog string) string {
	var b strings.Builder
	b.WriteString("_")
	for _, r := range prog {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Bash writes a bash completion script for app: command and subcommand
// names, every flag of each level, file names for file flags and the
// values of p.FlagValues. The script needs nothing but bash.
func Bash(w io.Writer, app *cli.App, p Page) error {
	if app.Name == "" {
		return fmt.Errorf("%w: the App has no Name", ErrIncomplete)
	}
	lv := levels(app, p.Placeholders)
	isFile := func(f flagDoc) bool {
		return f.placeholder == "FILE" || f.placeholder == "SOCKET" || slices.Contains(p.FileFlags, f.long())
	}
	fn := funcName(app.Name)
	bw := bufio.NewWriter(w)
	pr := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }

	pr("# bash completion for %s\n", app.Name)
	pr("# Generated from the command's urfave/cli definition by internal/manpage;\n")
	pr("# do not edit: change the flags or internal/manpage/pages.go and run \"make man\".\n\n")
	pr("%s()\n{\n", fn)
	pr("    local cur=\"${COMP_WORDS[COMP_CWORD]}\" path=\"\" w i skip=0 globals=()\n")
	pr("    COMPREPLY=()\n")
	pr("    # Find the command path and whether the word before the cursor is an\n")
	pr("    # option that wants a value.\n")
	pr("    for ((i = 1; i < COMP_CWORD; i++)); do\n")
	pr("        w=\"${COMP_WORDS[i]}\"\n")
	pr("        if ((skip)); then skip=0; [[ -z $path ]] && globals+=(\"$w\"); continue; fi\n")
	pr("        [[ -z $path && $w == -* ]] && globals+=(\"$w\")\n")
	pr("        case \"$path|$w\" in\n")
	for _, l := range lv {
		var vals []string
		for _, f := range l.flags {
			if f.placeholder == "" {
				continue
			}
			for _, n := range f.names {
				vals = append(vals, shellWord(l.path+"|"+dashed(n)))
			}
		}
		if len(vals) > 0 {
			pr("            %s) skip=1 ;;\n", strings.Join(vals, " | "))
		}
	}
	for _, l := range lv {
		if l.path == "" {
			continue
		}
		parent, name := "", l.path
		if i := strings.LastIndexByte(l.path, ' '); i >= 0 {
			parent, name = l.path[:i], l.path[i+1:]
		}
		pats := []string{shellWord(parent + "|" + name)}
		for _, a := range aliasesOf(app, l.path) {
			pats = append(pats, shellWord(parent+"|"+a))
		}
		pr("            %s) path=%s ;;\n", strings.Join(pats, " | "), shellWord(l.path))
	}
	pr("        esac\n")
	pr("    done\n")

	// Completing an option's value.
	pr("    if ((skip)); then\n")
	pr("        case \"$path|${COMP_WORDS[COMP_CWORD-1]}\" in\n")
	for _, l := range lv {
		for _, f := range l.flags {
			if f.placeholder == "" {
				continue
			}
			var pats []string
			for _, n := range f.names {
				pats = append(pats, shellWord(l.path+"|"+dashed(n)))
			}
			switch {
			case len(p.FlagValues[f.long()]) > 0:
				pr("            %s) COMPREPLY=($(compgen -W %s -- \"$cur\")) ;;\n", strings.Join(pats, " | "),
					shellWord(strings.Join(p.FlagValues[f.long()], " ")))
			case isFile(f):
				pr("            %s) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n", strings.Join(pats, " | "))
			}
		}
	}
	pr("        esac\n")
	pr("        return 0\n")
	pr("    fi\n")

	// Completing an option or a command name.
	pr("    local flags=\"\" commands=\"\"\n")
	pr("    case \"$path\" in\n")
	for _, l := range lv {
		var fl []string
		for _, f := range l.flags {
			for _, n := range f.names {
				fl = append(fl, dashed(n))
			}
		}
		pr("        %s) flags=%s; commands=%s ;;\n", shellWord(l.path),
			shellWord(strings.Join(fl, " ")), shellWord(strings.Join(l.commands, " ")))
	}
	pr("    esac\n")
	if len(p.ArgsFrom) > 0 {
		pr("    # Arguments the program lists itself.\n")
		pr("    if [[ $cur != -* ]]; then\n")
		pr("        case \"$path\" in\n")
		for _, path := range slices.Sorted(maps.Keys(p.ArgsFrom)) {
			pr("            %s) commands=\"$(\"${COMP_WORDS[0]}\" \"${globals[@]}\" %s 2>/dev/null)\" ;;\n",
				shellWord(path), p.ArgsFrom[path])
		}
		pr("        esac\n")
		pr("    fi\n")
	}
	pr("    if [[ $cur == -* || -z $commands ]]; then\n")
	pr("        COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n")
	pr("    else\n")
	pr("        COMPREPLY=($(compgen -W \"$commands\" -- \"$cur\"))\n")
	pr("    fi\n")
	pr("    return 0\n")
	pr("}\n")
	pr("complete -F %s %s\n", fn, app.Name)
	return bw.Flush()
}

// aliasesOf returns the aliases of the command at path.
func aliasesOf(app *cli.App, path string) []string {
	cs := app.Commands
	var found *cli.Command
	for name := range strings.FieldsSeq(path) {
		found = nil
		for _, c := range cs {
			if c.Name == name {
				found = c
				break
			}
		}
		if found == nil {
			return nil
		}
		cs = found.Subcommands
	}
	if found == nil {
		return nil
	}
	return found.Aliases
}
