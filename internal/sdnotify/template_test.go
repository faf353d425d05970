package sdnotify

// Checks of scripts/tcpcryptd@.service, the per-namespace template unit.

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/internal/cliutil"
)

const templatePath = "../../scripts/tcpcryptd@.service"

// unitLines parses a unit file into section -> key -> values (in order),
// ignoring comments and blank lines.
func unitLines(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTemplateUnitSettings: the template runs in /run/netns/%i with its own
// configuration, state file and control socket (the one tcpcryptctl -n
// dials), and is otherwise the same unit as tcpcryptd.service.
func TestTemplateUnitSettings(t *testing.T) {
	base, tmpl := unitLines(t, unitPath), unitLines(t, templatePath)
	ctlPath, err := cliutil.NetnsAddress("%i")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"NetworkNamespacePath": "/run/netns/%i",
		"ExecStart":            "/usr/sbin/tcpcryptd --config /etc/tcpcrypt/%i.conf --state /var/lib/tcpcrypt/%i/rules.json --control " + ctlPath,
		"RuntimeDirectory":     "tcpcrypt/%i",
		"StateDirectory":       "tcpcrypt/%i",
	}
	for k, v := range want {
		if got := tmpl["Service"][k]; len(got) != 1 || got[0] != v {
			t.Errorf("template [Service] %s = %q, want %q", k, got, v)
		}
	}
	if got := strings.Join(tmpl["Unit"]["AssertPathExists"], " "); got != "/run/netns/%i /etc/tcpcrypt/%i.conf" {
		t.Errorf("template AssertPathExists = %q", got)
	}
	// The base unit keeps /run/tcpcrypt on stop, or stopping it would delete
	// the instances' sockets.
	if got := base["Service"]["RuntimeDirectoryPreserve"]; len(got) != 1 || got[0] != "yes" {
		t.Errorf("tcpcryptd.service RuntimeDirectoryPreserve = %q, want yes", got)
	}
	// Every other setting is the same in both units.
	for _, sec := range []string{"Unit", "Service", "Install"} {
		keys := map[string]bool{}
		for k := range base[sec] {
			keys[k] = true
		}
		for k := range tmpl[sec] {
			keys[k] = true
		}
		for k := range keys {
			if _, differs := want[k]; differs && sec == "Service" {
				continue
			}
			switch sec + "." + k {
			case "Unit.Description", "Unit.AssertPathExists", "Service.RuntimeDirectoryPreserve":
				continue
			}
			if b, tm := strings.Join(base[sec][k], "\n"), strings.Join(tmpl[sec][k], "\n"); b != tm {
				t.Errorf("[%s] %s: tcpcryptd.service %q, tcpcryptd@.service %q", sec, k, b, tm)
			}
		}
	}
}

// TestTemplateUnitVerifies runs systemd-analyze verify on an instance of the
// template (with the daemon freshly built).
func TestTemplateUnitVerifies(t *testing.T) {
	sa := systemdAnalyze(t)
	b, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "\nExecStart=/usr/sbin/tcpcryptd ", "\nExecStart="+daemonBinary(t)+" ", 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tcpcryptd@.service"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	// verify loads an instance through a link named after it.
	inst := filepath.Join(dir, "tcpcryptd@blue.service")
	if err := os.Symlink("tcpcryptd@.service", inst); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sa, "verify", "--man=no", inst)
	out, err := cmd.CombinedOutput()
	// The namespace and config file need not exist here: an unmet
	// Assert is not a verify error, so any output is a real complaint.
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
