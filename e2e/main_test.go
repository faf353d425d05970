package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

// Binaries built once per test run by TestMain.
var (
	binDir   string
	buildErr = map[string]error{} // binary name -> why it could not be built
)

// programs are the binaries the tests run, by name.
var programs = map[string]string{
	"tcpcryptd":    "./cmd/tcpcryptd",
	"tcnetstat":    "./cmd/tcnetstat",
	"tcpcryptctl":  "./cmd/tcpcryptctl",
	"tcpcryptdump": "./cmd/tcpcryptdump",
	"xfer":         "./e2e/cmd/xfer",
	"chaosbox":     "./internal/cmd/chaosbox",
	"bindpeer":     "./e2e/cmd/bindpeer",
}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		// Every test skips itself; nothing to build.
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "tcpcrypt-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	buildAll()
	return m.Run()
}

// buildAll builds every program into binDir, recording failures: a test
// that needs a missing binary fails with the build error.
func buildAll() {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go" // where the official tarball installs it
	}
	root, err := filepath.Abs("..")
	if err != nil {
		for name := range programs {
			buildErr[name] = err
		}
		return
	}
	start := time.Now()
	for name, pkg := range programs {
		cmd := exec.Command(goBin, "build", "-o", filepath.Join(binDir, name), pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr[name] = fmt.Errorf("go build %s: %w\n%s", pkg, err, strings.TrimSpace(string(out)))
		}
	}
	fmt.Fprintf(os.Stderr, "e2e: built %d programs in %v\n", len(programs)-len(buildErr), time.Since(start).Round(time.Millisecond))
}

// bin returns the path of a built program, failing t when it could not be
// built (never skipping: a daemon that does not build is a failure).
func bin(t testing.TB, name string) string {
	t.Helper()
	if err := buildErr[name]; err != nil {
		t.Fatalf("%s is not available: %v", name, err)
	}
	return filepath.Join(binDir, name)
}

// requireRoot skips t unless it runs as root, and fails it when the tools
// the tests need are missing.
func requireRoot(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t, "end-to-end tests: network namespaces, nftables, NFQUEUE")
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the %s command is missing (Debian: apt-get install iproute2 nftables): %v", tool, err)
		}
	}
}
