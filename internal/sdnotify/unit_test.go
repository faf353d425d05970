package sdnotify

// Checks of scripts/tcpcryptd.service with systemd's own tools.
//
// systemd-analyze is required where the unit matters: when it is missing the
// test FAILS as root (CI runs as root on Debian 12, where the systemd
// package provides it) and skips for other users, whose machines may lack
// systemd. docs/operations.md says the same.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

const (
	unitPath = "../../scripts/tcpcryptd.service"
	opsDoc   = "../../docs/operations.md"
)

// systemdAnalyze returns the path of systemd-analyze, or ends the test.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err == nil {
		return p
	}
	if os.Geteuid() == 0 {
		t.Fatal("systemd-analyze not found: install systemd (apt-get install systemd) to check scripts/tcpcryptd.service")
	}
	testenv.Skip(t, "systemd-analyze not found (install systemd); this check is required as root")
	return ""
}

// testUnit copies the unit into a temporary directory with ExecStart
// pointing at a freshly built daemon, since /usr/sbin/tcpcryptd need not
// exist here.
func testUnit(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	const from = "ExecStart=/usr/sbin/tcpcryptd "
	if !strings.Contains(string(b), "\n"+from) {
		t.Fatalf("%s: no line starting with %q", unitPath, from)
	}
	s := strings.Replace(string(b), "\n"+from, "\nExecStart="+daemonBinary(t)+" ", 1)
	p := filepath.Join(t.TempDir(), "tcpcryptd.service")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUnitVerifies(t *testing.T) {
	sa := systemdAnalyze(t)
	unit := testUnit(t)
	args := []string{"verify"}
	env := os.Environ()
	if _, err := exec.LookPath("man"); err == nil {
		// Documentation=man:... is checked against the generated pages.
		abs, err := filepath.Abs("../../man")
		if err != nil {
			t.Fatal(err)
		}
		env = append(env, "MANPATH="+abs)
	} else {
		args = append(args, "--man=no")
	}
	cmd := exec.Command(sa, append(args, unit)...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestUnitSettings(t *testing.T) {
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	// Lines the brief and docs/operations.md rely on; a change here should
	// be a decision, not an accident.
	for _, want := range []string{
		"Type=notify", "NotifyAccess=main", "WatchdogSec=30", "Restart=on-failure",
		"RuntimeDirectory=tcpcrypt", "RuntimeDirectoryMode=0755", "StateDirectory=tcpcrypt",
		"--state /var/lib/tcpcrypt/rules.json", "--control /run/tcpcrypt/ctl",
		"CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW", "NoNewPrivileges=yes",
		"ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "ProtectKernelTunables=yes",
		"ProtectKernelModules=yes", "ProtectControlGroups=yes",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK", "RestrictNamespaces=yes",
		"LockPersonality=yes", "MemoryDenyWriteExecute=yes", "RestrictRealtime=yes",
		"SystemCallArchitectures=native", "SystemCallFilter=@system-service",
		"ExecStopPost=-", "nft delete table inet tcpcrypt",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q", unitPath, want)
		}
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9]+\.[0-9])`)

// TestUnitExposureDocumented runs systemd-analyze security on the unit and
// requires docs/operations.md to state the same score, so the document
// follows every hardening change.
func TestUnitExposureDocumented(t *testing.T) {
	sa := systemdAnalyze(t)
	unit := testUnit(t)
	out, err := exec.Command(sa, "security", "--offline=true", "--no-pager", unit).CombinedOutput()
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security --offline=true: %v\n%s", err, out)
	}
	score := string(m[1])
	doc, err := os.ReadFile(opsDoc)
	if err != nil {
		t.Fatal(err)
	}
	want := "exposure level: **" + score + "**"
	if !strings.Contains(string(doc), want) {
		t.Errorf("%s does not record the unit's exposure score; want the text %q (systemd-analyze says %s)", opsDoc, want, score)
	}
}
