#!/usr/bin/env bash
# Root-only package test: builds the .deb, installs it INTO THIS MACHINE with
# dpkg -i, checks the installed files, builds a program against the installed
# libtcpcrypt with pkg-config, runs the installed tcpcryptd in a throwaway
# network namespace and queries it with the installed tcnetstat and through
# the library, then removes and purges the package. Meant for CI machines (Debian 12, as
# root). Idempotent: a tcpcryptd package left by an interrupted run is removed
# first. Everything it creates is removed on exit, success or not.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  if [ "${TCPCRYPT_REQUIRE_ROOT_TESTS:-}" = 1 ]; then
    echo "test-deb: needs root (dpkg -i, network namespaces); TCPCRYPT_REQUIRE_ROOT_TESTS=1 makes that a failure" >&2
    exit 1
  fi
  echo "test-deb: needs root (dpkg -i, network namespaces); skipping" >&2
  exit 0
fi
for tool in dpkg dpkg-deb ip nft timeout; do
  command -v "$tool" >/dev/null 2>&1 || { echo "test-deb: $tool is required" >&2; exit 1; }
done

work=$(mktemp -d /tmp/tcpcrypt-test-deb.XXXXXX)
ns="tcpcrypt-deb-$$"
daemon_pid=""
cleanup() {
  set +e
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"
    for _ in $(seq 50); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$daemon_pid" 2>/dev/null
  fi
  ip netns del "$ns" 2>/dev/null
  if dpkg-query -W -f='${Status}' tcpcryptd 2>/dev/null | grep -q 'install ok'; then
    dpkg -P tcpcryptd >/dev/null 2>&1
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "test-deb: FAIL: $*" >&2; [ -f "$work/daemon.log" ] && sed 's/^/  daemon: /' "$work/daemon.log" >&2; exit 1; }
step() { echo "test-deb: $*"; }

if dpkg-query -W -f='${Status}' tcpcryptd 2>/dev/null | grep -q 'install ok'; then
  step "removing a tcpcryptd package left by an earlier run"
  dpkg -P tcpcryptd >/dev/null
fi

step "building the package"
deb=$(./scripts/build-deb.sh "$work/dist" 2>"$work/build.log" | tail -n1) || { cat "$work/build.log" >&2; fail "build-deb.sh"; }
[ -f "$deb" ] || fail "no package at $deb"

step "installing $(basename "$deb")"
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i"; }

for f in /usr/sbin/tcpcryptd /usr/bin/tcnetstat /usr/bin/tcpcryptctl /usr/bin/tcpcryptdump \
         /lib/systemd/system/tcpcryptd.service '/lib/systemd/system/tcpcryptd@.service' /etc/tcpcrypt/tcpcryptd.conf \
         /usr/share/doc/tcpcryptd/tcpcryptd.md /usr/share/doc/tcpcryptd/ctl-protocol.md /usr/share/doc/tcpcryptd/operations.md \
         /usr/share/doc/tcpcryptd/README.md \
         /usr/share/man/man8/tcpcryptd.8.gz /usr/share/man/man8/tcnetstat.8.gz /usr/share/man/man8/tcpcryptctl.8.gz /usr/share/man/man1/tcpcryptdump.1.gz \
         /usr/share/bash-completion/completions/tcpcryptdump \
         /usr/share/bash-completion/completions/tcpcryptd \
         /usr/include/tcpcrypt/tcpcrypt.h /usr/lib/libtcpcrypt.so.0 /usr/lib/libtcpcrypt.so \
         /usr/lib/libtcpcrypt.a /usr/lib/pkgconfig/libtcpcrypt.pc /usr/share/man/man3/libtcpcrypt.3.gz; do
  [ -e "$f" ] || fail "missing $f"
done
[ "$(readlink /usr/lib/libtcpcrypt.so.0)" = libtcpcrypt.so.0.1.0 ] || fail "libtcpcrypt.so.0 -> $(readlink /usr/lib/libtcpcrypt.so.0)"
ldconfig -p | grep -q 'libtcpcrypt.so.0 ' || fail "ldconfig does not know libtcpcrypt.so.0 (the ldconfig trigger)"

step "a program built with pkg-config against the installed libtcpcrypt"
command -v gcc >/dev/null 2>&1 && command -v pkg-config >/dev/null 2>&1 || fail "gcc and pkg-config are required"
# No -L/-rpath tricks: the installed .pc file, header and ld.so cache must suffice.
gcc -std=c99 -Wall -Werror -o "$work/tcprobe" libtcpcrypt/tests/tcprobe.c $(pkg-config --cflags --libs libtcpcrypt) \
  2>"$work/cc.log" || { cat "$work/cc.log" >&2; fail "building against the installed library"; }
