package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/nfq"
)

func TestReadiness(t *testing.T) {
	var r Readiness
	if ok, why := r.State(); ok || why != "starting" {
		t.Errorf("zero Readiness = %v %q, want false \"starting\"", ok, why)
	}
	r.SetReady()
	if ok, why := r.State(); !ok || why != "" {
		t.Errorf("after SetReady = %v %q, want true", ok, why)
	}
	r.SetNotReady("stopping")
	if ok, why := r.State(); ok || why != "stopping" {
		t.Errorf("after SetNotReady = %v %q, want false \"stopping\"", ok, why)
	}
	var nilR *Readiness
	if ok, _ := nilR.State(); ok {
		t.Error("nil Readiness says ready")
	}
}

func TestProbe(t *testing.T) {
	errGone := errors.New("table inet tcpcrypt is not in the kernel")
	tests := []struct {
		name   string
		ready  bool
		live   error
		queues []uint16
		file   string
		engErr error
		want   string // "" = ready; else a part of the reason
	}{
		{name: "ready", ready: true, queues: []uint16{7463, 7464}},
		{name: "starting", queues: []uint16{7463}, want: "not ready: starting"},
		{name: "table gone", ready: true, live: errGone, queues: []uint16{7463}, want: "not ready: table inet tcpcrypt"},
		{name: "queue unbound", ready: true, queues: []uint16{7463, 7465}, want: "queue 7465 is not bound"},
		{name: "no queue file", ready: true, queues: []uint16{7463}, file: "/nonexistent/q", want: "no queue is bound"},
		{name: "workers stopped", ready: true, queues: []uint16{7463}, engErr: nfq.ErrNotRunning, want: "the engines do not answer: nfq: not running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := new(Readiness)
			if tt.ready {
				r.SetReady()
			}
			f := newFake()
			f.err = tt.engErr
			file := tt.file
			if file == "" {
				file = "testdata/nfnetlink_queue"
			}
			o := Options{Source: f, Readiness: r, Queues: tt.queues, QueueFile: file}
			if tt.live != nil {
				o.Live = func(context.Context) error { return tt.live }
			}
			err := NewProbe(o).Check(context.Background())
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check = %v, want ready", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Check = %v, want an error containing %q", err, tt.want)
			case tt.want != "" && !errors.Is(err, ErrNotReady):
				t.Errorf("Check = %v, does not wrap ErrNotReady", err)
			}
			// The gauge says the same as the probe.
			got, _ := gather(t, NewCollector(o))
			want := 0.0
			if tt.want == "" {
				want = 1
			}
			if v, ok := got["tcpcrypt_ready{}"]; !ok || v != want {
				t.Errorf("tcpcrypt_ready = %v (present %v), want %v", v, ok, want)
			}
		})
	}
}

// get fetches path from h and returns status and body.
func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	b, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Code, string(b)
}

// sample returns the value of the one sample of the text exposition body
// whose name and labels are key (as printed), and whether there is one.
func sample(t *testing.T, body, key string) (string, bool) {
	t.Helper()
	var val string
	n := 0
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			val = v
			n++
		}
	}
	if n > 1 {
		t.Fatalf("%d samples %s", n, key)
	}
	return val, n == 1
}

