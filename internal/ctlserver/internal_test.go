package ctlserver

import (
	"errors"
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
