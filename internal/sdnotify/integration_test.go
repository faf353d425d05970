package sdnotify

// TestIntegrationDaemonNotifies runs the real tcpcryptd binary in a fresh
// network namespace with $NOTIFY_SOCKET pointing at a fake manager, as
// systemd would with Type=notify. Root only; it skips otherwise.

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/internal/netns"
	"github.com/tcpcryptd/tcpcrypt/internal/syncbuf"

	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// daemonBinary builds cmd/tcpcryptd once per test binary run.
func daemonBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "sdnotify-bin-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "tcpcryptd"), "../../cmd/tcpcryptd").CombinedOutput()
		if err != nil {
			buildErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "tcpcryptd")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// waitFor reads notifications until one contains want, bounded by d.
func (m *fakeManager) waitFor(t *testing.T, want string, d time.Duration, log *syncbuf.Buffer) []string {
	t.Helper()
	var seen []string
	deadline := time.After(d)
	for {
		select {
		case s := <-m.msgs:
			seen = append(seen, s)
			if strings.Contains(s, want) {
				return seen
			}
		case <-deadline:
			t.Fatalf("no %s within %v; got %q\ndaemon log:\n%s", want, d, seen, log.String())
		}
	}
}

func TestIntegrationDaemonNotifies(t *testing.T) {
	ns := netns.NewForTest(t)
	testenv.LookPath(t, "ip", "apt-get install iproute2; needed for ip netns exec")
	bin := daemonBinary(t)
	dir := t.TempDir()
	// A path socket: abstract sockets belong to a network namespace and the
	// daemon runs in another one.
	m := listenFake(t, filepath.Join(dir, "notify"))

	cmd := exec.Command("ip", "netns", "exec", ns.Name(), bin, "-v", "-f",
		"-u", filepath.Join(dir, "ctl"), "--state", filepath.Join(dir, "rules.json"), "--workers", "1")
	cmd.Env = append(os.Environ(), SocketEnv+"="+m.addr, WatchdogUsecEnv+"=400000", WatchdogPIDEnv+"=")
	log := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	seen := m.waitFor(t, "READY=1", 30*time.Second, log)
	ready := seen[len(seen)-1]
	if !strings.Contains(ready, "STATUS=ready:") || !strings.Contains(ready, "start-up check skipped") {
		t.Errorf("READY message %q lacks the status summary", ready)
	}
	// The status above names the start-up check's result, so READY came after
	// the check. The "ready" log line is written just before READY=1, but it
	// reaches this test through a pipe and a copying goroutine, so it may
	// trail the datagram a little: wait for it, bounded.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(log.String(), "msg=ready") {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon never logged ready:\n%s", log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// WATCHDOG_USEC=400ms: a ping at least every 200ms.
	m.waitFor(t, "WATCHDOG=1", 5*time.Second, log)

	// ip netns exec execs the daemon, so the signal reaches it directly.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	m.waitFor(t, "STOPPING=1", 15*time.Second, log)
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("daemon exit after SIGTERM: %v\nlog:\n%s", waitErr, log.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("daemon still running 15s after SIGTERM\nlog:\n%s", log.String())
	}
	// Nothing is sent after the daemon has gone (the watchdog goroutine
	// stopped with it); drain and check the last message.
	var last string
	for len(m.msgs) > 0 {
		last = <-m.msgs
	}
	if strings.Contains(last, "READY=1") {
		t.Errorf("READY=1 after STOPPING=1")
	}
}
