package ctlserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/ctl/ctltest"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlproto"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlserver"
)

// cmpOpts lets cmp compare netip values.
var cmpOpts = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}, netip.Prefix{})

var (
	rootUnix = ctlserver.Peer{Network: "unix", Cred: true, UID: 0, PID: 1}
	userUnix = ctlserver.Peer{Network: "unix", Cred: true, UID: 1000, PID: 2}
	tcpPeer  = ctlserver.Peer{Network: "tcp"}
)

// reply is a decoded reply line (stream item or final).
type reply struct {
	V      int             `json:"v"`
	ID     uint64          `json:"id"`
	OK     *bool           `json:"ok"`
	Item   json.RawMessage `json:"item"`
	Result json.RawMessage `json:"result"`
	Error  *ctl.Error      `json:"error"`
}

func newServer(t testing.TB, b ctlserver.Backend) *ctlserver.Server {
	t.Helper()
	s, err := ctlserver.NewServer(ctlserver.Config{Backend: b, DaemonVersion: "1.2.3-test"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// converse feeds input to ServeConn and returns the decoded reply lines and
// ServeConn's error. Every output line must be one JSON object with v=1.
func converse(t testing.TB, s *ctlserver.Server, peer ctlserver.Peer, input string) ([]reply, error) {
	t.Helper()
	var out bytes.Buffer
	err := s.ServeConn(context.Background(), strings.NewReader(input), &out, peer)
	var reps []reply
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r reply
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("reply line %q: %v", sc.Bytes(), err)
		}
		if r.V != ctlproto.ProtocolVersion {
			t.Fatalf("reply line %q: v=%d", sc.Bytes(), r.V)
		}
		reps = append(reps, r)
	}
	return reps, err
}

func sampleBackend(n int) *ctltest.Backend {
	b := &ctltest.Backend{
		StatusValue: ctl.Status{Version: "1.2.3-test", UptimeSeconds: 12, Queues: []uint16{0, 1},
			Counters: map[string]uint64{"frames_in": 7}, StartupCheck: ctl.Check{Result: "passed"}},
		RuleList: []ctl.Rule{{Port: 443, Side: ctl.SideLocal, Mode: ctl.ModeOpportunistic}},
	}
	for i := range n {
		b.Conns = append(b.Conns, ctltest.SampleConn(i))
	}
	if n > 0 {
		c0 := ctltest.SampleConn(0)
		b.Cached = map[[2]netip.AddrPort]int{{c0.Local, c0.Remote}: 1}
	}
	// A connection that fell back to plain TCP.
	b.Conns = append(b.Conns, ctl.Conn{
		Local:  netip.MustParseAddrPort("192.0.2.1:5555"),
		Remote: netip.MustParseAddrPort("192.0.2.9:80"), State: "plain", LastError: "peer sent no ENO",
	})
	return b
}

func TestOps(t *testing.T) {
	c0 := ctltest.SampleConn(0)
	c1 := ctltest.SampleConn(1)
	ruleJSON := `{"port":22,"side":"both","prefix":"10.0.0.0/8","mode":"required"}`
	tests := []struct {
		name     string
		peer     ctlserver.Peer
		line     string
		wantCode ctl.Code // "" = ok
		want     any      // expected decoded result (pointer to zero value of its type is derived)
	}{
		{"version", tcpPeer, `{"v":1,"id":1,"op":"version"}`, "", &ctl.VersionInfo{Protocol: 1, Daemon: "1.2.3-test"}},
		{"status", tcpPeer, `{"v":1,"id":2,"op":"status"}`, "", &ctl.Status{Version: "1.2.3-test", UptimeSeconds: 12,
			Queues: []uint16{0, 1}, Rules: 1, Connections: 3, Counters: map[string]uint64{"frames_in": 7},
			StartupCheck: ctl.Check{Result: "passed"}}},
		{"sessid v4", tcpPeer, fmt.Sprintf(`{"v":1,"id":3,"op":"sessid","args":{"local":%q,"remote":%q}}`, c0.Local, c0.Remote), "", &c0},
		{"sessid v6", userUnix, fmt.Sprintf(`{"v":1,"id":3,"op":"sessid","args":{"local":%q,"remote":%q}}`, c1.Local, c1.Remote), "", &c1},
		{"sessid 4in6 unmapped", tcpPeer, fmt.Sprintf(`{"v":1,"id":3,"op":"sessid","args":{"local":"[::ffff:%s]:%d","remote":"[::ffff:%s]:%d"}}`,
			c0.Local.Addr(), c0.Local.Port(), c0.Remote.Addr(), c0.Remote.Port()), "", &c0},
		{"sessid plain", tcpPeer, `{"v":1,"id":4,"op":"sessid","args":{"local":"192.0.2.1:5555","remote":"192.0.2.9:80"}}`, ctl.CodeNoSession, nil},
		{"sessid unknown", tcpPeer, `{"v":1,"id":5,"op":"sessid","args":{"local":"192.0.2.1:1","remote":"192.0.2.9:80"}}`, ctl.CodeNotFound, nil},
		{"sessid missing args", tcpPeer, `{"v":1,"id":6,"op":"sessid"}`, ctl.CodeBadRequest, nil},
		{"sessid bad addr", tcpPeer, `{"v":1,"id":6,"op":"sessid","args":{"local":"nope","remote":"192.0.2.9:80"}}`, ctl.CodeBadRequest, nil},
		{"sessid zero addr", tcpPeer, `{"v":1,"id":6,"op":"sessid","args":{"local":"","remote":"192.0.2.9:80"}}`, ctl.CodeBadRequest, nil},
		{"sessid unknown field", tcpPeer, `{"v":1,"id":6,"op":"sessid","args":{"local":"192.0.2.1:1","remote":"192.0.2.9:80","x":1}}`, ctl.CodeBadRequest, nil},
		{"rules.list", tcpPeer, `{"v":1,"id":7,"op":"rules.list"}`, "", &ctlproto.RulesResult[ctl.Rule]{Rules: []ctl.Rule{{Port: 443, Side: "local", Mode: "opportunistic"}}}},
		{"rules.add root", rootUnix, `{"v":1,"id":8,"op":"rules.add","args":` + ruleJSON + `}`, "", nil},
		{"rules.add duplicate", rootUnix, `{"v":1,"id":8,"op":"rules.add","args":{"port":443,"side":"local","mode":"opportunistic"}}`, ctl.CodeBadRequest, nil},
		{"rules.add user", userUnix, `{"v":1,"id":9,"op":"rules.add","args":` + ruleJSON + `}`, ctl.CodeForbidden, nil},
		{"rules.add tcp", tcpPeer, `{"v":1,"id":9,"op":"rules.add","args":` + ruleJSON + `}`, ctl.CodeForbidden, nil},
		{"rules.add no creds", ctlserver.Peer{Network: "unix"}, `{"v":1,"id":9,"op":"rules.add","args":` + ruleJSON + `}`, ctl.CodeForbidden, nil},
		{"rules.add in-process", ctlserver.Peer{}, `{"v":1,"id":9,"op":"rules.add","args":` + ruleJSON + `}`, ctl.CodeForbidden, nil},
		{"rules.add bad port", rootUnix, `{"v":1,"id":10,"op":"rules.add","args":{"port":0,"side":"local","mode":"required"}}`, ctl.CodeBadRequest, nil},
		{"rules.add port overflow", rootUnix, `{"v":1,"id":10,"op":"rules.add","args":{"port":70000,"side":"local","mode":"required"}}`, ctl.CodeBadRequest, nil},
		{"rules.add bad side", rootUnix, `{"v":1,"id":10,"op":"rules.add","args":{"port":1,"side":"up","mode":"required"}}`, ctl.CodeBadRequest, nil},
		{"rules.add bad mode", rootUnix, `{"v":1,"id":10,"op":"rules.add","args":{"port":1,"side":"local","mode":"maybe"}}`, ctl.CodeBadRequest, nil},
		{"rules.add host bits", rootUnix, `{"v":1,"id":10,"op":"rules.add","args":{"port":1,"side":"local","prefix":"10.1.2.3/8","mode":"required"}}`, ctl.CodeBadRequest, nil},
		{"rules.add bad prefix", rootUnix, `{"v":1,"id":10,"op":"rules.add","args":{"port":1,"side":"local","prefix":"10/8","mode":"required"}}`, ctl.CodeBadRequest, nil},
		{"rules.del root", rootUnix, `{"v":1,"id":11,"op":"rules.del","args":{"port":443,"side":"local","mode":"opportunistic"}}`, "", nil},
		{"rules.del missing", rootUnix, `{"v":1,"id":11,"op":"rules.del","args":{"port":444,"side":"local","mode":"opportunistic"}}`, ctl.CodeNotFound, nil},
		{"rules.del tcp", tcpPeer, `{"v":1,"id":11,"op":"rules.del","args":{"port":443,"side":"local","mode":"opportunistic"}}`, ctl.CodeForbidden, nil},
		{"cache.flush root", rootUnix, fmt.Sprintf(`{"v":1,"id":17,"op":"cache.flush","args":{"local":%q,"remote":%q}}`, c0.Local, c0.Remote), "", &ctlproto.CacheFlushResult{Flushed: 1}},
		{"cache.flush nothing cached", rootUnix, fmt.Sprintf(`{"v":1,"id":17,"op":"cache.flush","args":{"local":%q,"remote":%q}}`, c1.Local, c1.Remote), "", &ctlproto.CacheFlushResult{Flushed: 0}},
		{"cache.flush 4in6 unmapped", rootUnix, fmt.Sprintf(`{"v":1,"id":17,"op":"cache.flush","args":{"local":"[::ffff:%s]:%d","remote":"[::ffff:%s]:%d"}}`,
			c0.Local.Addr(), c0.Local.Port(), c0.Remote.Addr(), c0.Remote.Port()), "", &ctlproto.CacheFlushResult{Flushed: 1}},
		{"cache.flush unknown", rootUnix, `{"v":1,"id":17,"op":"cache.flush","args":{"local":"192.0.2.1:1","remote":"192.0.2.9:80"}}`, ctl.CodeNotFound, nil},
		{"cache.flush user", userUnix, fmt.Sprintf(`{"v":1,"id":18,"op":"cache.flush","args":{"local":%q,"remote":%q}}`, c0.Local, c0.Remote), ctl.CodeForbidden, nil},
		{"cache.flush tcp", tcpPeer, fmt.Sprintf(`{"v":1,"id":18,"op":"cache.flush","args":{"local":%q,"remote":%q}}`, c0.Local, c0.Remote), ctl.CodeForbidden, nil},
		{"cache.flush no creds", ctlserver.Peer{Network: "unix"}, fmt.Sprintf(`{"v":1,"id":18,"op":"cache.flush","args":{"local":%q,"remote":%q}}`, c0.Local, c0.Remote), ctl.CodeForbidden, nil},
		{"cache.flush missing args", rootUnix, `{"v":1,"id":19,"op":"cache.flush"}`, ctl.CodeBadRequest, nil},
		{"cache.flush bad addr", rootUnix, `{"v":1,"id":19,"op":"cache.flush","args":{"local":"x","remote":"192.0.2.9:80"}}`, ctl.CodeBadRequest, nil},
		{"cache.flush unknown field", rootUnix, `{"v":1,"id":19,"op":"cache.flush","args":{"local":"192.0.2.1:1","remote":"192.0.2.9:80","all":true}}`, ctl.CodeBadRequest, nil},
		{"rules.add options", rootUnix, `{"v":1,"id":20,"op":"rules.add","args":{"port":8443,"side":"local","mode":"required","options":["noresume","appaware"]}}`, "", nil},
		{"rules.add bad option", rootUnix, `{"v":1,"id":20,"op":"rules.add","args":{"port":8443,"side":"local","mode":"required","options":["fast"]}}`, ctl.CodeBadRequest, nil},
		{"rules.add exclude option", rootUnix, `{"v":1,"id":20,"op":"rules.add","args":{"port":8443,"side":"local","mode":"exclude","options":["nocache"]}}`, ctl.CodeBadRequest, nil},
		{"unknown op", tcpPeer, `{"v":1,"id":12,"op":"reboot"}`, ctl.CodeBadRequest, nil},
		{"wrong version", tcpPeer, `{"v":2,"id":13,"op":"version"}`, ctl.CodeUnsupportedVersion, nil},
		{"missing version", tcpPeer, `{"id":14,"op":"version"}`, ctl.CodeUnsupportedVersion, nil},
		{"malformed", tcpPeer, `{"v":1,"id":15,"op":`, ctl.CodeBadRequest, nil},
		{"not an object", tcpPeer, `[1,2,3]`, ctl.CodeBadRequest, nil},
		{"trailing garbage", tcpPeer, `{"v":1,"id":16,"op":"version"} x`, ctl.CodeBadRequest, nil},
		{"string id", tcpPeer, `{"v":1,"id":"a","op":"version"}`, ctl.CodeBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := sampleBackend(2)
			s := newServer(t, b)
			reps, err := converse(t, s, tt.peer, tt.line+"\n")
			if err != nil {
				t.Fatalf("ServeConn: %v", err)
			}
			if len(reps) != 1 {
				t.Fatalf("got %d reply lines, want 1", len(reps))
			}
			r := reps[0]
			if r.OK == nil {
				t.Fatalf("reply has no ok member")
			}
			var req struct {
				ID uint64 `json:"id"`
			}
			if json.Unmarshal([]byte(tt.line), &req) == nil && r.ID != req.ID {
				t.Errorf("id = %d, want %d", r.ID, req.ID)
			}
			if tt.wantCode != "" {
				if *r.OK || r.Error == nil || r.Error.Code != tt.wantCode || r.Error.Message == "" {
					t.Fatalf("reply ok=%v error=%+v, want code %s with a message", *r.OK, r.Error, tt.wantCode)
				}
				if r.Result != nil {
					t.Errorf("error reply carries a result: %s", r.Result)
				}
				return
			}
			if !*r.OK || r.Error != nil {
				t.Fatalf("reply ok=%v error=%+v, want ok", *r.OK, r.Error)
			}
			if tt.want == nil {
				if r.Result != nil {
					t.Errorf("unexpected result %s", r.Result)
				}
				return
			}
			got := newOf(tt.want)
			if err := json.Unmarshal(r.Result, got); err != nil {
				t.Fatalf("result %s: %v", r.Result, err)
			}
			if diff := cmp.Diff(tt.want, got, cmpOpts); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

// newOf returns a pointer to a new zero value of v's pointed-to type.
func newOf(v any) any {
	switch v.(type) {
	case *ctl.VersionInfo:
		return new(ctl.VersionInfo)
	case *ctl.Status:
		return new(ctl.Status)
	case *ctl.Conn:
		return new(ctl.Conn)
	case *ctlproto.RulesResult[ctl.Rule]:
		return new(ctlproto.RulesResult[ctl.Rule])
	case *ctlproto.CacheFlushResult:
		return new(ctlproto.CacheFlushResult)
	}
	panic(fmt.Sprintf("newOf(%T)", v))
}

func TestRulesMutationsApply(t *testing.T) {
	b := sampleBackend(0)
	s := newServer(t, b)
	in := `{"v":1,"id":1,"op":"rules.add","args":{"port":22,"side":"both","prefix":"2001:db8::/32","mode":"exclude"}}
{"v":1,"id":2,"op":"rules.del","args":{"port":443,"side":"local","mode":"opportunistic"}}
{"v":1,"id":3,"op":"rules.list"}
`
	reps, err := converse(t, s, rootUnix, in)
	if err != nil || len(reps) != 3 {
		t.Fatalf("got %d replies, err %v", len(reps), err)
	}
	var rr ctlproto.RulesResult[ctl.Rule]
	if err := json.Unmarshal(reps[2].Result, &rr); err != nil {
		t.Fatal(err)
	}
	want := []ctl.Rule{{Port: 22, Side: ctl.SideBoth, Prefix: netip.MustParsePrefix("2001:db8::/32"), Mode: ctl.ModeExclude}}
	if diff := cmp.Diff(want, rr.Rules, cmpOpts); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
}

func TestSeveralRequestsPerConnection(t *testing.T) {
	s := newServer(t, sampleBackend(1))
	// Blank lines are skipped, a malformed line does not end the
	// conversation, and a final line without a newline is still served.
	in := "{\"v\":1,\"id\":1,\"op\":\"version\"}\n\n  \n{oops}\n{\"v\":1,\"id\":3,\"op\":\"netstat\"}\n{\"v\":1,\"id\":4,\"op\":\"status\"}"
	reps, err := converse(t, s, tcpPeer, in)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	var oks []bool
	for _, r := range reps {
		ids = append(ids, r.ID)
		oks = append(oks, r.OK != nil && *r.OK)
	}
	// version, bad request (id 0), 2 netstat items + final, status.
	if diff := cmp.Diff([]uint64{1, 0, 3, 3, 3, 4}, ids, cmpOpts); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bool{true, false, false, false, true, true}, oks, cmpOpts); diff != "" {
		t.Errorf("ok flags (-want +got):\n%s", diff)
	}
}

func TestNetstatStreamsEverything(t *testing.T) {
	const n = 10000
	b := sampleBackend(0)
	var conns []ctl.Conn
	for i := range n {
		conns = append(conns, ctltest.SampleConn(i))
	}
	b.SetConns(conns)
	s := newServer(t, b)
	reps, err := converse(t, s, tcpPeer, `{"v":1,"id":99,"op":"netstat"}`+"\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != n+1 {
		t.Fatalf("got %d lines, want %d items + 1 final", len(reps), n)
	}
	for i, r := range reps[:n] {
		if r.OK != nil || r.ID != 99 {
			t.Fatalf("item %d: ok=%v id=%d", i, r.OK, r.ID)
		}
		// Items arrive in order and carry exactly the connection's JSON.
		want, err := json.Marshal(conns[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want, r.Item) {
			t.Fatalf("item %d = %s, want %s", i, r.Item, want)
		}
	}
	last := reps[n]
	var res ctlproto.NetstatResult
	if last.OK == nil || !*last.OK || json.Unmarshal(last.Result, &res) != nil || res.Count != n {
		t.Fatalf("final line: %+v (%s)", last, last.Result)
	}
}

func TestOversizedLine(t *testing.T) {
	s := newServer(t, sampleBackend(0))
	big := `{"v":1,"id":1,"op":"version","pad":"` + strings.Repeat("x", ctlproto.MaxRequestLine) + `"}`
	for _, tc := range []struct {
		name, in string
	}{
		{"terminated", big + "\n" + `{"v":1,"id":2,"op":"version"}` + "\n"},
		{"unterminated", big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reps, err := converse(t, s, tcpPeer, tc.in)
			if !errors.Is(err, ctl.ErrTooLarge) {
				t.Errorf("ServeConn error = %v, want ErrTooLarge", err)
			}
			// One too_large reply, and the following request is not served.
			if len(reps) != 1 || reps[0].Error == nil || reps[0].Error.Code != ctl.CodeTooLarge {
				t.Fatalf("replies: %+v", reps)
			}
		})
	}
	// A line of exactly the limit is accepted.
	line := `{"v":1,"id":3,"op":"version","pad":"`
	line += strings.Repeat("y", ctlproto.MaxRequestLine-len(line)-2) + `"}`
	if len(line) != ctlproto.MaxRequestLine {
		t.Fatalf("test bug: len %d", len(line))
	}
	reps, err := converse(t, s, tcpPeer, line+"\n")
	if err != nil || len(reps) != 1 || reps[0].OK == nil || !*reps[0].OK {
		t.Fatalf("line at the limit: err %v replies %+v", err, reps)
	}
}

// panicBackend panics in Status.
type panicBackend struct{ ctltest.Backend }

func (*panicBackend) Status(context.Context) (ctl.Status, error) { panic("boom") }

func TestBackendErrorsAndPanics(t *testing.T) {
	b := sampleBackend(1)
	b.SetErr(errors.New("disk on fire"))
	s := newServer(t, b)
	for _, op := range []string{"status", "netstat", "rules.list"} {
		reps, err := converse(t, s, tcpPeer, fmt.Sprintf(`{"v":1,"id":1,"op":%q}`+"\n", op))
		if err != nil || len(reps) != 1 || reps[0].Error == nil || reps[0].Error.Code != ctl.CodeInternal ||
			!strings.Contains(reps[0].Error.Message, "disk on fire") {
			t.Errorf("%s: err %v replies %+v", op, err, reps)
		}
	}
	ps := newServer(t, &panicBackend{})
	reps, err := converse(t, ps, tcpPeer, `{"v":1,"id":5,"op":"status"}`+"\n"+`{"v":1,"id":6,"op":"version"}`+"\n")
	if err != nil || len(reps) != 2 || reps[0].Error == nil || reps[0].Error.Code != ctl.CodeInternal || reps[0].ID != 5 ||
		reps[1].OK == nil || !*reps[1].OK {
		t.Fatalf("after panic: err %v replies %+v", err, reps)
	}
}

// failWriter fails after n bytes, like a client that went away mid-reply.
type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errors.New("broken pipe")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteErrorEndsOnlyThatClient(t *testing.T) {
	b := sampleBackend(5000)
	s := newServer(t, b)
	err := s.ServeConn(context.Background(), strings.NewReader(`{"v":1,"id":1,"op":"netstat"}`+"\n"), &failWriter{n: 1000}, tcpPeer)
	if err == nil {
		t.Fatal("ServeConn returned nil after a write error")
	}
	// The server is still fine for others.
	reps, err := converse(t, s, tcpPeer, `{"v":1,"id":2,"op":"version"}`+"\n")
	if err != nil || len(reps) != 1 || !*reps[0].OK {
		t.Fatalf("next client: %v %+v", err, reps)
	}
}

func TestErrorIs(t *testing.T) {
	tests := []struct {
		code ctl.Code
		want []error
	}{
		{ctl.CodeNotFound, []error{ctl.ErrNotFound}},
		{ctl.CodeNoSession, []error{ctl.ErrNotEncrypted, ctl.ErrNotEncrypted}},
		{ctl.CodeForbidden, []error{ctl.ErrForbidden}},
		{ctl.CodeBadRequest, []error{ctl.ErrBadRequest}},
		{ctl.CodeTooLarge, []error{ctl.ErrTooLarge}},
		{ctl.CodeUnsupportedVersion, []error{ctl.ErrUnsupportedVersion}},
		{ctl.CodeBusy, []error{ctl.ErrBusy}},
		{ctl.CodeInternal, []error{ctl.ErrInternal}},
	}
	all := []error{ctl.ErrNotFound, ctl.ErrNotEncrypted, ctl.ErrNotEncrypted, ctl.ErrForbidden, ctl.ErrBadRequest,
		ctl.ErrTooLarge, ctl.ErrUnsupportedVersion, ctl.ErrBusy, ctl.ErrInternal, ctl.ErrDaemonUnavailable}
	for _, tt := range tests {
		err := fmt.Errorf("wrapped: %w", &ctl.Error{Code: tt.code, Message: "m"})
		for _, s := range all {
			want := false
			for _, w := range tt.want {
				want = want || w == s
			}
			if got := errors.Is(err, s); got != want {
				t.Errorf("errors.Is(%s, %v) = %v, want %v", tt.code, s, got, want)
			}
		}
	}
}
