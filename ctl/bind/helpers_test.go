package bind

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// fakeSession is what the fake daemon says about one end of a connection.
type fakeSession struct {
	sid []byte
	isA bool
	err error
}

// fakeSessions stands in for the daemon: it answers by net.Conn.
type fakeSessions struct {
	mu    sync.Mutex
	ends  map[net.Conn]fakeSession
	calls int
}

// useFakeSessions installs a fake session source for the test.
func useFakeSessions(t *testing.T) *fakeSessions {
	t.Helper()
	f := &fakeSessions{ends: map[net.Conn]fakeSession{}}
	old := sessionSource
	sessionSource = f.lookup
	t.Cleanup(func() { sessionSource = old })
	return f
}

func (f *fakeSessions) set(c net.Conn, sid []byte, isA bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ends[c] = fakeSession{sid: sid, isA: isA}
}

func (f *fakeSessions) fail(c net.Conn, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ends[c] = fakeSession{err: err}
}

func (f *fakeSessions) lookup(_ context.Context, c net.Conn) ([]byte, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	s, ok := f.ends[c]
	if !ok {
		return nil, false, errors.New("fake daemon: unknown connection")
	}
	return s.sid, s.isA, s.err
}

// testSID returns a 33-byte session id: TEP byte 0x21, then n repeated.
func testSID(n byte) []byte {
	sid := make([]byte, 33)
	sid[0] = 0x21
	for i := 1; i < len(sid); i++ {
		sid[i] = n ^ byte(i)
	}
	return sid
}

// session makes a pipe whose ends share sid, a as role A, b as role B.
func (f *fakeSessions) session(t *testing.T, sid []byte) (a, b net.Conn) {
	t.Helper()
	a, b = net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	f.set(a, sid, true)
	f.set(b, sid, false)
	return a, b
}

var (
	key1 = []byte("key one: 0123456789abcdef0123456789")
	key2 = []byte("key two: 0123456789abcdef0123456789")
)

// both runs PSK at both ends concurrently and returns their errors.
func both(ctx context.Context, a, b net.Conn, keyA, keyB []byte) (errA, errB error) {
	done := make(chan error, 1)
	go func() { done <- PSK(ctx, b, keyB) }()
	errA = PSK(ctx, a, keyA)
	return errA, <-done
}

func timeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// checkNoLeak fails t if, shortly after the test body, more goroutines run
// than before it.
func checkNoLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				n := runtime.Stack(buf, true)
				t.Errorf("%d goroutines, %d before the test:\n%s", runtime.NumGoroutine(), before, buf[:n])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
