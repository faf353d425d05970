package rules

import (
	"bytes"
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/tcpcryptd/tcpcrypt/internal/netns"

	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

// newNSConn gives t a fresh network namespace (removed in t.Cleanup) and an
// nftables connection into it. It skips t without root.
func newNSConn(t *testing.T) (*netns.NS, *nftables.Conn) {
	t.Helper()
	ns := netns.NewForTest(t)
	conn, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		t.Fatalf("nftables.New: %v", err)
	}
	return ns, conn
}

// nftIn runs `ip netns exec NS nft args...` and returns its standard output;
// standard error (nft's warnings about compat expressions) is only logged.
func nftIn(t *testing.T, ns *netns.NS, args ...string) (string, error) {
	t.Helper()
	testenv.LookPath(t, "nft", "apt-get install nftables")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name(), "nft"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("nft %v stderr: %s", args, stderr.String())
	}
	return stdout.String(), err
}

// mustNft is nftIn failing t on error.
func mustNft(t *testing.T, ns *netns.NS, args ...string) string {
	t.Helper()
	out, err := nftIn(t, ns, args...)
	if err != nil {
		t.Fatalf("nft %v: %v", args, err)
	}
	return out
}
