// Command tcpcryptdump reads a packet capture (pcap or pcapng) and the key
// log(s) tcpcryptd writes with --keylog, and for every TCP connection in the
// capture checks TCP-ENO, Init1/Init2, the authentication of every frame,
// rekeys, FINp and retransmissions, then prints the endpoints, TEP, AEAD,
// session id, the bytes and SHA-256 of each direction's plaintext, and every
// violation found. --dump DIR writes the plaintext streams as files.
//
// Exit status: 0 when every tcpcrypt connection verified, 1 on any
// violation (or a malformed capture), 2 for usage errors.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
