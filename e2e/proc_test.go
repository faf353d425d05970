package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/internal/syncbuf"
)

// proc is a process a test started. It is killed (by its PID) when the test
// ends, if it is still running.
type proc struct {
	t     testing.TB
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser // nil unless asked for
	out   syncbuf.Buffer
	errb  syncbuf.Buffer
	done  chan struct{}
	err   error // from Wait, valid once done is closed
}

// startProc starts argv; it is killed when owner ends. With withStdin the
// process gets a pipe as standard input (closed by closeStdin); otherwise
// /dev/null.
func startProc(owner testing.TB, name string, withStdin bool, argv ...string) *proc {
	owner.Helper()
	t := owner
	p := &proc{t: t, name: name, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errb
	if withStdin {
		w, err := p.cmd.StdinPipe()
		if err != nil {
			t.Fatalf("%s: stdin: %v", name, err)
		}
		p.stdin = w
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s (%s): %v", name, strings.Join(argv, " "), err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- %s (pid %d) stdout:\n%s", name, p.cmd.Process.Pid, tail(p.out.String(), 30))
			t.Logf("--- %s (pid %d) stderr:\n%s", name, p.cmd.Process.Pid, tail(p.errb.String(), 30))
		}
	})
	return p
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	if p.running() {
		_ = p.cmd.Process.Signal(sig)
	}
}

// kill sends SIGKILL if the process still runs, and reaps it.
func (p *proc) kill() {
	if p.running() {
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s (pid %d) did not die after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// closeStdin closes the process's standard input.
func (p *proc) closeStdin() {
	if p.stdin != nil {
		_ = p.stdin.Close()
	}
}

// wait waits at most d for the process to exit and returns its exit code
// (-1 when killed by a signal). It fails the test on timeout.
func (p *proc) wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s (pid %d) still running after %v", p.name, p.cmd.Process.Pid, d)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("%s: wait: %v", p.name, p.err)
	return -1
}

// waitFor polls until cond holds on the output so far, the process exits
// without it holding, or d passes. It reports whether cond held.
func (p *proc) waitFor(d time.Duration, cond func(stdout, stderr string) bool) bool {
	deadline := time.Now().Add(d)
	for {
		exited := !p.running()
		if cond(p.out.String(), p.errb.String()) {
			return true
		}
		if exited || time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runCmd runs argv to completion within d and returns its standard output;
// the error includes standard error.
func runCmd(d time.Duration, argv ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return out.String(), fmt.Errorf("%s: %w: %s", filepath.Base(argv[0])+" "+strings.Join(argv[1:], " "), err, strings.TrimSpace(errb.String()))
		}
		return out.String(), nil
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("%s: timed out after %v", strings.Join(argv, " "), d)
	}
}
