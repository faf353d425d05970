package daemon

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrPrivilege reports that the daemon lacks the capabilities it needs.
var ErrPrivilege = errors.New("tcpcryptd must run as root (it needs CAP_NET_ADMIN for nftables, NFQUEUE and sock_diag, and CAP_NET_RAW for its raw sockets)")

// checkPrivileges fails with ErrPrivilege unless the effective capability
// set holds CAP_NET_ADMIN and CAP_NET_RAW.
func checkPrivileges() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("%w: capget: %w", ErrPrivilege, err)
	}
	var missing []string
	for _, c := range []struct {
		bit  uint
		name string
	}{{unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"}, {unix.CAP_NET_RAW, "CAP_NET_RAW"}} {
		if data[c.bit/32].Effective&(1<<(c.bit%32)) == 0 {
			missing = append(missing, c.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %v (euid %d)", ErrPrivilege, missing, os.Geteuid())
	}
	return nil
}
