package metrics

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestServer(t *testing.T) {
	reg, err := NewRegistry(Options{Source: newFake(), QueueFile: "testdata/nfnetlink_queue", Queues: []uint16{7463}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Listen("127.0.0.1:0", Handler(reg, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	}()
	base := "http://" + s.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second}

	tests := []struct {
		method, path string
		status       int
		contains     string
	}{
		{"GET", "/metrics", 200, `tcpcrypt_connections_total{outcome="encrypted",reason="fresh"} 2`},
		{"GET", "/metrics", 200, `tcpcrypt_kernel_queue_user_dropped_total{queue="7463"} 9`},
		{"GET", "/metrics", 200, "go_goroutines"},
		{"HEAD", "/metrics", 200, ""},
		{"GET", "/", 404, ""},
		{"GET", "/metrics/", 404, ""},
		{"GET", "/debug/pprof/", 404, ""},
		{"POST", "/metrics", 405, ""},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, base+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
		}
		if tt.contains != "" && !strings.Contains(string(body), tt.contains) {
			t.Errorf("%s %s: body lacks %q:\n%s", tt.method, tt.path, tt.contains, body)
		}
		if tt.status == 200 && tt.method == "GET" && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("content type %q", resp.Header.Get("Content-Type"))
		}
	}
}

// After its context ends the server stops listening.
func TestServerStops(t *testing.T) {
	reg, err := NewRegistry(Options{Source: newFake(), QueueFile: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Listen("127.0.0.1:0", Handler(reg, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Serve(ctx); err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
	c := &http.Client{Timeout: 2 * time.Second}
	if resp, err := c.Get("http://" + s.Addr().String() + Path); err == nil {
		resp.Body.Close()
		t.Error("server still answers after its context ended")
	}
}

func TestListenError(t *testing.T) {
	if _, err := Listen("256.0.0.1:1", http.NotFoundHandler()); err == nil {
		t.Error("Listen on a bad address succeeded")
	}
}

// ListenPprof serves the profiles next to /metrics, with room for a CPU
// profile of the default 30 seconds.
func TestServerPprof(t *testing.T) {
	reg, err := NewRegistry(Options{Source: newFake(), QueueFile: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := ListenPprof("127.0.0.1:0", Handler(reg, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if s.srv.WriteTimeout <= 30*time.Second {
		t.Errorf("write timeout %v leaves no room for a 30 s CPU profile", s.srv.WriteTimeout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tt := range []struct {
		path     string
		status   int
		contains string
	}{
		{PprofPath + "cmdline", 200, os.Args[0]},
		{PprofPath, 200, "goroutine"},
		{PprofPath + "goroutine?debug=1", 200, "TestServerPprof"},
		{Path, 200, "go_goroutines"},
		{"/", 404, ""},
	} {
		resp, err := client.Get("http://" + s.Addr().String() + tt.path)
		if err != nil {
			t.Fatalf("GET %s: %v", tt.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.contains) {
			t.Errorf("GET %s = %d, want %d and %q in:\n%.300s", tt.path, resp.StatusCode, tt.status, tt.contains, body)
		}
	}
}
