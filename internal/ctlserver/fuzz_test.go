package ctlserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
)

// FuzzRequest feeds one arbitrary request line to the handler, as root on
// the unix socket (so every op, mutations included, is reachable). The
// handler must not panic, and must either answer with well-formed reply
// lines (stream items, then exactly one final line with "ok") or, for an
// oversized line, answer too_large and close.
func FuzzRequest(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":1,"op":"version"}`))
	f.Add([]byte(`{"v":1,"id":2,"op":"netstat"}`))
	f.Add([]byte(`{"v":1,"id":3,"op":"sessid","args":{"local":"192.0.2.1:10000","remote":"198.51.100.0:443"}}`))
	f.Add([]byte(`{"v":1,"id":4,"op":"rules.add","args":{"port":22,"side":"both","prefix":"10.0.0.0/8","mode":"required"}}`))
	f.Add([]byte(`{"v":2,"op":"status"}`))
	f.Add([]byte(`{"v":1,"id":18446744073709551615,"op":"rules.del","args":{"port":443,"side":"local","mode":"opportunistic"}}`))
	f.Add([]byte(`{"v":1,"id":5,"op":"cache.flush","args":{"local":"192.0.2.1:10000","remote":"198.51.100.0:443"}}`))
	f.Add([]byte(`{"v":1,"id":6,"op":"rules.add","args":{"port":8443,"side":"local","mode":"required","options":["noresume","nocache","appaware"]}}`))
	f.Add([]byte(`{`))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, line []byte) {
		// A fresh backend each time keeps runs independent of each other.
		srv, err := ctlserver.NewServer(ctlserver.Config{Backend: sampleBackend(3), MaxRequestLine: 512})
		if err != nil {
			t.Fatal(err)
		}
		// One line: embedded newlines would make several requests.
		line = bytes.ReplaceAll(line, []byte("\n"), []byte(" "))
		var out bytes.Buffer
		err = srv.ServeConn(context.Background(), bytes.NewReader(append(line, '\n')), &out, rootUnix)
		lines := bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n"))
		if len(bytes.TrimSpace(line)) == 0 {
			if out.Len() != 0 || err != nil {
				t.Fatalf("blank line: output %q, err %v", out.Bytes(), err)
			}
			return
		}
		if !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			t.Fatalf("output not newline-terminated: %q", out.Bytes())
		}
		finals := 0
		for i, l := range lines {
			var r struct {
				V     int             `json:"v"`
				OK    *bool           `json:"ok"`
				Item  json.RawMessage `json:"item"`
				Error *ctl.Error      `json:"error"`
			}
			if err := json.Unmarshal(l, &r); err != nil || r.V != 1 {
				t.Fatalf("line %d %q: %v (v=%d)", i, l, err, r.V)
			}
			if r.OK == nil {
				if r.Item == nil || i == len(lines)-1 {
					t.Fatalf("line %d %q: neither item nor final", i, l)
				}
				continue
			}
			finals++
			if !*r.OK && (r.Error == nil || r.Error.Code == "") {
				t.Fatalf("error reply without code: %q", l)
			}
		}
		if finals != 1 {
			t.Fatalf("%d final lines in %q", finals, out.Bytes())
		}
		if err != nil && !errors.Is(err, ctl.ErrTooLarge) {
			t.Fatalf("ServeConn: %v", err)
		}
	})
}
