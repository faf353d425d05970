package ctl_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/ctl"
)

// FuzzConnJSON decodes a Conn as the client does (netstat items, sessid
// results): any input must decode or fail without panicking, and a decoded
// Conn must survive a round trip (marshal, unmarshal) unchanged, typed Role
// and hex session id included.
func FuzzConnJSON(f *testing.F) {
	f.Add([]byte(`{"local":"192.0.2.1:443","remote":"[2001:db8::1]:40000","state":"encrypted","role":"A","tep":{"name":"TCPCRYPT_ECDHE_Curve25519","id":35},"aead":"AEAD_AES_128_GCM","session_id":"23aabb","resumed":true}`))
	f.Add([]byte(`{"local":"10.0.0.1:1","remote":"10.0.0.2:2","state":"plain","role":"","fallback_reason":"no_peer_eno","last_error":"fell back"}`))
	f.Add([]byte(`{"role":"C"}`))
	f.Add([]byte(`{"role":"B","session_id":"ABCDEF"}`))
	f.Add([]byte(`{"session_id":"abc"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c ctl.Conn
		if json.Unmarshal(b, &c) != nil {
			return
		}
		if c.Role != ctl.RoleNone && c.Role != ctl.RoleA && c.Role != ctl.RoleB {
			t.Fatalf("decoded role %d", c.Role)
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal %+v: %v", c, err)
		}
		var back ctl.Conn
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("unmarshal own output %s: %v", out, err)
		}
		if len(c.SessionID) == 0 {
			c.SessionID = nil // "" decodes as nil
		}
		if !reflect.DeepEqual(c, back) {
			t.Fatalf("round trip:\n%+v\n%+v", c, back)
		}
	})
}