// /readyz answers 503 with the reason until the daemon says it is ready,
// then 200; tcpcrypt_ready in /metrics flips with it; /livez is 200 all
// along.
func TestHandlerReadyz(t *testing.T) {
	r := new(Readiness)
	o := Options{Source: newFake(), Readiness: r, Queues: []uint16{7463}, QueueFile: "testdata/nfnetlink_queue"}
	reg, err := NewRegistry(o)
	if err != nil {
		t.Fatal(err)
	}
	h := Handler(reg, NewProbe(o), nil)
	readyGauge := func() float64 {
		code, body := get(t, h, "GET", "/metrics")
		if code != 200 {
			t.Fatalf("/metrics = %d", code)
		}
		v, ok := sample(t, body, "tcpcrypt_ready")
		if !ok {
			t.Fatalf("no tcpcrypt_ready sample:\n%s", body)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("tcpcrypt_ready %q: %v", v, err)
		}
		return f
	}

	code, body := get(t, h, "GET", ReadyPath)
	if code != http.StatusServiceUnavailable || body != "not ready: starting\n" {
		t.Errorf("before ready: %d %q, want 503 \"not ready: starting\"", code, body)
	}
	if v := readyGauge(); v != 0 {
		t.Errorf("tcpcrypt_ready = %v before ready, want 0", v)
	}
	if code, body := get(t, h, "GET", LivePath); code != 200 || body != "alive\n" {
		t.Errorf("%s = %d %q, want 200 alive", LivePath, code, body)
	}

	r.SetReady()
	if code, body := get(t, h, "GET", ReadyPath); code != 200 || body != "ready\n" {
		t.Errorf("after SetReady: %d %q, want 200 ready", code, body)
	}
	if v := readyGauge(); v != 1 {
		t.Errorf("tcpcrypt_ready = %v when ready, want 1", v)
	}

	r.SetNotReady("stopping")
	if code, body := get(t, h, "GET", ReadyPath); code != 503 || body != "not ready: stopping\n" {
		t.Errorf("after SetNotReady: %d %q", code, body)
	}
	if code, _ := get(t, h, "POST", ReadyPath); code != http.StatusMethodNotAllowed {
		t.Errorf("POST %s = %d, want 405", ReadyPath, code)
	}

	// Without a probe neither path is served.
	plain := Handler(reg, nil, nil)
	for _, p := range []string{ReadyPath, LivePath} {
		if code, _ := get(t, plain, "GET", p); code != 404 {
			t.Errorf("GET %s without a probe = %d, want 404", p, code)
		}
	}
}

// A reason of several lines (errors.Join) is answered on one line.
func TestHandlerReadyzOneLine(t *testing.T) {
	r := new(Readiness)
	r.SetReady()
	o := Options{Source: newFake(), Readiness: r,
		Live: func(context.Context) error { return errors.Join(errors.New("first"), errors.New("second")) }}
	reg, err := NewRegistry(o)
	if err != nil {
		t.Fatal(err)
	}
	code, body := get(t, Handler(reg, NewProbe(o), nil), "GET", ReadyPath)
	if code != 503 || body != "not ready: first; second\n" {
		t.Errorf("GET %s = %d %q, want 503 and one line", ReadyPath, code, body)
	}
}

