//go:build cgo

package creply

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"syscall"
	"testing"
)

// refReply decodes a reply line with encoding/json, as the reference for
// the C reader: the members the reader interprets, with their types.
type refReply struct {
	V      int             `json:"v"`
	ID     uint64          `json:"id"`
	OK     *bool           `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Pending *bool  `json:"pending"`
	} `json:"error"`
}

type refResult struct {
	SessionID string `json:"session_id"`
	Role      string `json:"role"`
}

const fuzzID = 7

// FuzzParse feeds arbitrary lines to the C reply reader. It must never
// crash or read outside the line (the sanitizers of TestCReplyParser cover
// the C side; here cgo hands it exactly len bytes), must return one of the
// documented errnos, and whenever it accepts a line, encoding/json must
// accept it too and agree on every value the reader reports: a session
// (id, role) or the error code and, for no_session, its pending flag. The
// reader may refuse more than encoding/json (duplicates, deep nesting,
// non-ASCII names).
func FuzzParse(f *testing.F) {
	sid := "23000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	for _, s := range []string{
		`{"v":1,"id":7,"ok":true,"result":{"local":"192.0.2.1:1","remote":"192.0.2.2:2","role":"A","session_id":"` + sid + `"}}`,
		`{"v":1,"id":7,"ok":false,"error":{"code":"no_session","message":"plain"}}`,
		`{"v":1,"id":0,"ok":false,"error":{"code":"busy","message":"x"}}`,
		`{"v":1,"id":7,"ok":false,"error":{"code":"no_session","pending":true,"message":"key exchange not finished yet"}}`,
		`{"v":1,"id":7,"ok":false,"error":{"code":"not_found","pending":false}}`,
		`{"v":1,"id":7,"item":{}}`,
		`{"V":1,"ID":7,"Ok":true,"Result":{"Session_Id":"AB","Role":"B"}}`,
		`{"v":1,"id":7,"ok":true,"result":null}`,
		`{"v":1,"id":7,"x":[[[{"y":"\u00e9\ud800"}]]],"ok":true,"result":{"session_id":"\u0032\u0033","role":"A"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, e := Parse(line, fuzzID)
		switch e {
		case 0, syscall.ENOENT, syscall.EINPROGRESS, syscall.EPROTO, syscall.EAGAIN, syscall.EACCES, syscall.EIO:
		default:
			t.Fatalf("errno %v (%d) is not a documented result", e, int(e))
		}
		if e == syscall.EPROTO {
			return // the reader refused the line; encoding/json may or may not
		}
		var ref refReply
		if err := json.Unmarshal(line, &ref); err != nil {
			t.Fatalf("C reader returned %v for a line encoding/json refuses (%v): %q", e, err, line)
		}
		if ref.V != 1 || ref.OK == nil {
			t.Fatalf("C reader returned %v; reference v=%d ok=%v: %q", e, ref.V, ref.OK, line)
		}
		if ref.ID != fuzzID && !(ref.ID == 0 && ref.Error != nil) {
			t.Fatalf("C reader returned %v for reply id %d: %q", e, ref.ID, line)
		}
		if r.OK != *ref.OK || r.ID != ref.ID {
			t.Fatalf("C ok=%v id=%d, reference ok=%v id=%d: %q", r.OK, r.ID, *ref.OK, ref.ID, line)
		}
		if !*ref.OK {
			if ref.Error == nil {
				t.Fatalf("C reader returned %v for an error reply without error: %q", e, line)
			}
			want := CodeErrno(ref.Error.Code)
			if ref.Error.Code == "no_session" && ref.Error.Pending != nil && *ref.Error.Pending {
				want = syscall.EINPROGRESS // tracked, key exchange still running
			}
			if want != e {
				t.Fatalf("code %q: C reader returned %v, want %v: %q", ref.Error.Code, e, want, line)
			}
			if r.Code != ref.Error.Code && len(ref.Error.Code) < 32 && isASCII(ref.Error.Code) {
				t.Fatalf("code: C %q, reference %q: %q", r.Code, ref.Error.Code, line)
			}
			return
		}
		var res refResult
		if !bytes.Equal(ref.Result, []byte("null")) {
			if err := json.Unmarshal(ref.Result, &res); err != nil {
				t.Fatalf("C reader returned %v; reference result: %v: %q", e, err, line)
			}
		}
		if e == syscall.ENOENT {
			if res.SessionID != "" {
				t.Fatalf("C reader found no session, reference %q: %q", res.SessionID, line)
			}
			return
		}
		want, err := hex.DecodeString(res.SessionID)
		if err != nil || !bytes.Equal(r.SessionID, want) || string(r.Role) != res.Role {
			t.Fatalf("C session %x role %q, reference %q role %q: %q", r.SessionID, r.Role, res.SessionID, res.Role, line)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 || s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// BenchmarkParse reads a typical sessid reply (one Conn, ~400 bytes).
func BenchmarkParse(b *testing.B) {
	line := []byte(`{"v":1,"id":7,"ok":true,"result":{"local":"192.0.2.1:40000","remote":"[2001:db8::7]:443","state":"established","role":"A","tep":{"name":"TCPCRYPT_ECDHE_Curve25519","id":35},"aead":"AEAD_AES_128_GCM","session_id":"23000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f","resumed":false,"bytes_in":123456,"bytes_out":654321,"frames_in":10,"frames_out":12,"age_seconds":1.25,"last_error":""}}`)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, e := Parse(line, fuzzID); e != 0 {
			b.Fatal(e)
		}
	}
}
