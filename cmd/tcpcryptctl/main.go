// Command tcpcryptctl is the administrator's interface to tcpcryptd: it lists,
// adds and removes the per-port policy rules, shows the daemon's status,
// looks up the session id of a connection and flushes the resumption
// secret a connection left in the cache.
//
//	tcpcryptctl [-u ADDRESS] rules list [--json]
//	tcpcryptctl [-u ADDRESS] rules add PORT [--side local|remote|both] [--prefix CIDR] [--mode opportunistic|required|exclude] [--option noresume|nocache|appaware]...
//	tcpcryptctl [-u ADDRESS] rules del PORT [--side ...] [--prefix ...] [--mode ...] [--option ...]...
//	tcpcryptctl [-u ADDRESS] status [--json]
//	tcpcryptctl [-u ADDRESS] sessid LOCAL REMOTE [--json]
//	tcpcryptctl [-u ADDRESS] flush-cache LOCAL REMOTE
//	tcpcryptctl [-u ADDRESS] version
//
// Rule changes and flush-cache need root on the unix socket. Exit status: 0 on success, 1
// when the daemon is unavailable or refuses (including "no session id"), 2
// for usage errors.
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
