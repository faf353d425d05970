// Command tcpcryptd is the tcpcrypt daemon: opportunistic encryption of the
// TCP connections of selected ports (TCP-ENO, RFC 8547; tcpcrypt, RFC 8548),
// by rewriting their segments taken from NFQUEUE.
//
//	tcpcryptd [-p QUEUE] [-u SOCKET] [-v...] [-s HOST[:PORT] | -f] [--rule PORT[:SIDE][:MODE]]... [options]
//
// Run as root. Exit status: 0 after SIGTERM or SIGINT, 1 when the daemon
// fails, 2 for usage errors. The logic lives in internal/daemon;
// docs/tcpcryptd.md describes the options, the configuration file and the
// start-up check.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args, os.Stdout, os.Stderr, runDaemon)
	stop()
	os.Exit(code)
}
