package cliutil

import (
	"errors"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestControlAddress(t *testing.T) {
	tests := []struct {
		address, netns string
		want           string
		wantErr        error
	}{
		{"", "", "", nil},
		{"/tmp/x.sock", "", "/tmp/x.sock", nil},
		{":7777", "", ":7777", nil},
		{"", "blue", "/run/tcpcrypt/blue/ctl", nil},
		{"", "ns-1.a_b", "/run/tcpcrypt/ns-1.a_b/ctl", nil},
		{"", "../etc", "", ErrNetnsName},
		{"", "a/b", "", ErrNetnsName},
		{"", "..", "", ErrNetnsName},
		{"", ".", "", ErrNetnsName},
	}
	for _, tt := range tests {
		got, err := ControlAddress(tt.address, tt.netns)
		if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("ControlAddress(%q, %q) = %q, %v; want %q, %v", tt.address, tt.netns, got, err, tt.want, tt.wantErr)
		}
	}
	if _, err := ControlAddress("/x", "blue"); err == nil || err.Error() != "--address and --netns exclude each other" {
		t.Errorf("both given: %v", err)
	}
}

func TestUseVersionFlag(t *testing.T) {
	UseVersionFlag()
	UseVersionFlag()
	f, ok := cli.VersionFlag.(*cli.BoolFlag)
	if !ok || f.Name != "version" || len(f.Aliases) != 1 || f.Aliases[0] != "V" {
		t.Fatalf("VersionFlag = %#v, want --version with the one alias -V", cli.VersionFlag)
	}
}
