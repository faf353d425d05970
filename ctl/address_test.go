package ctl_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/internal/ctlproto"
)

func TestProtocolVersion(t *testing.T) {
	if ctl.ProtocolVersion != ctlproto.ProtocolVersion {
		t.Fatalf("ctl speaks version %d, the wire package %d", ctl.ProtocolVersion, ctlproto.ProtocolVersion)
	}
}

func TestParseAddress(t *testing.T) {
	v4 := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		in   string
		want ctl.Address
		err  bool
	}{
		{"", ctl.Address{Network: "unix", Path: ctl.DefaultAddress}, false},
		{"/run/tcpcrypt/ctl", ctl.Address{Network: "unix", Path: "/run/tcpcrypt/ctl"}, false},
		{"./ctl", ctl.Address{Network: "unix", Path: "./ctl"}, false},
		{"unix:ctl", ctl.Address{Network: "unix", Path: "ctl"}, false},
		{"unix:", ctl.Address{}, true},
		{":7777", ctl.Address{Network: "tcp", Port: 7777}, false},
		{":0", ctl.Address{Network: "tcp", Port: 0}, false},
		{"localhost:7777", ctl.Address{Network: "tcp", Port: 7777}, false},
		{"127.0.0.1:7777", ctl.Address{Network: "tcp", Host: v4, Port: 7777}, false},
		{"127.1.2.3:1", ctl.Address{Network: "tcp", Host: netip.MustParseAddr("127.1.2.3"), Port: 1}, false},
		{"[::1]:7777", ctl.Address{Network: "tcp", Host: netip.IPv6Loopback(), Port: 7777}, false},
		{"[::ffff:127.0.0.1]:7777", ctl.Address{Network: "tcp", Host: v4, Port: 7777}, false},
		{"0.0.0.0:7777", ctl.Address{}, true},
		{"[::]:7777", ctl.Address{}, true},
		{"192.0.2.1:7777", ctl.Address{}, true},
		{"[fe80::1%lo]:7777", ctl.Address{}, true},
		{"example.com:7777", ctl.Address{}, true},
		{":65536", ctl.Address{}, true},
		{":-1", ctl.Address{}, true},
		{"ctl", ctl.Address{}, true},
		{"7777", ctl.Address{}, true},
	}
	for _, tt := range tests {
		got, err := ctl.ParseAddress(tt.in)
		if tt.err {
			if err == nil || !errors.Is(err, ctl.ErrBadAddress) {
				t.Errorf("ParseAddress(%q) = %+v, %v; want ErrBadAddress", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseAddress(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		again, err := ctl.ParseAddress(got.String())
		if err != nil || again != got {
			t.Errorf("round trip of %q via %q = %+v, %v", tt.in, got.String(), again, err)
		}
	}
}

// FuzzParseAddress: no panics, and anything accepted round-trips through
// String and is a unix path or loopback TCP.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"", "/run/tcpcrypt/ctl", "unix:x", ":1", "[::1]:2", "127.0.0.1:3", "localhost:4", "0.0.0.0:1", "[::ffff:127.0.0.1]:5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ctl.ParseAddress(s)
		if err != nil {
			if !errors.Is(err, ctl.ErrBadAddress) {
				t.Fatalf("error %v does not wrap ErrBadAddress", err)
			}
			return
		}
		switch a.Network {
		case "unix":
			if a.Path == "" {
				t.Fatalf("%q: empty path", s)
			}
		case "tcp":
			if a.Host.IsValid() && !a.Host.IsLoopback() {
				t.Fatalf("%q: non-loopback host %s", s, a.Host)
			}
		default:
			t.Fatalf("%q: network %q", s, a.Network)
		}
		b, err := ctl.ParseAddress(a.String())
		if err != nil || b != a {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, a, a.String(), b, err)
		}
	})
}
