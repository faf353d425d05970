package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// repo is the daemon's module, one level up.
const repo = ".."

// image is what the real build produces: the context scripts/build-image.sh
// lays out, the package in it unpacked, and what the packaged daemon says
// about itself.
type image struct {
	context      string // the build context (Containerfile, tcpcryptd.deb)
	root         string // the package's files, unpacked
	instructions []Instruction
	help         []byte // the packaged tcpcryptd -h
	daemon       Daemon
}

var (
	imageOnce sync.Once
	imageVal  *image
	imageErr  string
	imageDir  string
)

// TestMain removes the shared build directory at the end.
func TestMain(m *testing.M) {
	code := m.Run()
	if imageDir != "" {
		os.RemoveAll(imageDir)
	}
	os.Exit(code)
}

// builtImage builds the image context once per test binary with the
// project's own scripts (scripts/build-image.sh --context-only, which runs
// scripts/build-deb.sh) and gathers the facts the manifests are checked
// against. It fails the test when the build cannot run.
func builtImage(t *testing.T) *image {
	t.Helper()
	imageOnce.Do(func() {
		var err error
		imageDir, err = os.MkdirTemp("", "tcpcrypt-deploy-test-")
		if err != nil {
			imageErr = err.Error()
			return
		}
		imageVal, imageErr = buildImage(imageDir)
	})
	if imageErr != "" {
		t.Fatalf("building the image context: %s", imageErr)
	}
	return imageVal
}

func buildImage(dir string) (*image, string) {
	for _, tool := range []string{"dpkg-deb", "dpkg", "make", "gcc", "ar", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, tool + " is required (scripts/setup.sh installs it)"
		}
	}
	im := &image{context: filepath.Join(dir, "context"), root: filepath.Join(dir, "root")}
	cmd := exec.Command(filepath.Join(repo, "scripts", "build-image.sh"), "--context-only", "--context", im.context)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, "scripts/build-image.sh --context-only: " + err.Error() + "\n" + lastLines(string(out), 30)
	}
	b, err := os.ReadFile(filepath.Join(im.context, "Containerfile"))
	if err != nil {
		return nil, err.Error()
	}
	if im.instructions, err = ParseContainerfile(b); err != nil {
		return nil, err.Error()
	}
	deb := filepath.Join(im.context, "tcpcryptd.deb")
	if out, err := exec.Command("dpkg-deb", "-x", deb, im.root).CombinedOutput(); err != nil {
		return nil, "dpkg-deb -x: " + err.Error() + ": " + string(out)
	}
	eps := Find(im.instructions, "ENTRYPOINT")
	if len(eps) != 1 || len(eps[0].JSON) == 0 {
		return nil, "the Containerfile has no single exec-form ENTRYPOINT"
	}
	im.daemon.Entrypoint = eps[0].JSON
	// The packaged binary, not one built for the test.
	help, err := exec.Command(filepath.Join(im.root, im.daemon.Entrypoint[0]), "-h").CombinedOutput()
	if err != nil {
		return nil, im.daemon.Entrypoint[0] + " -h: " + err.Error() + ": " + string(help)
	}
	im.help = help
	if im.daemon.Flags, err = ParseHelp(help); err != nil {
		return nil, err.Error()
	}
	m := regexp.MustCompile(`--memory-limit .*\(default: ([^)\s]+)\)`).FindSubmatch(help)
	if m == nil {
		return nil, "tcpcryptd -h gives no default for --memory-limit"
	}
	im.daemon.DefaultMemoryLimit = string(m[1])
	consts := map[string]*string{
		"internal/metrics.ReadyPath": &im.daemon.ReadyPath,
		"internal/metrics.LivePath":  &im.daemon.LivePath,
		"internal/metrics.Path":      &im.daemon.MetricsPath,
		"ctl.DefaultAddress":         &im.daemon.DefaultControl,
	}
	for name, dst := range consts {
		pkg, ident, _ := strings.Cut(name, ".")
		v, err := stringConst(filepath.Join(repo, pkg), ident)
		if err != nil {
			return nil, err.Error()
		}
		*dst = v
	}
	return im, ""
}

// stringConst returns the value of the string constant name declared in the
// Go package in dir (the daemon's source, read, not imported: this module
// must not depend on the daemon's).
func stringConst(dir, name string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return "", err
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			return "", err
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if id.Name != name || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						return "", &constError{dir, name}
					}
					return strconv.Unquote(lit.Value)
				}
			}
		}
	}
	return "", &constError{dir, name}
}

type constError struct{ dir, name string }

func (e *constError) Error() string {
	return "no string constant " + e.name + " in " + e.dir
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// unitExecStart returns the arguments of ExecStart= in the systemd unit.
func unitExecStart(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "scripts", "tcpcryptd.service"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart="); ok {
			if out != nil {
				t.Fatal("the unit has more than one ExecStart=")
			}
			out = strings.Fields(v)
		}
	}
	if out == nil {
		t.Fatal("the unit has no ExecStart=")
	}
	return out
}
