package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/tcpcryptd/tcpcrypt/engine"
)

// shutdownSafetyTimeout bounds how long shutdown waits for the workers to
// report their flows.
const shutdownSafetyTimeout = 5 * time.Second

// shutdownSafety runs on a clean stop, before the table goes away. Once the
// table is gone, a connection the engines were protecting would carry on in
// plaintext (its peer would then see garbage where frames should be). So the
// local sockets of every connection still tracked by an engine are destroyed
// first (sock_diag SOCK_DESTROY): their applications see a reset, and
// reconnect in cleartext or, after a restart, encrypted again. Connections
// that fell back are not tracked and keep going untouched.
func (d *Daemon) shutdownSafety(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownSafetyTimeout)
	defer cancel()
	live := flowSet{}
	err := d.eachEngine(ctx, func(e *engine.Engine) {
		for _, fi := range e.Snapshot() {
			if !fi.State.Dead() {
				live.add(fi.Local, fi.Remote)
			}
		}
	})
	if err != nil {
		log.Error("shutdown: could not list tracked connections; they may go on in plaintext", "err", err)
		return
	}
	if len(live) == 0 {
		return
	}
	res, err := destroyMatching(func(local, remote netip.AddrPort) bool {
		return live.has(local, remote)
	})
	if err != nil {
		log.Error("shutdown: could not destroy every protected connection; their next bytes may go out in plaintext",
			"tracked", len(live), "destroyed", res.Destroyed, "failed", res.Failed, "err", err)
		return
	}
	log.Warn("shutdown: reset the encrypted connections so none goes on in plaintext",
		"tracked", len(live), "destroyed", res.Destroyed, "gone", res.Gone)
}
