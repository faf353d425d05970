package daemon

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
	"golang.org/x/sys/unix"
)

func TestKeyLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.log")
	os.WriteFile(path, []byte("earlier line\n"), 0o644)
	k, err := OpenKeyLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	k.Log(KeyLogES, []byte{0x01, 0xab}, []byte{0xff})
	k.Log(KeyLogSS, []byte{0x23}, nil)
	k.Log("BAD KIND", []byte{1}, []byte{2}) // ignored
	k.Log("", []byte{1}, []byte{2})         // ignored
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				k.Log(KeyLogSS, []byte{byte(i)}, make([]byte, 32))
			}
		})
	}
	wg.Wait()
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	k.Log(KeyLogES, []byte{1}, []byte{2}) // after Close: ignored
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3+800 {
		t.Fatalf("%d lines, want %d", len(lines), 803)
	}
	if lines[0] != "earlier line" || lines[1] != "TCPCRYPT_ES 01ab ff" || lines[2] != "TCPCRYPT_SS 23 " {
		t.Errorf("first lines %q", lines[:3])
	}
	for _, l := range lines[3:] {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != KeyLogSS || len(f[1]) != 2 || len(f[2]) != 64 {
			t.Fatalf("interleaved or malformed line %q", l)
		}
	}
	if k.Errors() != 0 {
		t.Errorf("Errors = %d", k.Errors())
	}
	var nilK *KeyLog
	nilK.Log(KeyLogES, nil, nil)
	if nilK.Close() != nil {
		t.Error("nil Close failed")
	}
}

// TestOpenKeyLogAccepts: a new file is created 0600; an existing file of ours
// is appended to, and a wider mode is narrowed to 0600; the descriptor is
// close-on-exec and blocking.
func TestOpenKeyLogAccepts(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name    string
		prepare func(path string)
		before  string
	}{
		{"new", func(string) {}, ""},
		{"existing 0600", func(p string) { writeFile(t, p, "old\n", 0o600) }, "old\n"},
		{"existing 0644", func(p string) { writeFile(t, p, "old\n", 0o644) }, "old\n"},
		{"existing 0400", func(p string) { writeFile(t, p, "", 0o400) }, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "existing 0400" && os.Getuid() != 0 {
				t.Skip("a 0400 file is writable only by root, which the daemon runs as")
			}
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			tt.prepare(path)
			k, err := OpenKeyLog(path)
			if err != nil {
				t.Fatalf("OpenKeyLog: %v", err)
			}
			fd := int(k.f.Fd())
			if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
				t.Errorf("F_GETFD = %#x, %v; want FD_CLOEXEC", fl, err)
			}
			if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != 0 || fl&unix.O_APPEND == 0 {
				t.Errorf("F_GETFL = %#x, %v; want O_APPEND without O_NONBLOCK", fl, err)
			}
			k.Log(KeyLogSS, []byte{1}, []byte{2})
			if err := k.Close(); err != nil || k.Errors() != 0 {
				t.Fatalf("Close = %v, Errors = %d", err, k.Errors())
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != 0o600 {
				t.Errorf("mode %v, want -rw-------", fi.Mode())
			}
			if b, _ := os.ReadFile(path); string(b) != tt.before+"TCPCRYPT_SS 01 02\n" {
				t.Errorf("contents %q", b)
			}
		})
	}
}

// TestOpenKeyLogRefuses: symbolic links, other files than regular ones,
// files of another user and files with several links are refused with an
// error naming the file and the problem, and left as they were.
func TestOpenKeyLogRefuses(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	writeFile(t, target, "precious\n", 0o644)
	tests := []struct {
		name      string
		root      bool // needs root (chown)
		make      func(path string)
		want      string
		unchanged string // a file whose contents and mode must not change
	}{
		{name: "symlink", make: func(p string) { must(t, os.Symlink(target, p)) }, want: "symbolic link", unchanged: target},
		{name: "dangling symlink", make: func(p string) { must(t, os.Symlink(filepath.Join(dir, "nowhere"), p)) }, want: "symbolic link"},
		{name: "hard link", make: func(p string) { must(t, os.Link(target, p)) }, want: "2 hard links", unchanged: target},
		{name: "directory", make: func(p string) { must(t, os.Mkdir(p, 0o700)) }, want: "directory"},
		{name: "fifo", make: func(p string) { must(t, unix.Mkfifo(p, 0o600)) }, want: "fifo"},
		{name: "fifo with a reader", make: func(p string) {
			must(t, unix.Mkfifo(p, 0o600))
			r, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK, 0)
			must(t, err)
			t.Cleanup(func() { r.Close() })
		}, want: "fifo"},
		{name: "socket", make: func(p string) {
			l, err := net.Listen("unix", p)
			must(t, err)
			t.Cleanup(func() { l.Close() })
		}, want: "socket"},
		{name: "other owner", root: true, make: func(p string) {
			writeFile(t, p, "theirs\n", 0o644)
			must(t, os.Chown(p, 65534, 65534))
		}, want: "owned by uid 65534"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root {
				testenv.RequireRoot(t, "a file owned by another uid")
			}
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			tt.make(path)
			var before []byte
			var beforeMode os.FileMode
			check := tt.unchanged
			if check == "" {
				check = path
			}
			if fi, err := os.Lstat(check); err == nil && fi.Mode().IsRegular() {
				before, _ = os.ReadFile(check)
				beforeMode = fi.Mode()
			}
			done := make(chan error, 1)
			go func() {
				k, err := OpenKeyLog(path)
				if err == nil {
					k.Close()
				}
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("OpenKeyLog blocked")
			}
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("OpenKeyLog(%s) = %v; want an error naming the file and %q", tt.name, err, tt.want)
			}
			if before != nil {
				fi, _ := os.Lstat(check)
				if after, _ := os.ReadFile(check); string(after) != string(before) || fi.Mode() != beforeMode {
					t.Errorf("%s changed: %q %v, was %q %v", check, after, fi.Mode(), before, beforeMode)
				}
			}
		})
	}
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	must(t, os.WriteFile(path, []byte(data), mode))
	must(t, os.Chmod(path, mode)) // not subject to the umask
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
