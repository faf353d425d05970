package ctlserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlproto"
)

func TestAuthorize(t *testing.T) {
	tests := []struct {
		op   ctlproto.Op
		peer Peer
		ok   bool
	}{
		{ctlproto.OpRulesAdd, Peer{Network: "unix", Cred: true, UID: 0}, true},
		{ctlproto.OpRulesDel, Peer{Network: "unix", Cred: true, UID: 0}, true},
		{ctlproto.OpRulesAdd, Peer{Network: "unix", Cred: true, UID: 1}, false},
		{ctlproto.OpRulesDel, Peer{Network: "unix", Cred: true, UID: 65534}, false},
		{ctlproto.OpRulesAdd, Peer{Network: "unix", Cred: false, UID: 0}, false},
		{ctlproto.OpRulesAdd, Peer{Network: "tcp", Cred: true, UID: 0}, false},
		{ctlproto.OpCacheFlush, Peer{Network: "unix", Cred: true, UID: 0}, true},
		{ctlproto.OpCacheFlush, Peer{Network: "unix", Cred: true, UID: 1000}, false},
		{ctlproto.OpCacheFlush, Peer{Network: "unix", Cred: false, UID: 0}, false},
		{ctlproto.OpCacheFlush, Peer{Network: "tcp", Cred: true, UID: 0}, false},
		{ctlproto.OpRulesAdd, Peer{}, false},
		{ctlproto.OpRulesList, Peer{Network: "tcp"}, true},
		{ctlproto.OpSessID, Peer{Network: "unix", Cred: true, UID: 1000}, true},
		{ctlproto.OpStatus, Peer{}, true},
		{ctlproto.Op("whatever"), Peer{Network: "tcp"}, true}, // unknown ops are refused later as bad_request
	}
	for _, tt := range tests {
		err := authorize(tt.op, tt.peer)
		if (err == nil) != tt.ok {
			t.Errorf("authorize(%s, %+v) = %v, want ok=%v", tt.op, tt.peer, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ctl.ErrForbidden) {
			t.Errorf("authorize error %v does not match ErrForbidden", err)
		}
	}
}

// flushBackend serves cache.flush only (the rest of Backend is nil): a
// connection's count of cached secrets, removed by FlushCache.
type flushBackend struct {
	Backend
	cached map[[2]netip.AddrPort]int
}

func (b *flushBackend) FlushCache(_ context.Context, local, remote netip.AddrPort) (int, error) {
	n, ok := b.cached[[2]netip.AddrPort{local, remote}]
	if !ok {
		return 0, ctl.ErrNotFound
	}
	b.cached[[2]netip.AddrPort{local, remote}] = 0
	return n, nil
}

// TestCacheFlushByOwner: a user who is not root may flush the cache state
// of a connection whose socket on this host they own (the SocketOwner
// lookup), and of no other; without the lookup, and over TCP, only root
// may (TestAuthorize).
func TestCacheFlushByOwner(t *testing.T) {
	local := netip.MustParseAddrPort("192.0.2.1:40000")
	remote := netip.MustParseAddrPort("192.0.2.2:443")
	other := netip.MustParseAddrPort("192.0.2.1:40001")
	owners := map[netip.AddrPort]uint32{local: 1000, other: 1001}
	newBackend := func() *flushBackend {
		return &flushBackend{cached: map[[2]netip.AddrPort]int{{local, remote}: 1, {other, remote}: 1}}
	}
	lookup := func(_ context.Context, l, r netip.AddrPort) (uint32, error) {
		if uid, ok := owners[l]; ok && r == remote {
			return uid, nil
		}
		return 0, errors.New("no connected socket")
	}
	flush := func(s *Server, peer Peer, l netip.AddrPort) map[string]any {
		t.Helper()
		line := fmt.Sprintf(`{"v":1,"id":3,"op":"cache.flush","args":{"local":%q,"remote":%q}}`, l, remote)
		var out bytes.Buffer
		bw := bufio.NewWriter(&out)
		if err := s.handleLine(context.Background(), []byte(line), bw, peer); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		var reply map[string]any
		if err := json.Unmarshal(out.Bytes(), &reply); err != nil {
			t.Fatalf("reply %q: %v", out.String(), err)
		}
		return reply
	}
	user := Peer{Network: "unix", Cred: true, UID: 1000}
	for _, tc := range []struct {
		name   string
		owner  bool // SocketOwner set
		peer   Peer
		conn   netip.AddrPort
		wantOK bool
	}{
		{"owner", true, user, local, true},
		{"another user's connection", true, user, other, false},
		{"no such socket", true, user, netip.MustParseAddrPort("192.0.2.1:40002"), false},
		{"root, any connection", true, Peer{Network: "unix", Cred: true, UID: 0}, other, true},
		{"owner over TCP", true, Peer{Network: "tcp"}, local, false},
		{"owner without credentials", true, Peer{Network: "unix"}, local, false},
		{"no owner lookup", false, user, local, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend()
			cfg := Config{Backend: b}
			if tc.owner {
				cfg.SocketOwner = lookup
			}
			s, err := NewServer(cfg)
			if err != nil {
				t.Fatal(err)
			}
			reply := flush(s, tc.peer, tc.conn)
			if ok, _ := reply["ok"].(bool); ok != tc.wantOK {
				t.Fatalf("reply %v, want ok=%v", reply, tc.wantOK)
			}
			left := b.cached[[2]netip.AddrPort{tc.conn, remote}]
			if tc.wantOK && left != 0 {
				t.Errorf("the secret is still cached after an accepted flush")
			}
			if !tc.wantOK {
				if e, _ := reply["error"].(map[string]any); e["code"] != "forbidden" {
					t.Errorf("refusal %v, want code forbidden", reply)
				}
				if tc.conn != netip.MustParseAddrPort("192.0.2.1:40002") && left != 1 {
					t.Errorf("a refused flush removed the secret")
				}
			}
		})
	}
}
