package bind

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

func TestPSKMatchingKeys(t *testing.T) {
	checkNoLeak(t)
	f := useFakeSessions(t)
	a, b := f.session(t, testSID(1))
	errA, errB := both(timeout(t, 5*time.Second), a, b, key1, key1)
	if errA != nil || errB != nil {
		t.Fatalf("A: %v, B: %v; want both nil", errA, errB)
	}
	// The application's bytes follow untouched: PSK read nothing beyond
	// its message and left no deadline behind.
	go b.Write([]byte("hello after bind"))
	got := make([]byte, 16)
	if _, err := io.ReadFull(a, got); err != nil || string(got) != "hello after bind" {
		t.Fatalf("after PSK: read %q, %v", got, err)
	}
}

func TestPSKOverTCP(t *testing.T) {
	checkNoLeak(t)
	f := useFakeSessions(t)
	a, b := tcpPair(t)
	sid := testSID(2)
	f.set(a, sid, true)
	// The peer sends its bind message and its first application bytes in
	// one write: PSK must take the message and leave the rest in the
	// stream.
	k, err := macKey(key1)
	if err != nil {
		t.Fatal(err)
	}
	peerMsg := newMessage(k, roleB, sid).marshal()
	if _, err := b.Write(append(peerMsg, "ping"...)); err != nil {
		t.Fatal(err)
	}
	if err := PSK(timeout(t, 5*time.Second), a, key1); err != nil {
		t.Fatalf("A: %v", err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(a, got); err != nil || string(got) != "ping" {
		t.Fatalf("after PSK: %q, %v", got, err)
	}
	// What A sent is the genuine proof for role A.
	ours := make([]byte, MessageLen)
	if _, err := io.ReadFull(b, ours); err != nil {
		t.Fatal(err)
	}
	m, err := parseMessage(ours)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.verify(k, roleB, sid); err != nil {
		t.Errorf("A's message does not verify at B: %v", err)
	}
}

func TestPSKDifferentKeys(t *testing.T) {
	checkNoLeak(t)
	f := useFakeSessions(t)
	a, b := f.session(t, testSID(3))
	errA, errB := both(timeout(t, 5*time.Second), a, b, key1, key2)
	for name, err := range map[string]error{"A": errA, "B": errB} {
		if !errors.Is(err, ErrMismatch) || errors.Is(err, ErrSameRole) {
			t.Errorf("%s: %v; want ErrMismatch (not ErrSameRole)", name, err)
		}
	}
}

// reflector plays an attacker that sends each message it reads back to its
// sender, optionally changed by edit.
func reflector(t *testing.T, c net.Conn, edit func([]byte)) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(func() { c.Close(); wg.Wait() })
	go func() {
		defer wg.Done()
		buf := make([]byte, MessageLen)
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if edit != nil {
			edit(buf)
		}
		c.Write(buf)
	}()
}

func TestPSKReflection(t *testing.T) {
	checkNoLeak(t)
	for _, victimIsA := range []bool{true, false} {
		f := useFakeSessions(t)
		victim, attacker := net.Pipe()
		t.Cleanup(func() { victim.Close(); attacker.Close() })
		f.set(victim, testSID(4), victimIsA)
		reflector(t, attacker, nil)
		err := PSK(timeout(t, 5*time.Second), victim, key1)
		if !errors.Is(err, ErrSameRole) || !errors.Is(err, ErrMismatch) {
			t.Errorf("victim A=%v, message reflected: %v; want ErrSameRole and ErrMismatch", victimIsA, err)
		}
	}
	// The attacker flips the role byte so the role looks right: the MAC
	// was made for the victim's role, so it is still refused.
	f := useFakeSessions(t)
	victim, attacker := net.Pipe()
	t.Cleanup(func() { victim.Close(); attacker.Close() })
	f.set(victim, testSID(4), true)
	reflector(t, attacker, func(m []byte) { m[offRole] = roleB })
	err := PSK(timeout(t, 5*time.Second), victim, key1)
	if !errors.Is(err, ErrMismatch) || errors.Is(err, ErrSameRole) {
		t.Errorf("reflected with the role flipped: %v; want ErrMismatch", err)
	}
}

// recorder forwards bytes between two pipes (one session seen from both
// sides) and keeps a copy of what a sent.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

func TestPSKReplay(t *testing.T) {
	checkNoLeak(t)
	f := useFakeSessions(t)
	ctx := timeout(t, 5*time.Second)

	// Connection 1: A and B bind successfully; the attacker records A's
	// message on the way (a tap on the stream, as if it could read it).
	a1, tapIn := net.Pipe()
	tapOut, b1 := net.Pipe()
	t.Cleanup(func() { a1.Close(); tapIn.Close(); tapOut.Close(); b1.Close() })
	f.set(a1, testSID(5), true)
	f.set(b1, testSID(5), false)
	var rec recorder
	relay(t, tapIn, tapOut, &rec)
	if errA, errB := both(ctx, a1, b1, key1, key1); errA != nil || errB != nil {
		t.Fatalf("connection 1: A %v, B %v", errA, errB)
	}
	recorded := rec.bytes()
	if len(recorded) != MessageLen {
		t.Fatalf("recorded %d bytes of A's message, want %d", len(recorded), MessageLen)
	}

	replay := func(sid []byte) error {
		victim, attacker := net.Pipe()
		var wg sync.WaitGroup
		wg.Add(2)
		t.Cleanup(func() { victim.Close(); attacker.Close(); wg.Wait() })
		f.set(victim, sid, false)
		go func() { defer wg.Done(); attacker.Write(recorded) }()
		go func() { defer wg.Done(); io.Copy(io.Discard, attacker) }()
		return PSK(ctx, victim, key1)
	}
	// The recorded message is a genuine proof: on its own session it passes.
	if err := replay(testSID(5)); err != nil {
		t.Fatalf("the recorded message on its own session: %v", err)
	}
	// Connection 2 has another session id: the replay is refused.
	if err := replay(testSID(6)); !errors.Is(err, ErrMismatch) {
		t.Errorf("replay on another connection: %v; want ErrMismatch", err)
	}
}

func TestPSKSameRole(t *testing.T) {
	checkNoLeak(t)
	for _, isA := range []bool{true, false} {
		f := useFakeSessions(t)
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		f.set(a, testSID(7), isA)
		f.set(b, testSID(7), isA)
		errA, errB := both(timeout(t, 5*time.Second), a, b, key1, key1)
		if !errors.Is(errA, ErrSameRole) || !errors.Is(errB, ErrSameRole) {
			t.Errorf("both A=%v: %v, %v; want ErrSameRole at both ends", isA, errA, errB)
		}
	}
}

func TestPSKNotEncrypted(t *testing.T) {
	checkNoLeak(t)
	f := useFakeSessions(t)
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	f.fail(a, errors.Join(ErrNotEncrypted, errors.New("fake: no session")))
	if err := PSK(timeout(t, 5*time.Second), a, key1); !errors.Is(err, ErrNotEncrypted) {
		t.Errorf("no session: %v; want ErrNotEncrypted", err)
	}
	f.set(a, nil, true)
	if err := PSK(timeout(t, 5*time.Second), a, key1); !errors.Is(err, ErrNotEncrypted) {
		t.Errorf("empty session id: %v; want ErrNotEncrypted", err)
	}
	// Nothing was sent on the plain connection.
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := b.Read(make([]byte, 1)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("peer read %d bytes (%v); want nothing", n, err)
	}
}

func TestPSKShortKey(t *testing.T) {
	f := useFakeSessions(t)
	a, _ := f.session(t, testSID(8))
	err := PSK(context.Background(), a, key1[:MinKeyLen-1])
	if !errors.Is(err, ErrShortKey) {
		t.Errorf("15-byte key: %v; want ErrShortKey", err)
	}
	if f.calls != 0 {
		t.Errorf("the daemon was asked %d times for a short key", f.calls)
	}
}

func TestPSKTimeout(t *testing.T) {
	for _, kind := range []string{"pipe", "tcp"} {
		t.Run(kind, func(t *testing.T) {
			checkNoLeak(t)
			f := useFakeSessions(t)
			var a, silent net.Conn
			if kind == "pipe" {
				a, silent = net.Pipe()
				t.Cleanup(func() { a.Close(); silent.Close() })
			} else {
				a, silent = tcpPair(t)
			}
			f.set(a, testSID(9), true)
			const d = 200 * time.Millisecond
			start := time.Now()
			err := PSK(timeout(t, d), a, key1)
			took := time.Since(start)
			if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("silent peer: %v; want ErrTimeout and context.DeadlineExceeded", err)
			}
			if took < d-10*time.Millisecond || took > d+time.Second {
				t.Errorf("returned after %v; the deadline was %v", took, d)
			}
			// PSK cleared the deadline it set: late bytes from the peer are
			// read (with the deadline left in place this read would fail
			// at once).
			late := make(chan error, 1)
			go func() { _, err := silent.Write([]byte("late")); late <- err }()
			got := make([]byte, 4)
			if _, err := io.ReadFull(a, got); err != nil || string(got) != "late" {
				t.Errorf("read after the timeout: %q, %v", got, err)
			}
			if err := <-late; err != nil {
				t.Errorf("peer write: %v", err)
			}
		})
	}
}