func TestBuildInfo(t *testing.T) {
	bi := ReadBuildInfo("1.2.3")
	if bi.Version != "1.2.3" {
		t.Errorf("Version = %q, want the one given", bi.Version)
	}
	if bi.GoVersion != runtime.Version() {
		t.Errorf("GoVersion = %q, want %q", bi.GoVersion, runtime.Version())
	}
	if ReadBuildInfo("").Version == "" {
		t.Error("without a version, Version is empty (want the main module's)")
	}

	c := NewCollector(Options{Source: newFake(), QueueFile: "/nonexistent", Version: "1.2.3"})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var m *dto.Metric
	for _, mf := range mfs {
		if mf.GetName() == "tcpcrypt_build_info" {
			if len(mf.GetMetric()) != 1 {
				t.Fatalf("%d build_info series, want 1", len(mf.GetMetric()))
			}
			m = mf.GetMetric()[0]
		}
	}
	if m == nil {
		t.Fatal("no tcpcrypt_build_info")
	}
	if m.GetGauge().GetValue() != 1 {
		t.Errorf("build_info = %v, want 1", m.GetGauge().GetValue())
	}
	labels := map[string]string{}
	for _, lp := range m.GetLabel() {
		labels[lp.GetName()] = lp.GetValue()
	}
	want := map[string]string{"version": "1.2.3", "goversion": runtime.Version(), "revision": bi.Revision}
	if len(labels) != len(want) {
		t.Errorf("build_info labels %v, want exactly %v", labels, want)
	}
	for k, v := range want {
		if got, ok := labels[k]; !ok || got != v {
			t.Errorf("build_info label %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	// The text exposition carries it as served.
	_, body := get(t, Handler(reg, nil, nil), "GET", Path)
	key := `tcpcrypt_build_info{goversion="` + runtime.Version() + `",revision="` + bi.Revision + `",version="1.2.3"}`
	if v, ok := sample(t, body, key); !ok || v != "1" {
		t.Errorf("exposition lacks %s 1:\n%s", key, body)
	}
	// Neither the ready nor the rules gauge without their sources.
	got, _ := gather(t, c)
	for k := range got {
		if strings.HasPrefix(k, "tcpcrypt_ready") || strings.HasPrefix(k, "tcpcrypt_rules") {
			t.Errorf("%s exported without its source", k)
		}
	}
}

func TestCollectorRules(t *testing.T) {
	n := map[string]int{"config": 2, "state": 1, "internal": 0, "temporary": 0}
	c := NewCollector(Options{Source: newFake(), QueueFile: "/nonexistent", Rules: func() map[string]int { return n }})
	got, err := gather(t, c)
	if err != nil {
		t.Fatal(err)
	}
	for origin, want := range n {
		if v, ok := got[`tcpcrypt_rules{origin="`+origin+`"}`]; !ok || v != float64(want) {
			t.Errorf("tcpcrypt_rules{origin=%q} = %v (present %v), want %d", origin, v, ok, want)
		}
	}
	n["state"] = 5
	got, _ = gather(t, c)
	if v := got[`tcpcrypt_rules{origin="state"}`]; v != 5 {
		t.Errorf("tcpcrypt_rules{origin=\"state\"} = %v after a change, want 5", v)
	}
}

// Every family whose series are parts of a whole adds up under sum(): the
// connections' outcomes to the connections that finished negotiating, the
// encrypted ones to the handshakes, the aborts to the engine's aborts.
func TestCollectorSumsDoNotDoubleCount(t *testing.T) {
	f := newFake()
	f.ec.Fallbacks[engine.FallbackTableFull] = 3
	got, err := gather(t, newTestCollector(f))
	if err != nil {
		t.Fatal(err)
	}
	sum := func(prefix string) float64 {
		var s float64
		for k, v := range got {
			if strings.HasPrefix(k, prefix) {
				s += v
			}
		}
		return s
	}
	var fallbacks, aborts uint64
	for _, n := range f.ec.Fallbacks {
		fallbacks += n
	}
	for _, n := range f.ec.Aborts {
		aborts += n
	}
	checks := []struct {
		what string
		got  float64
		want uint64
	}{
		{"sum(connections_total)", sum("tcpcrypt_connections_total{"), f.ec.FlowsEncrypted + fallbacks},
		{`sum(connections_total{outcome="encrypted"})`, sum(`tcpcrypt_connections_total{outcome="encrypted"`), f.ec.FlowsEncrypted},
		{"sum(handshakes_total)", sum("tcpcrypt_handshakes_total{"), f.ec.FlowsEncrypted},
		{"sum(aborts_total)", sum("tcpcrypt_aborts_total{"), aborts},
		{"sum(flows_ended_total)", sum("tcpcrypt_flows_ended_total{"), f.ec.FlowsClosed + f.ec.FlowsEvicted + f.ec.FlowsExpired},
		{"sum(nfq_verdicts_total)", sum("tcpcrypt_nfq_verdicts_total{"), f.st.Accepted + f.st.Replaced + f.st.Dropped},
		// Truncation is a property of a packet that may also fail to
		// parse: it has a family of its own.
		{"sum(nfq_errors_total)", sum("tcpcrypt_nfq_errors_total{"),
			f.st.VerdictErrors + f.st.RecvErrors + f.st.ParseErrors + f.st.NoPacketID + f.st.EngineBugs},
	}
	for _, c := range checks {
		if c.got != float64(c.want) {
			t.Errorf("%s = %v, want %d", c.what, c.got, c.want)
		}
	}
}
