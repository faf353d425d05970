package netns

import (
	"errors"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

// RequireRoot skips t unless the process runs with effective uid 0 (a failure
// instead with TCPCRYPT_REQUIRE_ROOT_TESTS=1; see internal/testenv).
func RequireRoot(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t, "network namespaces and nftables")
}

// NewForTest creates a fresh namespace for t and removes it in t.Cleanup, even
// when the test fails. It skips t when not running as root, or when the kernel
// refuses namespace creation for lack of privilege (e.g. inside an unprivileged
// container); with TCPCRYPT_REQUIRE_ROOT_TESTS=1 those skips are failures. Any
// other failure fails the test.
func NewForTest(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	n, err := New("tcpcrypt-test-")
	if errors.Is(err, ErrPrivilege) {
		testenv.Skip(t, "cannot create a network namespace: %v", err)
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
