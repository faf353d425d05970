// Package sdnotify speaks the service manager's readiness protocol
// (sd_notify(3)) without a dependency: a service started with Type=notify
// finds a datagram socket in $NOTIFY_SOCKET and reports its state there as
// newline-separated KEY=VALUE lines (READY=1, STOPPING=1, STATUS=...,
// WATCHDOG=1).
//
// Every function is a no-op that returns nil when $NOTIFY_SOCKET is unset,
// so a daemon calls them unconditionally. The socket may be a path or an
// abstract socket written with a leading '@'. Abstract sockets belong to a
// network namespace: a service that runs in another namespace than its
// manager needs a path socket.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Environment variables set by the service manager.
const (
	// SocketEnv names the notification socket.
	SocketEnv = "NOTIFY_SOCKET"
	// WatchdogUsecEnv is the watchdog timeout in microseconds.
	WatchdogUsecEnv = "WATCHDOG_USEC"
	// WatchdogPIDEnv, when set, is the process the watchdog settings are
	// meant for.
	WatchdogPIDEnv = "WATCHDOG_PID"
)

// Messages understood by the service manager.
const (
	ready    = "READY=1"
	stopping = "STOPPING=1"
	watchdog = "WATCHDOG=1"
)

// ErrBadSocket reports a $NOTIFY_SOCKET value that is neither an absolute
// path nor an abstract ('@') socket name.
var ErrBadSocket = errors.New("sdnotify: unsupported NOTIFY_SOCKET address")

// ErrBadWatchdog reports a malformed $WATCHDOG_USEC or $WATCHDOG_PID.
var ErrBadWatchdog = errors.New("sdnotify: bad watchdog setting")

// sendTimeout bounds one datagram send: a manager that stops reading must
// not block the daemon.
const sendTimeout = 2 * time.Second

// Send sends lines (KEY=VALUE each, without newlines of their own) as one
// datagram to the socket named by $NOTIFY_SOCKET. It returns nil without
// doing anything when the variable is unset or empty.
func Send(lines ...string) error {
	return SendTo(os.Getenv(SocketEnv), lines...)
}

// SendTo is Send with the socket address given explicitly ("" is a no-op).
func SendTo(addr string, lines ...string) error {
	if addr == "" || len(lines) == 0 {
		return nil
	}
	if addr[0] != '/' && addr[0] != '@' {
		return fmt.Errorf("%w: %q (want an absolute path or @name)", ErrBadSocket, addr)
	}
	for _, l := range lines {
		if strings.ContainsRune(l, '\n') || !strings.Contains(l, "=") {
			return fmt.Errorf("sdnotify: malformed message %q: want one KEY=VALUE line", l)
		}
	}
	// The '@' prefix makes the runtime use the abstract namespace (a leading
	// NUL byte in sun_path).
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	if err := c.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	if _, err := c.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		return fmt.Errorf("sdnotify: send to %s: %w", addr, err)
	}
	return nil
}

// Ready tells the manager that start-up has finished (READY=1), with an
// optional status line.
func Ready(status string) error {
	if status == "" {
		return Send(ready)
	}
	return Send(ready, "STATUS="+oneLine(status))
}

// Stopping tells the manager that the service is shutting down (STOPPING=1),
// with an optional status line.
func Stopping(status string) error {
	if status == "" {
		return Send(stopping)
	}
	return Send(stopping, "STATUS="+oneLine(status))
}

// Status sets the free-form status line that `systemctl status` shows.
func Status(status string) error {
	return Send("STATUS=" + oneLine(status))
}

// Watchdog sends one keep-alive ping (WATCHDOG=1).
func Watchdog() error {
	return Send(watchdog)
}

// WatchdogInterval returns the watchdog timeout the manager set for this
// process: $WATCHDOG_USEC, provided $WATCHDOG_PID is unset or names this
// process. It returns 0 when there is no watchdog for us.
func WatchdogInterval() (time.Duration, error) {
	return watchdogInterval(os.Getenv(WatchdogUsecEnv), os.Getenv(WatchdogPIDEnv), os.Getpid())
}

func watchdogInterval(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("%w: %s=%q", ErrBadWatchdog, WatchdogPIDEnv, pid)
		}
		if p != self {
			return 0, nil // meant for another process (e.g. our parent)
		}
	}
	n, err := strconv.ParseUint(usec, 10, 64)
	if err != nil || n == 0 || n > uint64(time.Duration(1<<62)/time.Microsecond) {
		return 0, fmt.Errorf("%w: %s=%q", ErrBadWatchdog, WatchdogUsecEnv, usec)
	}
	return time.Duration(n) * time.Microsecond, nil
}

// KeepAlive sends WATCHDOG=1 every half of interval until ctx is done, then
// returns ctx's error. It returns nil at once when interval is not positive
// or $NOTIFY_SOCKET is unset. A failed ping is passed to onErr (when
// non-nil) and does not stop the loop: the manager's timeout is the judge.
func KeepAlive(ctx context.Context, interval time.Duration, onErr func(error)) error {
	addr := os.Getenv(SocketEnv)
	if interval <= 0 || addr == "" {
		return nil
	}
	t := time.NewTicker(max(interval/2, time.Millisecond))
	defer t.Stop()
	for {
		if err := SendTo(addr, watchdog); err != nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// oneLine keeps a status on one line, as the protocol needs.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// StartWatchdog starts KeepAlive on its own goroutine with the interval from
// WatchdogInterval, when the manager asked for a watchdog. The returned stop
// function ends the goroutine and waits for it; it is never nil and may be
// called more than once. The error reports a malformed watchdog setting (no
// goroutine is started then).
func StartWatchdog(onErr func(error)) (stop func(), err error) {
	interval, err := WatchdogInterval()
	if err != nil || interval <= 0 || os.Getenv(SocketEnv) == "" {
		return func() {}, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = KeepAlive(ctx, interval, onErr)
	}()
	return func() {
		cancel()
		<-done
	}, nil
}
