package netns

import (
	"errors"
	"os"
	"testing"
)

// RequireRoot skips t unless the process runs with effective uid 0.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (network namespaces and nftables); run as root, e.g. go test -exec sudo")
	}
}

// NewForTest creates a fresh namespace for t and removes it in t.Cleanup, even
// when the test fails. It skips t when not running as root, or when the kernel
// refuses namespace creation for lack of privilege (e.g. inside an unprivileged
// container); any other failure fails the test.
func NewForTest(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	n, err := New("tcpcrypt-test-")
	if errors.Is(err, ErrPrivilege) {
		t.Skipf("skipping: cannot create a network namespace: %v", err)
	}
	if err != nil {
		t.Fatalf("netns.New: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("netns cleanup: %v", err)
		}
	})
	return n
}
