package manpage

import (
	"regexp"
	"strings"
)

// Markup is the small text format of the hand-written parts of a page
// (Page.Description, Section.Body). Blocks are separated by blank lines:
//
//   - a block whose lines all start with two spaces is shown verbatim
//     (examples, file formats);
//   - a block whose first line starts with "- " is a bullet list; every "- "
//     line starts an item, other lines continue it;
//   - a block whose first line starts with ": " is a definition list; every
//     ": TERM" line starts an entry, the lines after it describe it;
//   - any other block is a paragraph.
//
// Inside text, `code` is set in bold (command names, options, file names)
// and *words* in italics (placeholders, terms); an italic span starts with
// a letter and does not end in a space. Everything else is literal: roff's
// special characters are escaped.

var (
	codeRE   = regexp.MustCompile("`([^`]+)`")
	italicRE = regexp.MustCompile(`\*([A-Za-z](?:[^*\n]*[^*\s])?)\*`)
)

// escape makes s safe as roff text inside a line: backslashes are escaped
// and control characters dropped. In code (options, commands, examples)
// the minus sign and the ASCII quotes are also kept from being turned into
// hyphens or typographic quotes.
func escape(s string, code bool) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r < ' ' && r != '\t', r == 0x7f:
			// control characters have no place in a page
		case code && r == '-':
			b.WriteString(`\-`)
		case code && r == '\'':
			b.WriteString(`\(aq`)
		case code && r == '`':
			b.WriteString(`\(ga`)
		case code && r == '~':
			b.WriteString(`\(ti`)
		case code && r == '^':
			b.WriteString(`\(ha`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// protect keeps roff from taking a line that starts with a dot or an
// apostrophe for a request.
func protect(line string) string {
	if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
		return `\&` + line
	}
	return line
}

// textLine escapes a verbatim line.
func textLine(s string) string {
	return protect(escape(s, true))
}

// inline converts a line of markup text to roff: `code` in bold, *word* in
// italics, the rest escaped.
func inline(s string) string {
	var b strings.Builder
	for s != "" {
		loc := codeRE.FindStringSubmatchIndex(s)
		iloc := italicRE.FindStringSubmatchIndex(s)
		if iloc != nil && (loc == nil || iloc[0] < loc[0]) {
			loc = iloc
		}
		if loc == nil {
			b.WriteString(escape(s, false))
			break
		}
		b.WriteString(escape(s[:loc[0]], false))
		if s[loc[0]] == '*' {
			b.WriteString(`\fI` + escape(s[loc[2]:loc[3]], false) + `\fR`)
		} else {
			// \% keeps code from being hyphenated.
			b.WriteString(`\fB\%` + escape(s[loc[2]:loc[3]], true) + `\fR`)
		}
		s = s[loc[1]:]
	}
	return protect(b.String())
}

// blocks splits markup into blocks of lines separated by blank lines;
// trailing spaces and tabs are dropped.
func blocks(text string) [][]string {
	var out [][]string
	var cur []string
	for line := range strings.SplitSeq(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		line = strings.TrimRight(line, " \t")
		if line == "" {
			if cur != nil {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, line)
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out
}

// toRoff converts markup to roff lines. The first block needs no paragraph
// break when it directly follows a section heading.
func toRoff(text string) []string {
	var out []string
	for i, blk := range blocks(text) {
		verbatim := true
		for _, l := range blk {
			verbatim = verbatim && strings.HasPrefix(l, "  ")
		}
		switch {
		case verbatim:
			out = append(out, ".PP", ".RS 4", ".nf")
			for _, l := range blk {
				out = append(out, textLine(strings.TrimPrefix(l, "  ")))
			}
			out = append(out, ".fi", ".RE")
		case strings.HasPrefix(blk[0], "- "):
			for _, l := range blk {
				if rest, ok := strings.CutPrefix(l, "- "); ok {
					out = append(out, `.IP \(bu 2`, inline(strings.TrimSpace(rest)))
				} else {
					out = append(out, inline(strings.TrimSpace(l)))
				}
			}
			out = append(out, ".PP")
		case strings.HasPrefix(blk[0], ": "):
			for _, l := range blk {
				if term, ok := strings.CutPrefix(l, ": "); ok {
					out = append(out, ".TP", inline(strings.TrimSpace(term)))
				} else {
					out = append(out, inline(strings.TrimSpace(l)))
				}
			}
			out = append(out, ".PP")
		default:
			if i > 0 && (len(out) == 0 || out[len(out)-1] != ".PP") {
				out = append(out, ".PP")
			}
			for _, l := range blk {
				out = append(out, inline(strings.TrimSpace(l)))
			}
		}
	}
	// A trailing paragraph break is noise before the next heading.
	for len(out) > 0 && out[len(out)-1] == ".PP" {
		out = out[:len(out)-1]
	}
	// Drop a paragraph break that directly follows another.
	clean := out[:0]
	for _, l := range out {
		if l == ".PP" && len(clean) > 0 && clean[len(clean)-1] == ".PP" {
			continue
		}
		clean = append(clean, l)
	}
	return clean
}
