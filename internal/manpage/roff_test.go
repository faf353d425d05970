package manpage

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestInline(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"use `--rule 443` here", `use \fB\%\-\-rule 443\fR here`},
		{"a *PLACEHOLDER* b", `a \fIPLACEHOLDER\fR b`},
		{"a *session id* b", `a \fIsession id\fR b`},
		{"not * italic * here", "not * italic * here"},
		{"`engine_drop_*` and `x`", `\fB\%engine_drop_*\fR and \fB\%x\fR`},
		{`back\slash`, `back\eslash`},
		{".starts with a dot", `\&.starts with a dot`},
		{"'starts with a quote", `\&'starts with a quote`},
		{"code `it's`", `code \fB\%it\(aqs\fR`},
		{"ctl\x01char", "ctlchar"},
		{"unclosed `code", "unclosed `code"},
		{"hyphen-in-text", "hyphen-in-text"},
	}
	for _, tt := range tests {
		if got := inline(tt.in); got != tt.want {
			t.Errorf("inline(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestToRoff(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", nil},
		{"one paragraph", "line one\nline two", []string{"line one", "line two"}},
		{"two paragraphs", "one\n\n\ntwo", []string{"one", ".PP", "two"}},
		{"verbatim", "intro\n\n  $ cmd -x\n  .dot", []string{"intro", ".PP", ".RS 4", ".nf", `$ cmd \-x`, `\&.dot`, ".fi", ".RE"}},
		{"bullets", "- one\n  more\n- two\n\nafter", []string{`.IP \(bu 2`, "one", "more", `.IP \(bu 2`, "two", ".PP", "after"}},
		{"definitions", ": `-f`\nskip it\n: *X*\nx", []string{".TP", `\fB\%\-f\fR`, "skip it", ".TP", `\fIX\fR`, "x"}},
		{"trailing spaces and CRLF", "a  \r\n\r\nb", []string{"a", ".PP", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, toRoff(tt.in)); diff != "" {
				t.Errorf("toRoff(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// requestRE matches the only requests toRoff may emit.
var requestRE = regexp.MustCompile(`^(\.PP|\.RS 4|\.nf|\.fi|\.RE|\.IP \\\(bu 2|\.TP)$`)

// escapeRE matches the escapes toRoff may emit.
var escapeRE = regexp.MustCompile(`\\(e|-|%|&|f[BIR]|\((aq|ga|ti|ha|bu))`)

// checkRoff reports lines of out that roff could misread.
func checkRoff(t *testing.T, in string, out []string) {
	t.Helper()
	for _, l := range out {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			if !requestRE.MatchString(l) {
				t.Fatalf("toRoff(%q): unexpected request line %q", in, l)
			}
			continue
		}
		if strings.ContainsAny(l, "\n\r\x00") {
			t.Fatalf("toRoff(%q): control character in line %q", in, l)
		}
		if rest := escapeRE.ReplaceAllString(l, ""); strings.Contains(rest, `\`) {
			t.Fatalf("toRoff(%q): stray backslash in line %q", in, l)
		}
	}
}

func FuzzToRoff(f *testing.F) {
	for _, s := range []string{"", "a", "- x\n- y", ": t\nd", "  verb\n  .x", "`code` *it*", `\n\f`, ".x\n'y", "*a `b* c`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkRoff(t, in, toRoff(in))
	})
}
