package wiretap

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/internal/netns"
)

// TestTapLoopback captures a real connection on the loopback interface of a
// fresh namespace (root only).
func TestTapLoopback(t *testing.T) {
	ns := netns.NewForTest(t)
	var (
		tap *Tap
		ln  net.Listener
	)
	err := ns.Do(func() error {
		var err error
		if tap, err = Open("lo", Filter{Port: 5001, Marker: []byte("MARKER"), Samples: 2, SampleLen: 8, InboundOnly: true}); err != nil {
			return err
		}
		ln, err = net.Listen("tcp", "127.0.0.1:5001")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(io.Discard, c)
		done <- err
	}()
	var c net.Conn
	if err := ns.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", "127.0.0.1:5001", 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, strings.Repeat("some MARKER text ", 100)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not finish")
	}
	time.Sleep(50 * time.Millisecond)
	st, err := tap.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if st.SYNs != 2 || st.MarkerHits != 1 || st.PayloadBytes != 1700 || len(st.Samples) != 1 || string(st.Samples[0].Head) != "some MAR" {
		t.Errorf("stats: %v, samples %d", st, len(st.Samples))
	}
	if _, err := tap.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}
