package bind_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl/bind"
)

// Both ends of a connection call PSK with the same key right after
// connecting; each learns whether the other holds the key and sees the same
// tcpcrypt session. Here an in-process pipe stands in for a tcpcrypt
// connection and a table of session ids for the daemon (see examplePair),
// so the example runs anywhere; a real application passes its net.Conn.
func ExamplePSK() {
	client, server, done := examplePair()
	defer done()
	key := []byte("0123456789abcdef0123456789abcdef") // in real use: 32 random bytes, shared beforehand

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	serverErr := make(chan error, 1)
	go func() { serverErr <- bind.PSK(ctx, server, key) }()
	clientErr := bind.PSK(ctx, client, key)

	fmt.Println("client:", clientErr)
	fmt.Println("server:", <-serverErr)
	// Output:
	// client: <nil>
	// server: <nil>
}

// examplePair makes an in-process connection whose ends report one session
// id, the client as role A and the server as role B, as a tcpcryptd would.
func examplePair() (client, server net.Conn, done func()) {
	client, server = net.Pipe()
	sid := make([]byte, 33)
	sid[0] = 0x21
	restore := bind.SetSessionSource(func(_ context.Context, c net.Conn) ([]byte, bool, error) {
		return sid, c == client, nil
	})
	return client, server, func() {
		restore()
		client.Close()
		server.Close()
	}
}

// Both ends of a tcpcrypt connection show the same eight words; people
// compare them to check that no one sits in the middle. A program gets them
// for its connection with ConnSAS, an operator with tcnetstat --sas.
func ExampleSAS() {
	sid, _ := hex.DecodeString("23404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f")
	fmt.Println(bind.SAS(sid))
	// Output:
	// panda-puddle-needle-engine-jacket-vanilla-silver-bugle
}
