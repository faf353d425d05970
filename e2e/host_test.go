package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/internal/netns"
)

// host is one network namespace of a test, with its tcpcryptd (if started)
// and its files.
type host struct {
	// root is the test that made the host: long-lived processes (daemons,
	// chaosbox) are killed when it ends, not when a subtest does.
	root   *testing.T
	name   string
	ns     *netns.NS
	dir    string
	v4, v6 netip.Addr // address on eth0 (invalid on a router)
	sock   string     // tcpcryptd control socket
	state  string     // tcpcryptd state file
	daemon *proc
}

// newHost makes a namespace for t (removed when t ends).
func newHost(t *testing.T, name string) *host {
	t.Helper()
	requireRoot(t)
	ns := netns.NewForTest(t)
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &host{root: t, name: name, ns: ns, dir: dir,
		sock: filepath.Join(dir, "ctl.sock"), state: filepath.Join(dir, "rules.json")}
}

// argv prefixes a command with `ip netns exec NS`.
func (h *host) argv(args ...string) []string {
	return append([]string{"ip", "netns", "exec", h.ns.Name()}, args...)
}

// run runs a command inside the namespace.
func (h *host) run(args ...string) (string, error) {
	return runCmd(20*time.Second, h.argv(args...)...)
}

// must runs a command inside the namespace and fails the test on error.
func (h *host) must(t testing.TB, args ...string) string {
	t.Helper()
	out, err := h.run(args...)
	if err != nil {
		t.Fatalf("%s: %v", h.name, err)
	}
	return out
}

// ip runs the ip command on the host's namespace.
func (h *host) ip(t testing.TB, args ...string) {
	t.Helper()
	if _, err := runCmd(10*time.Second, append([]string{"ip", "-n", h.ns.Name()}, args...)...); err != nil {
		t.Fatalf("%s: %v", h.name, err)
	}
}

// sysctl sets a sysctl inside the namespace.
func (h *host) sysctl(t testing.TB, key, value string) {
	t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	if err := h.ns.Do(func() error { return os.WriteFile(path, []byte(value), 0o644) }); err != nil {
		t.Fatalf("%s: sysctl %s=%s: %v", h.name, key, value, err)
	}
}

// link joins a's interface ifA and b's interface ifB with a veth pair.
func link(t *testing.T, a *host, ifA string, b *host, ifB string) {
	t.Helper()
	if _, err := runCmd(10*time.Second, "ip", "-n", a.ns.Name(), "link", "add", ifA, "type", "veth",
		"peer", "name", ifB, "netns", b.ns.Name()); err != nil {
		t.Fatalf("veth %s/%s - %s/%s: %v", a.name, ifA, b.name, ifB, err)
	}
}

// addr gives the interface an address (no duplicate address detection for
// IPv6, so it is usable at once) and brings it up.
func (h *host) addr(t testing.TB, ifname string, prefixes ...string) {
	t.Helper()
	for _, p := range prefixes {
		args := []string{"addr", "add", p, "dev", ifname}
		if strings.Contains(p, ":") {
			args = append(args, "nodad")
		}
		h.ip(t, args...)
	}
	h.ip(t, "link", "set", ifname, "up")
}

// pair builds two hosts joined by a veth pair: a is 10.99.0.1 and fd99::1,
// b is 10.99.0.2 and fd99::2, each on its eth0.
func pair(t *testing.T) (a, b *host) {
	t.Helper()
	a, b = newHost(t, "a"), newHost(t, "b")
	link(t, a, "eth0", b, "eth0")
	a.addr(t, "eth0", "10.99.0.1/24", "fd99::1/64")
	b.addr(t, "eth0", "10.99.0.2/24", "fd99::2/64")
	a.v4, a.v6 = netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("fd99::1")
	b.v4, b.v6 = netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("fd99::2")
	waitReachable(t, a, b)
	return a, b
}

// routed builds two hosts with a router between them: a (10.99.1.1,
// fd99:1::1) -- r -- b (10.99.2.1, fd99:2::1). The router's interfaces are
// ethA and ethB.
func routed(t *testing.T) (a, r, b *host) {
	t.Helper()
	a, r, b = newHost(t, "a"), newHost(t, "r"), newHost(t, "b")
	link(t, a, "eth0", r, "ethA")
	link(t, b, "eth0", r, "ethB")
	a.addr(t, "eth0", "10.99.1.1/24", "fd99:1::1/64")
	b.addr(t, "eth0", "10.99.2.1/24", "fd99:2::1/64")
	r.addr(t, "ethA", "10.99.1.254/24", "fd99:1::fe/64")
	r.addr(t, "ethB", "10.99.2.254/24", "fd99:2::fe/64")
	r.sysctl(t, "net.ipv4.ip_forward", "1")
	r.sysctl(t, "net.ipv6.conf.all.forwarding", "1")
	a.ip(t, "route", "add", "default", "via", "10.99.1.254")
	a.ip(t, "-6", "route", "add", "default", "via", "fd99:1::fe")
	b.ip(t, "route", "add", "default", "via", "10.99.2.254")
	b.ip(t, "-6", "route", "add", "default", "via", "fd99:2::fe")
	a.v4, a.v6 = netip.MustParseAddr("10.99.1.1"), netip.MustParseAddr("fd99:1::1")
	b.v4, b.v6 = netip.MustParseAddr("10.99.2.1"), netip.MustParseAddr("fd99:2::1")
	waitReachable(t, a, b)
	return a, r, b
}

// waitReachable waits until a TCP SYN from a to port 9 of b is answered
// (by a reset: nothing listens there), over IPv4 and IPv6: links up,
// addresses usable, routes in place.
func waitReachable(t *testing.T, a, b *host) {
	t.Helper()
	for _, dst := range []netip.Addr{b.v4, b.v6} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := a.ns.Do(func() error {
				c, err := net.DialTimeout("tcp", ap(dst, 9), time.Second)
				if err == nil {
					c.Close()
				}
				return err
			})
			if err == nil || errors.Is(err, syscall.ECONNREFUSED) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s cannot reach %s: %v", a.name, dst, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// ap joins an address and a port.
func ap(a netip.Addr, port uint16) string { return netip.AddrPortFrom(a, port).String() }

// tables lists the nftables tables of the namespace.
func (h *host) tables(t testing.TB) string {
	t.Helper()
	return h.must(t, "nft", "list", "tables")
}

// hasTable reports whether the namespace has the table "inet NAME".
func (h *host) hasTable(t testing.TB, name string) bool {
	t.Helper()
	for _, l := range strings.Split(h.tables(t), "\n") {
		if strings.TrimSpace(l) == "table inet "+name {
			return true
		}
	}
	return false
}

func (h *host) String() string { return fmt.Sprintf("%s(%s)", h.name, h.ns.Name()) }
