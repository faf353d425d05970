package ctl_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/ctl/ctltest"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
)

// proof is what one side sends to show it knows the shared password and sees
// the same tcpcrypt session: HMAC(password, role || session id). Binding the
// role (RFC 8547 §5.1) stops a man in the middle from reflecting one side's
// proof back to it.
func proof(password []byte, role ctl.Role, sid []byte) []byte {
	m := hmac.New(sha256.New, password)
	m.Write([]byte(role.String()))
	m.Write(sid)
	return m.Sum(nil)
}

// An application authenticates its tcpcrypt connection with a shared
// password: each side asks the daemon for the session id and its own role,
// sends HMAC(password, own role || session id) and checks the peer's proof
// against the peer's role. A real application simply calls
// ctl.WaitSession (or ctl.ConnInfo) on its net.Conn; here an in-process
// control server with a fake backend stands in for tcpcryptd, so the example
// runs anywhere.
func Example_bindSessionID() {
	client, server, cleanup := examplePair()
	defer cleanup()
	password := []byte("correct horse battery staple")

	type result struct {
		role ctl.Role
		ok   bool
		err  error
	}
	side := func(conn net.Conn, out chan<- result) {
		// Right after Dial or Accept the key exchange may still run:
		// WaitSession waits for it (ConnInfo would say ErrPending).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		info, err := ctl.WaitSession(ctx, conn)
		if err != nil { // ErrNotEncrypted, ErrNotFound, ErrDaemonUnavailable...
			out <- result{err: err}
			return
		}
		mine := proof(password, info.Role, info.SessionID)
		theirs := make([]byte, len(mine))
		go conn.Write(mine)
		if _, err := io.ReadFull(conn, theirs); err != nil {
			out <- result{err: err}
			return
		}
		want := proof(password, info.Role.Peer(), info.SessionID)
		out <- result{role: info.Role, ok: hmac.Equal(theirs, want)}
	}
	ca, cb := make(chan result), make(chan result)
	go side(client, ca)
	go side(server, cb)
	for _, r := range []result{<-ca, <-cb} {
		fmt.Printf("role %s: peer authenticated: %v (err %v)\n", r.role, r.ok, r.err)
	}
	// Output:
	// role A: peer authenticated: true (err <nil>)
	// role B: peer authenticated: true (err <nil>)
}

// examplePair makes a loopback TCP connection, and a control server that
// reports it as encrypted with one session id (client end role A, server end
// role B), reachable at the default address via $TCPCRYPT_CTL. (The server
// runs as the test's user; TestMain lets the client trust it.)
func examplePair() (client, server net.Conn, cleanup func()) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	client, err = net.Dial("tcp4", l.Addr().String())
	if err != nil {
		panic(err)
	}
	server, err = l.Accept()
	if err != nil {
		panic(err)
	}
	local := client.LocalAddr().(*net.TCPAddr).AddrPort()
	remote := client.RemoteAddr().(*net.TCPAddr).AddrPort()
	sid := ctltest.SampleConn(1).SessionID
	b := &ctltest.Backend{Conns: []ctl.Conn{
		{Local: local, Remote: remote, State: "encrypted", Role: ctl.RoleA, SessionID: sid},
		{Local: remote, Remote: local, State: "encrypted", Role: ctl.RoleB, SessionID: sid},
	}}

	dir, err := os.MkdirTemp("", "ctlexample")
	if err != nil {
		panic(err)
	}
	path := filepath.Join(dir, "ctl")
	srv, err := ctlserver.NewServer(ctlserver.Config{Backend: b})
	if err != nil {
		panic(err)
	}
	if err := srv.Listen(path); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx) }()
	old, had := os.LookupEnv(ctl.EnvAddress)
	os.Setenv(ctl.EnvAddress, path)
	return client, server, func() {
		if had {
			os.Setenv(ctl.EnvAddress, old)
		} else {
			os.Unsetenv(ctl.EnvAddress)
		}
		cancel()
		<-done
		client.Close()
		server.Close()
		os.RemoveAll(dir)
	}
}