func TestPSKCancel(t *testing.T) {
	checkNoLeak(t)
	f := useFakeSessions(t)
	a, silent := net.Pipe()
	t.Cleanup(func() { a.Close(); silent.Close() })
	f.set(a, testSID(10), false)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := PSK(ctx, a, key1)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Errorf("cancelled: %v; want context.Canceled", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("returned %v after the cancel", took)
	}
}

func TestPSKGarbage(t *testing.T) {
	valid := newMessage(key1, roleB, testSID(11)).marshal()
	tests := []struct {
		name  string
		send  []byte
		close bool // the peer closes after sending
	}{
		{"http", []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), false},
		{"ssh banner", []byte("SSH-2.0-OpenSSH_9.6\r\n"), false},
		{"one wrong byte", []byte{0x00}, false},
		{"version 2", append(append([]byte{}, magic[:]...), 2), false},
		{"role C", append(append([]byte{}, magic[:]...), Version, 'C'), false},
		{"truncated then closed", valid[:20], true},
		{"nothing then closed", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeak(t)
			f := useFakeSessions(t)
			a, peer := net.Pipe()
			t.Cleanup(func() { a.Close(); peer.Close() })
			f.set(a, testSID(11), true)
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				peer.Write(tt.send)
				if tt.close {
					peer.Close()
				}
			}()
			go func() { defer wg.Done(); io.Copy(io.Discard, peer) }()
			start := time.Now()
			err := PSK(timeout(t, 10*time.Second), a, key1)
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("%v; want ErrProtocol", err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %v: the garbage was not refused at once", took)
			}
			peer.Close()
			wg.Wait()
		})
	}
}

