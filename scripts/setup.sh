#!/usr/bin/env bash
# One command for a fresh Debian machine: installs what tcpcryptd needs (as root), fetches
# the Go modules, builds everything, and runs the main job: the demo (two network
# namespaces, tcpcryptd in each, an encrypted file transfer between them).
#
#   ./scripts/setup.sh               install, build, run the main job
#   ./scripts/setup.sh --deps-only   install and fetch only (what CI uses before `make test`)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH=/usr/local/go/bin:$PATH
fi
if ! command -v go >/dev/null 2>&1; then
  echo "setup: Go 1.26 or newer is required (https://go.dev/dl); it was not found in PATH" >&2
  exit 1
fi

# Debian packages: nft (golden tests compare its listing), iproute2 (network namespaces),
# make, and the tools below. Installed only when missing, so a prepared machine needs no network for apt.
need=()
command -v nft  >/dev/null 2>&1 || need+=(nftables)
command -v ip   >/dev/null 2>&1 || need+=(iproute2)
command -v make >/dev/null 2>&1 || need+=(make)
# systemd-analyze checks the unit; groff renders the man pages in their tests;
# dpkg-deb builds the package that CI installs.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v groff >/dev/null 2>&1 || need+=(groff-base)
# tcpdump makes the captures the tcpcryptdump e2e tests read; tshark must find
# curl's HTTP request (curl) in what tcpcryptdump -w writes.
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
# libtcpcrypt (the C library) needs a C compiler and the libc headers; its tests
# build programs with pkg-config and run the Python (ctypes) example of its docs.
command -v gcc >/dev/null 2>&1 || need+=(gcc)
[ -e /usr/include/stdio.h ] || need+=(libc6-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing ${need[*]}; run as root (or install them) first" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi

go mod download
# deploy/ is a module of its own (the Kubernetes manifests' tests).
(cd deploy && go mod download)
go build ./...
make --no-print-directory libtcpcrypt >/dev/null

if [ "${1:-}" = "--deps-only" ]; then
  exit 0
fi

./scripts/demo.sh
