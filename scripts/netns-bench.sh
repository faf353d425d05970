#!/usr/bin/env bash
# Namespace benchmark: two hosts over a veth pair, three ways of carrying the same
# traffic, measured in one run:
#   plain        ordinary TCP (port 6001)
#   nfq-pass     an accept-everything NFQUEUE reader on both hosts' output and input
#                (chaosbox -hook local -gso, no impairment; port 6002): the cost of the
#                kernel round trip alone, the floor under any NFQUEUE daemon
#   tcpcryptd    tcpcryptd on both hosts, rule 6003:both: encrypted
# For each: bulk throughput of one connection (BENCH_BYTES, default 1G, one way) and
# connections per second (BENCH_CONNS connections, default 2000, BENCH_PAR at a time,
# default 8, one byte each way), then each figure's ratio to plain TCP.
#
# Needs root, Go, ip and nft. Usage: ./scripts/netns-bench.sh   (about a minute)
set -euo pipefail
cd "$(dirname "$0")/.."

BYTES=${BENCH_BYTES:-1G}
CONNS=${BENCH_CONNS:-2000}
PAR=${BENCH_PAR:-8}

if [ "$(id -u)" -ne 0 ]; then
  echo "netns-bench: needs root (network namespaces, nftables, NFQUEUE)" >&2
  exit 1
fi
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH=/usr/local/go/bin:$PATH
fi
for tool in go ip nft timeout awk; do
  command -v "$tool" >/dev/null 2>&1 || { echo "netns-bench: '$tool' not found" >&2; exit 1; }
done

W=$(mktemp -d /tmp/tcpcrypt-bench.XXXXXX)
A=tcbench-a-$$
B=tcbench-b-$$
PROG=netns-bench
BG_TIMEOUT=900
# shellcheck source=lib/netns.sh
. scripts/lib/netns.sh

echo "building..."
mkdir -p "$W/bin"
go build -o "$W/bin/" ./cmd/tcpcryptd ./cmd/tcpcryptctl ./e2e/cmd/xfer ./internal/cmd/chaosbox
BIN=$W/bin

ip netns add "$A"
ip netns add "$B"
ip -n "$A" link set lo up
ip -n "$B" link set lo up
ip -n "$A" link add eth0 type veth peer name eth0 netns "$B"
ip -n "$A" addr add 10.99.0.1/24 dev eth0
ip -n "$B" addr add 10.99.0.2/24 dev eth0
ip -n "$A" link set eth0 up
ip -n "$B" link set eth0 up

for h in a b; do
  ns=$A
  [ $h = b ] && ns=$B
  bg "$W/daemon-$h.log" ip netns exec "$ns" "$BIN/tcpcryptd" -u "$W/$h.sock" --state "$W/$h.json" -f -v --rule 6003:both
  bg "$W/chaos-$h.log" ip netns exec "$ns" "$BIN/chaosbox" -hook local -port 6002 -gso
done
for h in a b; do
  wait_for "$W/daemon-$h.log" 'msg=ready' 20
  wait_for "$W/chaos-$h.log" '"ready"' 20
done
for port in 6001 6002 6003; do
  bg "$W/server-$port.log" ip netns exec "$B" "$BIN/xfer" serve -l "10.99.0.2:$port" -quiet -timeout 5m
  wait_for "$W/server-$port.log" '"listening"' 10
done

# field NAME JSON-LINE: a number from xfer's summary line.
field() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p" <<<"$2"; }

# run PORT ARGS...: one xfer client run; prints its summary line, fails loudly.
run() {
  local port=$1
  shift
  local out
  if ! out=$(timeout 600 ip netns exec "$A" "$BIN/xfer" send -c "10.99.0.2:$port" -raw -quiet -timeout 5m "$@"); then
    echo "netns-bench: xfer on port $port failed:" >&2
    echo "$out" >&2
    exit 1
  fi
  grep '"summary"' <<<"$out"
}

declare -A MBPS CPS
for s in plain:6001 nfq-pass:6002 tcpcryptd:6003; do
  name=${s%%:*}
  port=${s##*:}
  echo "measuring $name..."
  sum=$(run "$port" -up "$BYTES" -down 0)
  MBPS[$name]=$(field mbit_per_s "$sum")
  sum=$(run "$port" -n "$CONNS" -p "$PAR" -up 1 -down 1)
  CPS[$name]=$(field conns_per_s "$sum")
done

# The tcpcryptd figures count only if its connections were encrypted.
enc=$(ip netns exec "$A" "$BIN/tcpcryptctl" -u "$W/a.sock" status --json | sed -n 's/.*"engine_flows_encrypted": *\([0-9]*\).*/\1/p')
if [ "${enc:-0}" -lt $((CONNS + 1)) ]; then
  echo "netns-bench: only ${enc:-0} of $((CONNS + 1)) tcpcryptd connections were encrypted" >&2
  exit 1
fi
echo
echo "netns benchmark: one connection, $BYTES one way; $CONNS connections, $PAR at a time (kernel $(uname -r), $(nproc) CPUs)"
printf '%-10s %14s %10s %12s %10s\n' scenario "bulk Mbit/s" "vs plain" "conns/s" "vs plain"
for name in plain nfq-pass tcpcryptd; do
  awk -v n="$name" -v m="${MBPS[$name]}" -v c="${CPS[$name]}" -v pm="${MBPS[plain]}" -v pc="${CPS[plain]}" \
    'BEGIN { printf "%-10s %14.0f %9.1f%% %12.0f %9.1f%%\n", n, m, 100*m/pm, c, 100*c/pc }'
done
awk -v t="${MBPS[tcpcryptd]}" -v p="${MBPS[nfq-pass]}" -v tc="${CPS[tcpcryptd]}" -v pc="${CPS[nfq-pass]}" \
  'BEGIN { printf "tcpcryptd vs nfq-pass: %.1f%% of the throughput, %.1f%% of the connection rate\n", 100*t/p, 100*tc/pc }'
echo "(tcpcryptd: $enc connections encrypted)"
