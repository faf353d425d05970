package libtcpcrypt_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/internal/testenv"
)

// api is the whole exported interface of the shared library.
var api = []string{"tcpcrypt_getsessid", "tcpcrypt_getsockopt", "tcpcrypt_setparam", "tcpcrypt_setsockopt"}

// TestInstall runs `make install-libtcpcrypt DESTDIR=...` and checks what it
// placed: the header, libtcpcrypt.so.0.1.0 with soname libtcpcrypt.so.0
// exporting exactly the API (versioned LIBTCPCRYPT_0), the .so.0 and .so
// links, the static archive, the pkg-config file and the man page. A
// program then builds with `pkg-config --cflags --libs` against the shared
// library and, with `pkg-config --static`, against the archive, and both run.
func TestInstall(t *testing.T) {
	mk := testenv.LookPath(t, "make", "Debian: apt-get install make")
	cc := gcc(t)
	pc := testenv.LookPath(t, "pkg-config", "Debian: apt-get install pkg-config")
	dir := t.TempDir()
	dest := filepath.Join(dir, "dest")
	cmd := exec.Command(mk, "--no-print-directory", "install-libtcpcrypt", "DESTDIR="+dest, "PREFIX=/usr",
		"BUILDDIR="+filepath.Join(dir, "build"))
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install-libtcpcrypt: %v\n%s", err, out)
	}
	for _, f := range []string{"usr/include/tcpcrypt/tcpcrypt.h", "usr/lib/libtcpcrypt.so.0.1.0", "usr/lib/libtcpcrypt.a",
		"usr/lib/pkgconfig/libtcpcrypt.pc", "usr/share/man/man3/libtcpcrypt.3"} {
		if st, err := os.Stat(filepath.Join(dest, f)); err != nil || !st.Mode().IsRegular() {
			t.Errorf("%s: %v", f, err)
		}
	}
	for link, target := range map[string]string{"libtcpcrypt.so.0": "libtcpcrypt.so.0.1.0", "libtcpcrypt.so": "libtcpcrypt.so.0"} {
		if got, err := os.Readlink(filepath.Join(dest, "usr/lib", link)); err != nil || got != target {
			t.Errorf("%s -> %q (%v), want -> %s", link, got, err, target)
		}
	}

	f, err := elf.Open(filepath.Join(dest, "usr/lib/libtcpcrypt.so.0.1.0"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if soname, err := f.DynString(elf.DT_SONAME); err != nil || !slices.Equal(soname, []string{"libtcpcrypt.so.0"}) {
		t.Errorf("soname %v (%v), want libtcpcrypt.so.0", soname, err)
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	var exported []string
	for _, s := range syms {
		bind := elf.ST_BIND(s.Info)
		if s.Section == elf.SHN_UNDEF || s.Section == elf.SHN_ABS || (bind != elf.STB_GLOBAL && bind != elf.STB_WEAK) {
			continue // imported, the version node, or local
		}
		exported = append(exported, s.Name)
		if s.Version != "LIBTCPCRYPT_0" {
			t.Errorf("%s has version %q, want LIBTCPCRYPT_0", s.Name, s.Version)
		}
	}
	slices.Sort(exported)
	if !slices.Equal(exported, api) {
		t.Errorf("exported symbols %v, want exactly %v", exported, api)
	}

	pkgEnv := append(os.Environ(), "PKG_CONFIG_PATH="+filepath.Join(dest, "usr/lib/pkgconfig"), "PKG_CONFIG_SYSROOT_DIR="+dest)
	pkgconfig := func(args ...string) []string {
		cmd := exec.Command(pc, append(args, "libtcpcrypt")...)
		cmd.Env = pkgEnv
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("pkg-config %v: %v", args, err)
		}
		return strings.Fields(string(out))
	}
	if v := pkgconfig("--modversion"); !slices.Equal(v, []string{"0.1.0"}) {
		t.Errorf("pkg-config --modversion: %v", v)
	}
	libdir := filepath.Join(dest, "usr/lib")
	for _, link := range []struct {
		name  string
		flags []string
	}{
		{"shared", append(pkgconfig("--cflags", "--libs"), "-Wl,-rpath,"+libdir)},
		// -l: finds the archive by name; -Wl,-Bstatic makes the linker take it.
		{"static", append(append(pkgconfig("--cflags"), "-Wl,-Bstatic"), append(pkgconfig("--static", "--libs"), "-Wl,-Bdynamic")...)},
	} {
		t.Run(link.name, func(t *testing.T) {
			prog := filepath.Join(dir, "tcprobe-"+link.name)
			args := append([]string{"-std=c99", "-Wall", "-Werror", "-o", prog, "tests/tcprobe.c"}, link.flags...)
			if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
				t.Fatalf("%s %v: %v\n%s", cc, args, err, out)
			}
			ef, err := elf.Open(prog)
			if err != nil {
				t.Fatal(err)
			}
			libs, _ := ef.ImportedLibraries()
			ef.Close()
			if dynamic := slices.Contains(libs, "libtcpcrypt.so.0"); dynamic != (link.name == "shared") {
				t.Errorf("needed libraries %v", libs)
			}
			out, err := exec.Command(prog, "unconnected").Output()
			if err != nil || !strings.Contains(string(out), `"sockopt_errno":"ENOTCONN"`) {
				t.Errorf("%s unconnected: %v\n%s", prog, err, out)
			}
		})
	}
}

// TestManPage: libtcpcrypt(3) formats without warnings, names every
// function and option of the header, and documents every errno the tests
// check.
func TestManPage(t *testing.T) {
	page, err := os.ReadFile("../man/man3/libtcpcrypt.3")
	if err != nil {
		t.Fatal(err)
	}
	header, err := os.ReadFile("include/tcpcrypt/tcpcrypt.h")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(page), `\-`, "-")
	for _, name := range regexp.MustCompile(`\b(tcpcrypt_[a-z]+|TCP_CRYPT_[A-Z_]+|TCPCRYPT_[A-Z_]+)\b`).FindAllString(string(header), -1) {
		if name == "TCPCRYPT_TCPCRYPT_H" || name == "TCPCRYPT_CTL_ENV" {
			continue
		}
		if !strings.Contains(text, name) {
			t.Errorf("the man page does not mention %s", name)
		}
	}
	_, errs, ok := strings.Cut(text, ".SH ERRORS")
	if !ok {
		t.Fatal("no ERRORS section")
	}
	errs, _, _ = strings.Cut(errs, "\n.SH ")
	for _, e := range []string{"ENOTCONN", "ENOENT", "EINPROGRESS", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET", "EPROTO", "EAGAIN", "EPERM",
		"EACCES", "EIO", "ENOPROTOOPT", "ERANGE", "EINVAL", "EBADF"} {
		if !regexp.MustCompile(`(?m)^\.BR? ` + e + `\b`).MatchString(errs) {
			t.Errorf("ERRORS does not document %s", e)
		}
	}
	groff := testenv.LookPath(t, "groff", "apt-get install groff-base")
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", "../man/man3/libtcpcrypt.3")
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff: %v\n%s", err, out)
	}
}