// relay copies bytes both ways between x and y until either closes, like a
// TCP relay that terminates one connection and opens another; tee, if not
// nil, gets a copy of what goes from x to y.
func relay(t *testing.T, x, y net.Conn, tee io.Writer) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(2)
	t.Cleanup(func() { x.Close(); y.Close(); wg.Wait() })
	go func() {
		defer wg.Done()
		var w io.Writer = y
		if tee != nil {
			w = io.MultiWriter(tee, y) // the copy first: it is complete before y sees the bytes
		}
		io.Copy(w, x)
		y.Close()
	}()
	go func() { defer wg.Done(); io.Copy(x, y); x.Close() }()
}

func TestPSKManInTheMiddle(t *testing.T) {
	checkNoLeak(t)
	f := useFakeSessions(t)
	// Two tcpcrypt sessions: client (A) to relay (B) with one session id,
	// relay (A) to server (B) with another. The relay forwards the bytes.
	client, relayB := f.session(t, testSID(12))
	relayA, server := f.session(t, testSID(13))
	relay(t, relayB, relayA, nil)
	errC, errS := both(timeout(t, 5*time.Second), client, server, key1, key1)
	for name, err := range map[string]error{"client": errC, "server": errS} {
		if !errors.Is(err, ErrMismatch) || errors.Is(err, ErrSameRole) {
			t.Errorf("%s: %v; want ErrMismatch", name, err)
		}
	}
	// A relay between two clients (both dialled it): both are role A.
	c1, r1 := f.session(t, testSID(14))
	c2, r2 := f.session(t, testSID(15))
	relay(t, r1, r2, nil)
	err1, err2 := both(timeout(t, 5*time.Second), c1, c2, key1, key1)
	if !errors.Is(err1, ErrSameRole) || !errors.Is(err2, ErrSameRole) {
		t.Errorf("two clients through a relay: %v, %v; want ErrSameRole", err1, err2)
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}
