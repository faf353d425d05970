package manpage

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

// testApp has a flag of every kind the generators handle, commands,
// subcommands and aliases.
func testApp() *cli.App {
	return &cli.App{
		Name:  "demo",
		Usage: "a demonstration",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "queue", Aliases: []string{"p"}, Value: "7463", Usage: "`QUEUE` number"},
			&cli.StringFlag{Name: "address", Aliases: []string{"u"}, Usage: "where to connect"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Count: new(int), DisableDefaultText: true, Usage: "log more"},
			&cli.BoolFlag{Name: "resumption", Value: true, Usage: "resume sessions"},
			&cli.BoolFlag{Name: "quiet", Usage: "say less"},
			&cli.StringSliceFlag{Name: "rule", Usage: "cover a `SPEC`"},
			&cli.IntFlag{Name: "workers", DefaultText: "one per CPU", Usage: "`N` workers"},
			&cli.DurationFlag{Name: "interval", Value: time.Minute, Usage: "every `DURATION`"},
			&cli.StringFlag{Name: "config", Usage: "read `FILE`"},
			&cli.StringFlag{Name: "secret", Hidden: true, Usage: "hidden"},
		},
		Commands: []*cli.Command{
			{Name: "rules", Usage: "rule commands", Subcommands: []*cli.Command{
				{Name: "add", Aliases: []string{"a"}, Usage: "add a rule", ArgsUsage: "PORT [--mode MODE]",
					Flags: []cli.Flag{&cli.StringFlag{Name: "mode", Value: "opportunistic", Usage: "the mode"}}},
				{Name: "list", Usage: "list rules", Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}}},
			}},
			{Name: "status", Aliases: []string{"st"}, Usage: "show status", Description: "Shows it.\n.Dangerous line"},
			{Name: "secret-cmd", Hidden: true},
		},
	}
}

func testPage() Page {
	return Page{
		Section: "8", Date: "2026-01-02", Source: "demo", Manual: "Demo Manual",
		Description:  "Demo *does* `things`.",
		Sections:     []Section{{"Files", ": `/etc/demo`\nthe configuration"}},
		Placeholders: map[string]string{"address": "ADDRESS", "mode": "MODE"},
		FlagValues:   map[string][]string{"mode": {"opportunistic", "required"}},
	}
}

func render(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, testApp(), testPage()); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestRenderContent(t *testing.T) {
	out := render(t)
	for _, want := range []string{
		`.TH DEMO 8 2026-01-02 demo "Demo Manual"`,
		".SH NAME\ndemo \\- a demonstration\n",
		".SH SYNOPSIS",
		`\fB\%\-p\fR, \fB\%\-\-queue\fR \fIQUEUE\fR`,
		`QUEUE number. Default: \fB\%7463\fR.`,
		`\fB\%\-u\fR, \fB\%\-\-address\fR \fIADDRESS\fR`,
		"log more.\n",
		`resume sessions. Default: \fB\%true\fR.`,
		"say less.\n", // a false default is not shown
		`cover a SPEC. May be given more than once.`,
		`Default: \fB\%one per CPU\fR.`,
		`Default: \fB\%1m0s\fR.`,
		`\fB\%\-h\fR, \fB\%\-\-help\fR`,
		".SH GLOBAL OPTIONS",
		".SH COMMANDS",
		`\fB\%rules add\fR, \fB\%a\fR PORT [\-\-mode MODE]`,
		`the mode. Default: \fB\%opportunistic\fR.`,
		`\fB\%status\fR, \fB\%st\fR`,
		"\\&.Dangerous line\n",
		`\fB\%demo\fR [\fB\%\-p\fR \fIQUEUE\fR]`,
		".SH FILES\n",
		`Demo \fIdoes\fR \fB\%things\fR.`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"secret", "VALUE"} {
		if strings.Contains(out, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	// The synopsis names each leaf command once.
	if n := strings.Count(out, `\fB\%rules list\fR [\fB\%\-\-json\fR]`); n != 2 { // synopsis and COMMANDS
		t.Errorf("rules list appears %d times, want 2", n)
	}
}

func TestRenderIncomplete(t *testing.T) {
	p := testPage()
	p.Date = ""
	if err := Render(io.Discard, testApp(), p); !errors.Is(err, ErrIncomplete) {
		t.Errorf("no date: err = %v, want ErrIncomplete", err)
	}
	if err := Bash(io.Discard, &cli.App{}, p); !errors.Is(err, ErrIncomplete) {
		t.Errorf("no name: err = %v, want ErrIncomplete", err)
	}
}

// TestRenderGroff formats the page with groff and requires no warnings.
func TestRenderGroff(t *testing.T) {
	groff := testenv.LookPath(t, "groff", "apt-get install groff-base")
	pages := map[string]string{"demo": render(t)}
	for _, name := range []string{"tcpcryptd", "tcnetstat", "tcpcryptctl"} {
		b, err := os.ReadFile(filepath.Join("../../man/man8", name+".8"))
		if err != nil {
			t.Fatal(err)
		}
		pages[name] = string(b)
	}
	b, err := os.ReadFile("../../man/man1/tcpcryptdump.1")
	if err != nil {
		t.Fatal(err)
	}
	pages["tcpcryptdump"] = string(b)
	for name, page := range pages {
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = strings.NewReader(page)
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
		out, err := cmd.CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff on %s: %v\n%s", name, err, out)
		}
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	f := Files{Man: filepath.Join(dir, "man8", "demo.8"), Bash: filepath.Join(dir, "completion", "demo")}
	if err := Check(testApp, testPage(), f, false); !errors.Is(err, ErrStale) {
		t.Fatalf("missing files: err = %v, want ErrStale", err)
	}
	if err := Check(testApp, testPage(), f, true); err != nil {
		t.Fatalf("update: %v", err)
	}
	if err := Check(testApp, testPage(), f, false); err != nil {
		t.Fatalf("after update: %v", err)
	}
	// A new flag without regenerating must fail, naming the line.
	grown := func() *cli.App {
		a := testApp()
		a.Flags = append(a.Flags, &cli.BoolFlag{Name: "new-flag", Usage: "added later"})
		return a
	}
	err := Check(grown, testPage(), f, false)
	if !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "line ") {
		t.Fatalf("new flag: err = %v, want ErrStale with a line number", err)
	}
}

func TestAllFlagNames(t *testing.T) {
	got := strings.Join(AllFlagNames(testApp()), " ")
	for _, want := range []string{"-p", "--queue", "--mode", "--json", "-h", "--help"} {
		if !strings.Contains(" "+got+" ", " "+want+" ") {
			t.Errorf("AllFlagNames lacks %s: %s", want, got)
		}
	}
	if strings.Contains(got, "secret") {
		t.Errorf("AllFlagNames lists a hidden flag: %s", got)
	}
}

func TestCheckCompletion(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	var b bytes.Buffer
	if err := Bash(&b, testApp(), Page{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckCompletion(testApp(), full); err != nil {
		t.Errorf("rendered script: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("complete -F _x x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckCompletion(testApp(), empty); !errors.Is(err, ErrIncompleteCompletion) {
		t.Errorf("script without flags: %v, want ErrIncompleteCompletion", err)
	}
}