ldd "$work/tcprobe" | grep -Eq '=> (/usr)?/lib/libtcpcrypt.so.0 ' || fail "tcprobe does not load /usr/lib/libtcpcrypt.so.0: $(ldd "$work/tcprobe")"
TCPCRYPT_CTL="$work/absent.sock" "$work/tcprobe" self 127.0.0.1 >"$work/probe-none.json" || fail "tcprobe without a daemon"
grep -q '"sockopt_errno":"ECONNREFUSED"' "$work/probe-none.json" || fail "libtcpcrypt with no daemon: $(cat "$work/probe-none.json")"
if command -v systemd-analyze >/dev/null 2>&1; then
  out=$(systemd-analyze verify /lib/systemd/system/tcpcryptd.service 2>&1) || fail "systemd-analyze verify: $out"
  [ -z "$out" ] || fail "systemd-analyze verify: $out"
  out=$(systemd-analyze verify /lib/systemd/system/tcpcryptd@test.service 2>&1) || fail "systemd-analyze verify tcpcryptd@test: $out"
  [ -z "$out" ] || fail "systemd-analyze verify tcpcryptd@test: $out"
fi

step "tcpcryptd -h"
/usr/sbin/tcpcryptd -h >"$work/help.txt" 2>&1 || fail "tcpcryptd -h exited $?"
grep -q -- '--queue' "$work/help.txt" || fail "tcpcryptd -h does not list --queue"
/usr/sbin/tcpcryptd --version | grep -q "^tcpcryptd " || fail "tcpcryptd --version"
# The documents -h and the man pages name are installed.
for d in $(grep -o '/usr/share/doc/tcpcryptd/[a-z-]*\.md' "$work/help.txt"; zcat /usr/share/man/man8/*.8.gz | grep -o '/usr/share/doc/tcpcryptd/[a-z-]*\.md'); do
  [ -e "$d" ] || fail "$d is named by the help or a man page but not installed"
done

step "tcnetstat without a daemon fails cleanly"
set +e
/usr/bin/tcnetstat --json -u "$work/absent.sock" >"$work/none.out" 2>"$work/none.err"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "tcnetstat with no daemon exited $rc, want 1"
grep -q 'is tcpcryptd running' "$work/none.err" || fail "tcnetstat with no daemon: unexpected message: $(cat "$work/none.err")"

step "starting the installed daemon in network namespace $ns"
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
sock="$work/ctl"
ip netns exec "$ns" /usr/sbin/tcpcryptd -v -f -u "$sock" --state "$work/rules.json" --workers 1 \
  --config /etc/tcpcrypt/tcpcryptd.conf >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 200); do
  [ -S "$sock" ] && grep -q 'msg=ready' "$work/daemon.log" && break
  kill -0 "$daemon_pid" 2>/dev/null || fail "daemon exited early"
  sleep 0.1
done
[ -S "$sock" ] || fail "no control socket after 20s"

step "tcnetstat --json against it"
timeout 10 /usr/bin/tcnetstat --json -u "$sock" >"$work/netstat.json" 2>"$work/netstat.err" \
  || fail "tcnetstat --json exited $?: $(cat "$work/netstat.err")"
tr -d ' \n' <"$work/netstat.json" | grep -Eq '^\[.*\]$' || fail "tcnetstat --json printed no JSON array: $(cat "$work/netstat.json")"
timeout 10 /usr/bin/tcpcryptctl -u "$sock" status >/dev/null || fail "tcpcryptctl status"

step "libtcpcrypt asks the installed daemon"
# A loopback connection on a port without a rule: the daemon answers that it
# has no session for it (ENOENT); any other answer means the library and the
# daemon do not understand each other.
ip netns exec "$ns" env TCPCRYPT_CTL="$sock" timeout 10 "$work/tcprobe" self 127.0.0.1 >"$work/probe.json" \
  || fail "tcprobe against the daemon"
grep -q '"sockopt_errno":"ENOENT"' "$work/probe.json" && grep -q '"enable":0' "$work/probe.json" \
  || fail "libtcpcrypt against the daemon: $(cat "$work/probe.json")"

step "stopping the daemon"
kill -TERM "$daemon_pid"
rc=0
for _ in $(seq 150); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$daemon_pid" 2>/dev/null && fail "daemon still running 15s after SIGTERM"
wait "$daemon_pid" || rc=$?
daemon_pid=""
[ "$rc" -eq 0 ] || fail "daemon exited $rc after SIGTERM"
ip netns exec "$ns" nft list table inet tcpcrypt >/dev/null 2>&1 && fail "table inet tcpcrypt left behind"

step "dpkg -r"
dpkg -r tcpcryptd >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -r"; }
for f in /usr/sbin/tcpcryptd /usr/bin/tcnetstat /usr/bin/tcpcryptdump /lib/systemd/system/tcpcryptd.service \
         '/lib/systemd/system/tcpcryptd@.service' /usr/share/doc/tcpcryptd/tcpcryptd.md \
         /usr/lib/libtcpcrypt.so.0 /usr/lib/libtcpcrypt.so /usr/include/tcpcrypt/tcpcrypt.h; do
  [ ! -e "$f" ] && [ ! -L "$f" ] || fail "$f still present after dpkg -r"
done
[ -e /etc/tcpcrypt/tcpcryptd.conf ] || fail "dpkg -r removed the conffile (only purge should)"
dpkg -P tcpcryptd >/dev/null 2>&1 || fail "dpkg -P"
[ ! -e /etc/tcpcrypt/tcpcryptd.conf ] || fail "conffile still present after purge"

step "PASS"
