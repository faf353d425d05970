package sdnotify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeManager is a notification socket like the one systemd passes in
// $NOTIFY_SOCKET: a unixgram listener whose datagrams arrive on msgs.
type fakeManager struct {
	addr string
	conn *net.UnixConn
	msgs chan string
}

// listenFake listens on addr (a path, or "@name" for an abstract socket)
// and closes the listener when t ends.
func listenFake(t *testing.T, addr string) *fakeManager {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	m := &fakeManager{addr: addr, conn: c, msgs: make(chan string, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			m.msgs <- string(buf[:n])
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return m
}

// next waits (bounded) for one datagram.
func (m *fakeManager) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-m.msgs:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no notification within 5s")
		return ""
	}
}

func pathSocket(t *testing.T) string {
	return filepath.Join(t.TempDir(), "notify")
}

func abstractSocket(t *testing.T) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "@tcpcrypt-sdnotify-test-" + hex.EncodeToString(b[:])
}

func TestMessages(t *testing.T) {
	tests := []struct {
		name string
		send func() error
		want string
	}{
		{"ready", func() error { return Ready("") }, "READY=1\n"},
		{"ready with status", func() error { return Ready("ready: 2 rules") }, "READY=1\nSTATUS=ready: 2 rules\n"},
		{"stopping", func() error { return Stopping("") }, "STOPPING=1\n"},
		{"stopping with status", func() error { return Stopping("bye") }, "STOPPING=1\nSTATUS=bye\n"},
		{"status", func() error { return Status("checking") }, "STATUS=checking\n"},
		{"status is one line", func() error { return Status("a\nb\t c") }, "STATUS=a b c\n"},
		{"watchdog", Watchdog, "WATCHDOG=1\n"},
		{"send several", func() error { return Send("RELOADING=1", "MONOTONIC_USEC=5") }, "RELOADING=1\nMONOTONIC_USEC=5\n"},
	}
	for _, kind := range []struct {
		name string
		addr func(*testing.T) string
	}{{"path", pathSocket}, {"abstract", abstractSocket}} {
		for _, tt := range tests {
			t.Run(kind.name+"/"+tt.name, func(t *testing.T) {
				m := listenFake(t, kind.addr(t))
				t.Setenv(SocketEnv, m.addr)
				if err := tt.send(); err != nil {
					t.Fatalf("send: %v", err)
				}
				if got := m.next(t); got != tt.want {
					t.Errorf("got %q, want %q", got, tt.want)
				}
			})
		}
	}
}

func TestUnsetIsNoOp(t *testing.T) {
	t.Setenv(SocketEnv, "")
	for name, f := range map[string]func() error{
		"ready": func() error { return Ready("x") }, "stopping": func() error { return Stopping("") },
		"status": func() error { return Status("x") }, "watchdog": Watchdog,
	} {
		if err := f(); err != nil {
			t.Errorf("%s without NOTIFY_SOCKET: %v", name, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := KeepAlive(ctx, time.Second, nil); err != nil {
		t.Errorf("KeepAlive without NOTIFY_SOCKET: %v, want nil at once", err)
	}
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name, addr string
		lines      []string
		sentinel   error
	}{
		{"relative path", "run/notify", []string{"READY=1"}, ErrBadSocket},
		{"vsock", "vsock:2:1234", []string{"READY=1"}, ErrBadSocket},
		{"nobody listening", filepath.Join(t.TempDir(), "absent"), []string{"READY=1"}, nil},
		{"newline in message", "/nonexistent", []string{"STATUS=a\nb"}, nil},
		{"no equals sign", "/nonexistent", []string{"READY"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := SendTo(tt.addr, tt.lines...)
			if err == nil {
				t.Fatal("want an error")
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("err = %v, want %v", err, tt.sentinel)
			}
		})
	}
}

func TestWatchdogInterval(t *testing.T) {
	tests := []struct {
		usec, pid string
		want      time.Duration
		wantErr   bool
	}{
		{"", "", 0, false},
		{"30000000", "", 30 * time.Second, false},
		{"30000000", "4242", 30 * time.Second, false}, // our pid
		{"30000000", "1", 0, false},                   // someone else's watchdog
		{"1", "", time.Microsecond, false},
		{"0", "", 0, true},
		{"-5", "", 0, true},
		{"abc", "", 0, true},
		{"99999999999999999999", "", 0, true},
		{"30000000", "x", 0, true},
		{"30000000", "0", 0, true},
	}
	for _, tt := range tests {
		got, err := watchdogInterval(tt.usec, tt.pid, 4242)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("watchdogInterval(%q, %q) = %v, %v; want %v, error %v", tt.usec, tt.pid, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrBadWatchdog) {
			t.Errorf("watchdogInterval(%q, %q): error %v does not wrap ErrBadWatchdog", tt.usec, tt.pid, err)
		}
	}
}

func TestKeepAlivePingsUntilCancelled(t *testing.T) {
	m := listenFake(t, pathSocket(t))
	t.Setenv(SocketEnv, m.addr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- KeepAlive(ctx, 40*time.Millisecond, func(err error) { t.Errorf("ping: %v", err) }) }()
	for range 3 {
		if got := m.next(t); got != "WATCHDOG=1\n" {
			t.Fatalf("got %q, want WATCHDOG=1", got)
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("KeepAlive returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("KeepAlive did not stop within 5s of cancel")
	}
}

func TestKeepAliveReportsFailures(t *testing.T) {
	t.Setenv(SocketEnv, filepath.Join(t.TempDir(), "gone"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs := make(chan error, 1)
	go func() {
		// The callback only reports; the test cancels once it has the error,
		// so the select below never sees a cancelled context first.
		_ = KeepAlive(ctx, 20*time.Millisecond, func(err error) {
			select {
			case errs <- err:
			default:
			}
		})
	}()
	select {
	case err := <-errs:
		cancel()
		if err == nil || !strings.Contains(err.Error(), "gone") {
			t.Errorf("onErr got %v, want a send error naming the socket", err)
		}
	case <-ctx.Done():
		t.Fatal("onErr was not called within 5s")
	}
}

func TestStartWatchdog(t *testing.T) {
	m := listenFake(t, pathSocket(t))
	t.Setenv(SocketEnv, m.addr)
	t.Setenv(WatchdogPIDEnv, "")

	t.Setenv(WatchdogUsecEnv, "garbage")
	stop, err := StartWatchdog(nil)
	if !errors.Is(err, ErrBadWatchdog) || stop == nil {
		t.Fatalf("bad WATCHDOG_USEC: stop %v, err %v", stop != nil, err)
	}
	stop()

	t.Setenv(WatchdogUsecEnv, "60000") // 60 ms: pings every 30 ms
	stop, err = StartWatchdog(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.next(t); got != "WATCHDOG=1\n" {
		t.Errorf("got %q, want WATCHDOG=1", got)
	}
	stop()
	stop() // idempotent
	// Drain, then make sure nothing more arrives.
	for len(m.msgs) > 0 {
		<-m.msgs
	}
	select {
	case s := <-m.msgs:
		t.Errorf("ping %q after stop", s)
	case <-time.After(150 * time.Millisecond):
	}
}
