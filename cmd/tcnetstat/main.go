// Command tcnetstat lists the connections tcpcryptd tracks: endpoints, state,
// TCP-ENO role, negotiated TEP and AEAD, session id, resumption, byte counts
// and age. With --json it prints an array of ctl.Conn objects.
//
// Exit status: 0 on success, 1 when the daemon is unavailable or reports an
// error (the reason goes to standard error), 2 for usage errors.
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
