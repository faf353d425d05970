// Package testenv is the one place where tests decide that their environment
// cannot run them: not root, no network namespaces, a missing tool. Such a
// test normally skips with a message, so that `go test ./...` works for any
// user. With TCPCRYPT_REQUIRE_ROOT_TESTS=1 in the environment (CI sets it)
// every such skip is a failure instead, so a run that silently left out the
// root tests cannot pass.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireEnv is the environment variable that turns environment skips into
// failures when set to "1".
const RequireEnv = "TCPCRYPT_REQUIRE_ROOT_TESTS"

// Required reports whether RequireEnv is set to "1".
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// Skip ends t because its environment cannot run it: it skips with the
// message, or, when Required, fails with it.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("%s (%s=1: environment skips are failures)", msg, RequireEnv)
	}
	t.Skip("skipping: " + msg)
}

// RequireRoot ends t (see Skip) unless the process runs with effective uid
// 0; why says what the test needs root for.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root (%s); run as root, e.g. go test -exec sudo", why)
	}
}

// LookPath returns the path of the command tool, or ends t (see Skip) when it
// is not installed; hint says how to install it.
func LookPath(t testing.TB, tool, hint string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		Skip(t, "%s not installed (%s): %v", tool, hint, err)
	}
	return p
}

// SelfCopy copies the running test binary into dir, executable by every
// user, and returns the copy's path: the binary itself lives in a build
// directory only its owner may enter, so a test that runs it as another
// user (with SysProcAttr.Credential) runs the copy. dir must be one that
// user can enter.
func SelfCopy(t testing.TB, dir string) string {
	t.Helper()
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(os.Args[0]))
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}
