#!/usr/bin/env bash
# Builds a Debian package of tcpcryptd with dpkg-deb (no debhelper needed).
#
#   ./scripts/build-deb.sh [OUTDIR]      default OUTDIR: dist/
#
# Prints the path of the .deb on its last line. VERSION (environment) overrides
# the version taken from `git describe`. The package installs the daemon in
# /usr/sbin, the tools in /usr/bin, the units (tcpcryptd.service and the per-namespace template tcpcryptd@.service) in /lib/systemd/system, the documentation in /usr/share/doc/tcpcryptd, man pages,
# bash completion, /etc/tcpcrypt/tcpcryptd.conf (a conffile), and libtcpcrypt
# (header, libtcpcrypt.so.0, libtcpcrypt.a, pkg-config file in /usr/lib). It
# does not enable or start the service.
set -euo pipefail
cd "$(dirname "$0")/.."

outdir=${1:-dist}
for tool in dpkg-deb dpkg go make gcc ar; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-deb: $tool is required" >&2; exit 1; }
done

# Debian versions must start with a digit: v1.2.3-4-gabc -> 1.2.3+4.gabc;
# without a tag, 0.1.0~git<sha> (sorts before a future 0.1.0).
if [ -z "${VERSION:-}" ]; then
  if desc=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
    VERSION=$(echo "${desc#v}" | sed -E 's/-([0-9]+)-g([0-9a-f]+)$/+\1.g\2/')
  else
    VERSION="0.1.0~git$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  fi
fi
arch=$(dpkg --print-architecture)
case "$arch" in
  amd64) goarch=amd64 ;; arm64) goarch=arm64 ;; i386) goarch=386 ;;
  armhf) goarch=arm; export GOARM=7 ;; armel) goarch=arm; export GOARM=5 ;;
  ppc64el) goarch=ppc64le ;; s390x) goarch=s390x ;; riscv64) goarch=riscv64 ;;
  mips64el) goarch=mips64le ;;
  *) echo "build-deb: unsupported architecture $arch" >&2; exit 1 ;;
esac
export GOARCH=$goarch

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root

make --no-print-directory -f mk/install.mk install \
  DESTDIR="$root" PREFIX=/usr UNITDIR=/lib/systemd/system SYSCONFDIR=/etc \
  BUILDDIR="$work/build" VERSION="$VERSION" >&2

# Debian policy: compressed man pages, stripped shared libraries, a copyright
# file, no build paths.
gzip -9n "$root"/usr/share/man/man8/*.8 "$root"/usr/share/man/man1/*.1 "$root"/usr/share/man/man3/*.3
if command -v strip >/dev/null 2>&1; then
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root"/usr/lib/libtcpcrypt.so.*.*.*
  strip --strip-debug --remove-section=.comment "$root"/usr/lib/libtcpcrypt.a
fi
# The library needs libc6 at least as new as the newest symbol version it uses.
libc_dep=libc6
if command -v objdump >/dev/null 2>&1; then
  glibc=$(objdump -T "$root"/usr/lib/libtcpcrypt.so.*.*.* | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n1)
  [ -n "$glibc" ] && libc_dep="libc6 (>= $glibc)"
fi
install -d "$root/usr/share/doc/tcpcryptd"
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: tcpcryptd"
  echo
  echo "Files: *"
  echo "License: BSD-2-Clause"
  sed 's/^$/./; s/^/ /' LICENSE
} > "$root/usr/share/doc/tcpcryptd/copyright"
chmod 0644 "$root/usr/share/doc/tcpcryptd/copyright"

install -d "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: tcpcryptd
Version: $VERSION
Architecture: $arch
Maintainer: tcpcryptd developers <tcpcryptd@localhost>
Installed-Size: $size
Depends: nftables, $libc_dep
Section: net
Priority: optional
Homepage: https://www.rfc-editor.org/rfc/rfc8548
Description: opportunistic TCP encryption (TCP-ENO and tcpcrypt)
 tcpcryptd encrypts the TCP connections of selected ports without changes to
 the applications: it negotiates encryption in the TCP handshake (TCP-ENO,
 RFC 8547) and encrypts the stream (tcpcrypt, RFC 8548) by rewriting packets
 taken from NFQUEUE. Peers without tcpcrypt get plain TCP.
 .
 Includes tcnetstat (lists connections and session ids), tcpcryptctl
 (rules, status, session id lookup), tcpcryptdump (decrypts and verifies
 captured tcpcrypt traffic with the daemon's key log) and libtcpcrypt, the C
 library with the original libtcpcrypt API through which applications get
 their connections' session ids (libtcpcrypt(3), pkg-config libtcpcrypt). The service is
 installed but neither enabled nor started.
CONTROL
echo /etc/tcpcrypt/tcpcryptd.conf > "$root/DEBIAN/conffiles"
# The dynamic linker's cache learns about libtcpcrypt.so.0 (Debian policy 8.1.1).
echo "activate-noawait ldconfig" > "$root/DEBIAN/triggers"

cat > "$root/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
# Make systemd see the new or changed unit; the service is not enabled or
# started (systemctl enable --now tcpcryptd does that).
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
  if [ "$1" = configure ] && [ -n "$2" ] && systemctl is-active --quiet tcpcryptd.service; then
    # An upgrade: restart a running daemon on the new binary.
    systemctl restart tcpcryptd.service || true
  fi
fi
exit 0
SCRIPT
cat > "$root/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
# Stop the daemon before its files go away (it removes its nftables table).
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl stop tcpcryptd.service >/dev/null 2>&1 || true
  systemctl disable tcpcryptd.service >/dev/null 2>&1 || true
fi
exit 0
SCRIPT
cat > "$root/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = purge ]; then
  rm -rf /var/lib/tcpcrypt
  rmdir /etc/tcpcrypt 2>/dev/null || true
fi
exit 0
SCRIPT
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

mkdir -p "$outdir"
deb="$outdir/tcpcryptd_${VERSION}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
