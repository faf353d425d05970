#!/usr/bin/env bash
# The newcomer demo (`make demo`): two hosts in network namespaces, tcpcryptd on both
# with a rule for port 5001, a file moved from one to the other by an ordinary client
# and server that know nothing of encryption. It shows
#   - both hosts' tcnetstat rows for the connection, with the same session id,
#   - the file's SHA-256 before and after,
#   - the first payload bytes captured on the wire: ciphertext on port 5001, and the
#     file's plain text on port 5002, which has no rule, for comparison.
# Everything it creates (namespaces, veth, processes, files) is removed on exit.
#
# Needs root, Go 1.26, ip (iproute2) and nft (nftables): ./scripts/setup.sh --deps-only
# installs them. Usage: ./scripts/demo.sh   (about 10 seconds)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: needs root (network namespaces, nftables, NFQUEUE); try: sudo $0" >&2
  exit 1
fi
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH=/usr/local/go/bin:$PATH
fi
for tool in go ip nft timeout sha256sum; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "demo: '$tool' not found; run ./scripts/setup.sh --deps-only first" >&2
    exit 1
  fi
done

W=$(mktemp -d /tmp/tcpcrypt-demo.XXXXXX)
A=tcdemo-a-$$
B=tcdemo-b-$$
PROG=demo
BG_TIMEOUT=300
# shellcheck source=lib/netns.sh
. scripts/lib/netns.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "building"
mkdir -p "$W/bin"
go build -o "$W/bin/" ./cmd/tcpcryptd ./cmd/tcnetstat ./cmd/tcpcryptctl ./e2e/cmd/xfer ./e2e/cmd/wiretap
BIN=$W/bin
echo "tcpcryptd, tcnetstat, tcpcryptctl, and the test client/server xfer and capture tool wiretap"

say "two hosts: $A (10.99.0.1) and $B (10.99.0.2), joined by a veth pair"
ip netns add "$A"
ip netns add "$B"
ip -n "$A" link set lo up
ip -n "$B" link set lo up
ip -n "$A" link add eth0 type veth peer name eth0 netns "$B"
ip -n "$A" addr add 10.99.0.1/24 dev eth0
ip -n "$B" addr add 10.99.0.2/24 dev eth0
ip -n "$A" link set eth0 up
ip -n "$B" link set eth0 up

say "tcpcryptd on both hosts, covering port 5001 (tcpcryptd --rule 5001:both)"
for h in a b; do
  ns=$A
  [ $h = b ] && ns=$B
  bg "$W/daemon-$h.log" ip netns exec "$ns" "$BIN/tcpcryptd" -u "$W/$h.sock" --state "$W/$h-rules.json" \
    -f -v --rule 5001:both
done
wait_for "$W/daemon-a.log" 'msg=ready' 20
wait_for "$W/daemon-b.log" 'msg=ready' 20
ip netns exec "$A" "$BIN/tcpcryptctl" -u "$W/a.sock" rules list
echo "nftables tables on $A: $(ip netns exec "$A" nft list tables | tr '\n' ' ')"

# The file: text whose every line carries a marker, easy to spot on the wire.
seq -f '<<tcpcrypt-e2e-plain>> line %08g of a file that should stay private' 1 80000 >"$W/secret.txt"
echo
echo "the file: $(wc -c <"$W/secret.txt") bytes, first line: $(head -n 1 "$W/secret.txt")"

# rows NS HOST PORT: the tcnetstat rows of connections on PORT.
rows() {
  local out
  out=$(ip netns exec "$1" "$BIN/tcnetstat" -u "$W/$2.sock" | awk -v p=":$3" 'NR == 1 || index($1 " ", p " ") || index($2 " ", p " ")')
  if [ "$(printf '%s\n' "$out" | wc -l)" -le 1 ]; then
    echo "(no connection on port $3: tcpcryptd does not track ports without a rule)"
  else
    printf '%s\n' "$out"
  fi
}

# transfer PORT LABEL: move the file from a to b on PORT with a capture on a's eth0;
# while the connection is still open, print both hosts' tcnetstat rows.
transfer() {
  local port=$1 label=$2
  bg "$W/tap-$port.out" ip netns exec "$A" "$BIN/wiretap" -i eth0 -port "$port" -samples 3 -len 24
  local tap=${PIDS[-1]}
  wait_for "$W/tap-$port.out" 'capturing' 10
  bg "$W/server-$port.out" ip netns exec "$B" "$BIN/xfer" serve -l "10.99.0.2:$port" -ctl "$W/b.sock" \
    -save "$W/received-$port.txt" -max 1 -timeout 60s
  wait_for "$W/server-$port.out" '"listening"' 10
  rm -f "$W/hold"
  mkfifo "$W/hold"
  # -hold: once the file is through, keep the connection open until stdin closes.
  timeout 120 ip netns exec "$A" "$BIN/xfer" send -c "10.99.0.2:$port" -file "$W/secret.txt" -down 0 \
    -ctl "$W/a.sock" -hold -timeout 60s <"$W/hold" >"$W/client-$port.out" 2>&1 &
  PIDS+=($!)
  local client=$!
  exec 3>"$W/hold"
  wait_for "$W/client-$port.out" '"holding"' 60

  say "$label: tcnetstat on $A (the client)"
  rows "$A" a "$port"
  say "$label: tcnetstat on $B (the server)"
  rows "$B" b "$port"
  echo
  echo "what the client application itself learnt (ctl.ConnInfo):"
  grep '"held"' "$W/client-$port.out" | sed -e 's/.*"local":"\([^"]*\)".*/  connection \1/'
  if grep -q '"session_id"' "$W/client-$port.out"; then
    grep '"held"' "$W/client-$port.out" |
      sed -e 's/.*"session_id":"\([^"]*\)","role":"\([^"]*\)".*/  session id \1, role \2/'
  else
    grep '"held"' "$W/client-$port.out" | sed -e 's/\\u003e/>/g' -e 's/.*"sess_err":"\([^"]*\)".*/  no session id: \1/'
  fi

  exec 3>&-
  wait "$client" || true
  for _ in $(seq 100); do grep -q '"summary"' "$W/server-$port.out" && break; sleep 0.1; done
  kill -INT "$tap" 2>/dev/null || true # end the capture: it prints its summary
  wait_for "$W/tap-$port.out" 'marker' 10

  say "$label: on the wire (capture on $A eth0, first payload bytes of the first segments)"
  grep -v '^wiretap:' "$W/tap-$port.out"
  say "$label: the file at both ends"
  sha256sum "$W/secret.txt" "$W/received-$port.txt" | sed -e "s#$W/##"
}

transfer 5001 "port 5001 (rule: encrypted)"
transfer 5002 "port 5002 (no rule: plain TCP, for comparison)"

say "summary"
s1=$(sha256sum <"$W/received-5001.txt" | cut -d' ' -f1)
s0=$(sha256sum <"$W/secret.txt" | cut -d' ' -f1)
[ "$s0" = "$s1" ] && echo "file arrived intact over the encrypted connection: sha256 $s0" ||
  { echo "FILE DIFFERS after the encrypted transfer" >&2; exit 1; }
grep -q 'never seen' "$W/tap-5001.out" && echo "port 5001: the file's text never appeared on the wire" ||
  { echo "PLAINTEXT SEEN on port 5001" >&2; exit 1; }
grep -q 'marker .* seen, first' "$W/tap-5002.out" && echo "port 5002: the file's text is readable on the wire, as expected without a rule"
echo "both hosts list the same session id; an application can bind it into its own authentication (see ctl.ConnInfo)."
