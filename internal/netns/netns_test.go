package netns

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

// selfNS is the inode of the calling thread's network namespace; callers must
// hold the thread (inside Do, or after LockOSThread).
func selfNS(t *testing.T) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestNewDoClose(t *testing.T) {
	RequireRoot(t)
	n, err := New("tcpcrypt-nstest-")
	if errors.Is(err, ErrPrivilege) {
		testenv.Skip(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if !strings.HasPrefix(n.Name(), "tcpcrypt-nstest-") || n.Path() != RunDir+"/"+n.Name() {
		t.Errorf("name %q path %q", n.Name(), n.Path())
	}
	var hostIno uint64
	onThread(func() { hostIno = selfNS(t) })

	var inside uint64
	var loUp bool
	if err := n.Do(func() error {
		inside = selfNS(t)
		ifc, err := net.InterfaceByName("lo")
		if err != nil {
			return err
		}
		loUp = ifc.Flags&net.FlagUp != 0
		ifs, err := net.Interfaces()
		if len(ifs) != 1 {
			t.Errorf("fresh namespace has interfaces %v", ifs)
		}
		return err
	}); err != nil {
		t.Fatalf("Do: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(n.Fd(), &st); err != nil {
		t.Fatal(err)
	}
	if inside == hostIno || inside != st.Ino {
		t.Errorf("inside Do: ns inode %d, host %d, namespace %d", inside, hostIno, st.Ino)
	}
	if !loUp {
		t.Error("loopback is down in the new namespace")
	}
	// Errors from fn come back; the thread is restored afterwards.
	sentinel := errors.New("boom")
	if err := n.Do(func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Do error = %v", err)
	}
	var after uint64
	onThread(func() { after = selfNS(t) })
	if after != hostIno {
		t.Errorf("namespace not restored: %d, want %d", after, hostIno)
	}

	// iproute2 sees it.
	if out, err := exec.Command("ip", "netns", "exec", n.Name(), "true").CombinedOutput(); err != nil {
		t.Errorf("ip netns exec: %v: %s", err, out)
	}

	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(n.Path()); !os.IsNotExist(err) {
		t.Errorf("mount point still there: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := n.Do(func() error { return nil }); err == nil {
		t.Error("Do on a closed namespace succeeded")
	}
}

func TestNewForTestCleanup(t *testing.T) {
	var path string
	t.Run("inner", func(t *testing.T) {
		n := NewForTest(t)
		path = n.Path()
	})
	if path == "" {
		t.Skip("inner test skipped")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("namespace %s not removed by t.Cleanup: %v", path, err)
	}
}

// onThread runs fn with the goroutine locked to its thread.
func onThread(fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fn()
}
