#!/usr/bin/env bash
# Namespace benchmark: two hosts (namespaces A and B) over one veth pair, five
# ways of carrying the same TCP traffic from A to B, measured in one run:
#   plain       ordinary TCP (port 6001)
#   nfq-pass    an accept-everything NFQUEUE reader on both hosts' output and input
#               (chaosbox -hook local -gso, no impairment; port 6002): the cost of the
#               kernel round trip alone, the floor under any NFQUEUE daemon
#   tcpcryptd   tcpcryptd on both hosts, rule 6003:both: encrypted
#   stunnel     stunnel4, TLS 1.3 with TLS_AES_128_GCM_SHA256 only: a client proxy in
#               A (127.0.0.1:6004 and :6014) and a server proxy in B (10.99.0.2:6004,
#               :6014), a self-signed P-256 certificate made with openssl for the run
#   wireguard   wireguard-go (userspace, a TUN device on each host), tunnel 10.98.0.1
#               to 10.98.0.2, its UDP over the veth
#
# Every measurement runs in BENCH_ROUNDS rounds (default 3); each round goes through
# every scenario in turn, so that a slow spell of the machine hits all of them. Per
# scenario and round:
#   bulk        iperf3, one connection A->B, BENCH_BYTES (default 1G) of payload;
#               also with each count of parallel connections in BENCH_SCALE
#               (default "1 8 64", iperf3 -P, the same BENCH_BYTES in total)
#   CPU         utime+stime (/proc/PID/stat) of the scenario's daemons or proxies on
#               both hosts over each bulk run, in CPU-seconds per GB (1e9 bytes) of
#               payload ("-" for plain TCP, which has none)
#   conns/s     xfer, BENCH_CONNS connections (default 2000), BENCH_PAR at a time
#               (default 8), one byte each way
#   latency     xfer, BENCH_LAT connections one after another (default 300), one byte
#               each way: the median time from the start of connect() to the first
#               byte from the server (handshake + request + reply)
# It prints the median and min-max over the rounds, and each figure's ratio to plain
# TCP and to nfq-pass. At the end, memory: BENCH_IDLE (default 10000) idle encrypted
# connections held open through a freshly started tcpcryptd pair, the growth of both
# daemons' RSS divided by the count (0 skips it).
#
# Other knobs: BENCH_SCENARIOS (default all five, in the order above; plain is
# always measured, the ratios need it), BENCH_TIMEOUT (seconds any one process may
# run, default 1800), WIREGUARD_GO (a wireguard-go binary to use instead of
# building one), BENCH_PERF (a file: perf record -g of both tcpcryptd daemons over
# the first tcpcryptd bulk run with BENCH_PERF_P connections (default 1), with the top
# symbols of perf report written next to it as FILE.txt; needs perf from Debian's
# linux-perf). A quick smoke run:
#   BENCH_BYTES=64M BENCH_ROUNDS=1 BENCH_CONNS=200 BENCH_IDLE=500 ./scripts/netns-bench.sh
#
# Needs root, Go, ip, nft and, installed when missing (Debian, apt-get
# --no-install-recommends), iperf3, stunnel4, wireguard-tools and openssl; it builds
# wireguard-go with go install. A full run takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

BYTES=${BENCH_BYTES:-1G}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-2000}
PAR=${BENCH_PAR:-8}
LAT=${BENCH_LAT:-300}
IDLE=${BENCH_IDLE:-10000}
SCALE=${BENCH_SCALE:-1 8 64}
PERF_OUT=${BENCH_PERF:-}
PERF_P=${BENCH_PERF_P:-1}
SCENARIOS=${BENCH_SCENARIOS:-plain nfq-pass tcpcryptd stunnel wireguard}
WG_VERSION=v0.0.0-20260522210424-ecfc5a8d5446

if [ "$(id -u)" -ne 0 ]; then
  echo "netns-bench: needs root (network namespaces, nftables, NFQUEUE, TUN)" >&2
  exit 1
fi
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH=/usr/local/go/bin:$PATH
fi
case " $SCENARIOS " in *" plain "*) ;; *) SCENARIOS="plain $SCENARIOS" ;; esac
for s in $SCENARIOS; do
  case $s in plain | nfq-pass | tcpcryptd | stunnel | wireguard) ;; *)
    echo "netns-bench: unknown scenario '$s' in BENCH_SCENARIOS" >&2
    exit 2
    ;;
  esac
done
has() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }

# Debian packages this needs, installed when their command is missing.
need=()
command -v iperf3 >/dev/null 2>&1 || need+=(iperf3)
command -v numfmt >/dev/null 2>&1 || need+=(coreutils)
if has stunnel; then
  command -v stunnel4 >/dev/null 2>&1 || command -v stunnel >/dev/null 2>&1 || need+=(stunnel4)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
fi
if has wireguard; then command -v wg >/dev/null 2>&1 || need+=(wireguard-tools); fi
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || { echo "netns-bench: missing ${need[*]} and no apt-get" >&2; exit 1; }
  echo "installing ${need[*]}..."
  if ! DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; then
    timeout 600 apt-get update >/dev/null
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
  fi
fi
STUNNEL=$(command -v stunnel4 || command -v stunnel || true)
for tool in go ip nft timeout awk iperf3 numfmt; do
  command -v "$tool" >/dev/null 2>&1 || { echo "netns-bench: '$tool' not found" >&2; exit 1; }
done
NBYTES=$(numfmt --from=iec "${BYTES%B}")

# Many held connections need many descriptors (the client's and the server's).
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$IDLE" -gt 0 ] && [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE + 1000)) ]; then
  echo "netns-bench: BENCH_IDLE=$IDLE needs more open files than ulimit -n $(ulimit -n)" >&2
  exit 1
fi

W=$(mktemp -d /tmp/tcpcrypt-bench.XXXXXX)
A=tcbench-a-$$
B=tcbench-b-$$
WGA=wga$$
WGB=wgb$$
PROG=netns-bench
BG_TIMEOUT=${BENCH_TIMEOUT:-1800}
# shellcheck source=lib/netns.sh
. scripts/lib/netns.sh

echo "building..."
mkdir -p "$W/bin"
go build -o "$W/bin/" ./cmd/tcpcryptd ./cmd/tcpcryptctl ./e2e/cmd/xfer ./internal/cmd/chaosbox
BIN=$W/bin
WG_GO=${WIREGUARD_GO:-}
if has wireguard && [ -z "$WG_GO" ]; then
  # The module's main package is its root; go install names the binary wireguard.
  GOBIN=$BIN timeout 600 go install "golang.zx2c4.com/wireguard@$WG_VERSION"
  WG_GO=$BIN/wireguard
fi

ip netns add "$A"
ip netns add "$B"
ip -n "$A" link set lo up
ip -n "$B" link set lo up
ip -n "$A" link add eth0 type veth peer name eth0 netns "$B"
ip -n "$A" addr add 10.99.0.1/24 dev eth0
# Two addresses on B: iperf3 listens on .2, xfer on .3, on the same port, since
# chaosbox and the tcpcryptd rule select traffic by port.
ip -n "$B" addr add 10.99.0.2/24 dev eth0
ip -n "$B" addr add 10.99.0.3/24 dev eth0
ip -n "$A" link set eth0 up
ip -n "$B" link set eth0 up
# Room for BENCH_IDLE connections arriving at once without SYN cookies (which
# would strip the TCP-ENO option).
for ns in "$A" "$B"; do
  ip netns exec "$ns" sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535 \
    net.ipv4.ip_local_port_range="10000 65000"
done

# child PID: the process a bg command runs (timeout forks it; ip netns exec
# execs it).
child() {
  local c
  for _ in $(seq 50); do
    c=$(cat "/proc/$1/task/$1/children" 2>/dev/null || true)
    [ -n "$c" ] && { echo "${c%% *}"; return; }
    sleep 0.1
  done
  echo "$PROG: no child process of $1" >&2
  exit 1
}

declare -A DAEMONS   # scenario -> the PIDs of its daemons on both hosts
declare -A IPERF     # scenario -> iperf3 server host:port as seen from A
declare -A XFER      # scenario -> xfer server host:port as seen from A
TD_BG=()             # the bg PIDs of the tcpcryptd pair (restarted for the memory test)

start_tcpcryptd() { # LOG-SUFFIX EXTRA-ARGS...
  local sfx=$1 h ns
  shift
  TD_BG=()
  DAEMONS[tcpcryptd]=
  for h in a b; do
    ns=$A
    [ $h = b ] && ns=$B
    bg "$W/daemon-$h$sfx.log" ip netns exec "$ns" "$BIN/tcpcryptd" -u "$W/$h.sock" --state "$W/$h.json" -f -v --rule 6003:both "$@"
    TD_BG+=("${PIDS[-1]}")
  done
  for h in a b; do wait_for "$W/daemon-$h$sfx.log" 'msg=ready' 20; done
  DAEMONS[tcpcryptd]="$(child "${TD_BG[0]}") $(child "${TD_BG[1]}")"
}

IPERF[plain]=10.99.0.2:6001
XFER[plain]=10.99.0.3:6001
if has nfq-pass; then
  pids=()
  for h in a b; do
    ns=$A
    [ $h = b ] && ns=$B
    bg "$W/chaos-$h.log" ip netns exec "$ns" "$BIN/chaosbox" -hook local -port 6002 -gso
    pids+=("${PIDS[-1]}")
  done
  for h in a b; do wait_for "$W/chaos-$h.log" '"ready"' 20; done
  DAEMONS[nfq-pass]="$(child "${pids[0]}") $(child "${pids[1]}")"
  IPERF[nfq-pass]=10.99.0.2:6002
  XFER[nfq-pass]=10.99.0.3:6002
fi
if has tcpcryptd; then
  start_tcpcryptd ""
  IPERF[tcpcryptd]=10.99.0.2:6003
  XFER[tcpcryptd]=10.99.0.3:6003
fi
if has stunnel; then
  timeout 60 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$W/key.pem" -out "$W/cert.pem" -days 2 -subj /CN=netns-bench 2>/dev/null
  tls="sslVersionMin = TLSv1.3
sslVersionMax = TLSv1.3
ciphersuites = TLS_AES_128_GCM_SHA256
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1"
  cat >"$W/stunnel-a.conf" <<EOF
foreground = yes
pid =
debug = notice
$tls
[iperf]
client = yes
accept = 127.0.0.1:6004
connect = 10.99.0.2:6004
[xfer]
client = yes
accept = 127.0.0.1:6014
connect = 10.99.0.2:6014
EOF
  cat >"$W/stunnel-b.conf" <<EOF
foreground = yes
pid =
debug = notice
$tls
cert = $W/cert.pem
key = $W/key.pem
[iperf]
accept = 10.99.0.2:6004
connect = 127.0.0.1:5204
[xfer]
accept = 10.99.0.2:6014
connect = 127.0.0.1:5214
EOF
  bg "$W/stunnel-a.log" ip netns exec "$A" "$STUNNEL" "$W/stunnel-a.conf"
  sa=${PIDS[-1]}
  bg "$W/stunnel-b.log" ip netns exec "$B" "$STUNNEL" "$W/stunnel-b.conf"
  sb=${PIDS[-1]}
  for h in a b; do wait_for "$W/stunnel-$h.log" 'Configuration successful' 20; done
  DAEMONS[stunnel]="$(child "$sa") $(child "$sb")"
  IPERF[stunnel]=127.0.0.1:6004
  XFER[stunnel]=127.0.0.1:6014
fi
if has wireguard; then
  mkdir -p /var/run/wireguard
  pids=()
  for h in a b; do
    ns=$A dev=$WGA
    [ $h = b ] && ns=$B dev=$WGB
    (umask 077 && wg genkey >"$W/wg-$h.key")
    wg pubkey <"$W/wg-$h.key" >"$W/wg-$h.pub"
    bg "$W/wg-$h.log" ip netns exec "$ns" env WG_PROCESS_FOREGROUND=1 "$WG_GO" -f "$dev"
    pids+=("${PIDS[-1]}")
  done
  for dev in "$WGA" "$WGB"; do
    for ((i = 0; i < 100; i++)); do [ -S "/var/run/wireguard/$dev.sock" ] && break; sleep 0.1; done
    [ -S "/var/run/wireguard/$dev.sock" ] || { echo "$PROG: wireguard-go did not start:" >&2; cat "$W"/wg-*.log >&2; exit 1; }
  done
  ip netns exec "$A" wg set "$WGA" private-key "$W/wg-a.key" listen-port 51820 \
    peer "$(cat "$W/wg-b.pub")" endpoint 10.99.0.2:51820 allowed-ips 10.98.0.2/32
  ip netns exec "$B" wg set "$WGB" private-key "$W/wg-b.key" listen-port 51820 \
    peer "$(cat "$W/wg-a.pub")" endpoint 10.99.0.1:51820 allowed-ips 10.98.0.1/32
  ip -n "$A" addr add 10.98.0.1/24 dev "$WGA"
  ip -n "$B" addr add 10.98.0.2/24 dev "$WGB"
  ip -n "$A" link set "$WGA" up
  ip -n "$B" link set "$WGB" up
  DAEMONS[wireguard]="$(child "${pids[0]}") $(child "${pids[1]}")"
  IPERF[wireguard]=10.98.0.2:6005
  XFER[wireguard]=10.98.0.2:6015
fi

for s in $SCENARIOS; do
  ip=${IPERF[$s]%:*} port=${IPERF[$s]##*:}
  case $s in stunnel) ip=127.0.0.1 port=5204 ;; esac
  bg "$W/iperf-$s.log" ip netns exec "$B" iperf3 -s -B "$ip" -p "$port" --forceflush
  wait_for "$W/iperf-$s.log" 'Server listening' 10
  addr=${XFER[$s]}
  case $s in stunnel) addr=127.0.0.1:5214 ;; esac
  bg "$W/xfer-$s.log" ip netns exec "$B" "$BIN/xfer" serve -l "$addr" -quiet -timeout 10m
  wait_for "$W/xfer-$s.log" '"listening"' 10
done
if has wireguard; then
  # One connection through the tunnel first, so that no measurement waits for
  # WireGuard's handshake.
  timeout 60 ip netns exec "$A" "$BIN/xfer" send -c "${XFER[wireguard]}" -raw -quiet -timeout 30s -up 1 -down 1 >/dev/null
fi

CLK_TCK=$(getconf CLK_TCK)
# ticks PID...: utime+stime of the processes, in clock ticks (all their threads).
ticks() {
  local t=0 p f
  for p in "$@"; do
    f=$(<"/proc/$p/stat")
    f=${f##*) }
    # After "pid (comm) ", utime and stime are the 12th and 13th fields.
    t=$((t + $(awk '{print $12 + $13}' <<<"$f")))
  done
  echo "$t"
}
# rss PID...: the processes' resident memory, KiB.
rss() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status"))); done
  echo "$t"
}

# field NAME JSON-LINE: a number from xfer's summary line.
field() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p" <<<"$2"; }

# xfer_run SCENARIO ARGS...: one xfer client run; prints its summary line, fails loudly.
xfer_run() {
  local s=$1 out
  shift
  if ! out=$(timeout 900 ip netns exec "$A" "$BIN/xfer" send -c "${XFER[$s]}" -raw -quiet -timeout 5m "$@"); then
    echo "$PROG: xfer ($s) failed:" >&2
    echo "$out" >&2
    exit 1
  fi
  grep '"summary"' <<<"$out"
}

# iperf_run SCENARIO P: one iperf3 run of BYTES over P connections; prints
# Mbit/s at the receiver and the daemons' CPU-seconds per GB ("-" without daemons).
iperf_run() {
  local s=$1 p=$2 out t0 t1 mbps perfpid=
  if [ -n "$PERF_OUT" ] && [ "$s" = tcpcryptd ] && [ "$p" = "$PERF_P" ] && [ ! -e "$PERF_OUT" ]; then
    # shellcheck disable=SC2086
    perf record -q -g -o "$PERF_OUT" -p "$(tr ' ' , <<<"${DAEMONS[$s]}")" >/dev/null 2>&1 &
    perfpid=$!
    sleep 0.5
  fi
  # shellcheck disable=SC2086
  [ -n "${DAEMONS[$s]:-}" ] && t0=$(ticks ${DAEMONS[$s]})
  if ! out=$(timeout 900 ip netns exec "$A" iperf3 -c "${IPERF[$s]%:*}" -p "${IPERF[$s]##*:}" \
    -n "$NBYTES" -P "$p" --connect-timeout 10000 -J); then
    echo "$PROG: iperf3 ($s, -P $p) failed:" >&2
    echo "$out" | tail -n 20 >&2
    exit 1
  fi
  # shellcheck disable=SC2086
  [ -n "${DAEMONS[$s]:-}" ] && t1=$(ticks ${DAEMONS[$s]})
  if [ -n "$perfpid" ]; then
    kill -INT "$perfpid" && wait "$perfpid" || true
    perf report -i "$PERF_OUT" --no-children --sort symbol --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -60 >"$PERF_OUT.txt" || true
  fi
  mbps=$(awk '/"sum_received"/ {f = 1} f && /"bits_per_second"/ {gsub(/[^0-9.e+]/, "", $2); print $2 / 1e6; exit}' <<<"$out")
  [ -n "$mbps" ] || { echo "$PROG: no result from iperf3 ($s, -P $p)" >&2; exit 1; }
  if [ -n "${DAEMONS[$s]:-}" ]; then
    echo "$mbps $(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v b="$NBYTES" 'BEGIN {print d / hz / (b / 1e9)}')"
  else
    echo "$mbps -"
  fi
}

declare -A R # "scenario metric" -> the values of the rounds, space separated
add() { R["$1 $2"]="${R["$1 $2"]:-} $3"; }
TD_CONNS=0   # connections made through tcpcryptd, each must be encrypted

for ((round = 1; round <= ROUNDS; round++)); do
  for s in $SCENARIOS; do
    echo "round $round/$ROUNDS: $s... (${SECONDS}s)"
    for p in $SCALE; do
      read -r mbps cpu <<<"$(iperf_run "$s" "$p")"
      add "$s" "bulk$p" "$mbps"
      add "$s" "cpu$p" "$cpu"
      [ "$s" = tcpcryptd ] && TD_CONNS=$((TD_CONNS + p + 1))
    done
    sum=$(xfer_run "$s" -n "$CONNS" -p "$PAR" -up 1 -down 1)
    add "$s" cps "$(field conns_per_s "$sum")"
    sum=$(xfer_run "$s" -n "$LAT" -p 1 -up 1 -down 1)
    add "$s" lat "$(field first_byte_p50_ms "$sum")"
    [ "$s" = tcpcryptd ] && TD_CONNS=$((TD_CONNS + CONNS + LAT))
  done
done

# The tcpcryptd figures count only if its connections were encrypted.
encrypted() { # HOST-LETTER: engine_flows_encrypted of that host's daemon
  ip netns exec "$A" "$BIN/tcpcryptctl" -u "$W/$1.sock" status --json |
    sed -n 's/.*"engine_flows_encrypted": *\([0-9]*\).*/\1/p'
}
if has tcpcryptd; then
  enc_bulk=$(encrypted a)
  if [ "${enc_bulk:-0}" -lt "$TD_CONNS" ]; then
    echo "$PROG: only ${enc_bulk:-0} of $TD_CONNS tcpcryptd connections were encrypted" >&2
    exit 1
  fi
fi

# stats VALUES: "median min max" of space separated numbers ("-" when none).
stats() {
  tr ' ' '\n' <<<"$1" | grep -v '^-\?$' | sort -g | awk '{v[NR] = $1}
    END { if (NR == 0) { print "- - -"; exit }
          m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          print m, v[1], v[NR] }'
}
med() { read -r m _ <<<"$(stats "${R["$1 $2"]:-}")"; echo "$m"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }

first=${SCALE%% *}
echo
echo "netns benchmark, $(date -u +%Y-%m-%d), kernel $(uname -r), $(nproc) CPUs, $ROUNDS round(s), medians (min-max)"
echo "bulk: iperf3, $BYTES one way, $first connection(s); CPU: both hosts' daemons per GB of payload"
echo "conns/s: $CONNS connections, $PAR at a time; latency: connect to first byte, p50 of $LAT sequential connections"
printf '%-10s %22s %16s %18s %18s\n' scenario "bulk Mbit/s" "CPU s/GB" "conns/s" "latency ms"
for s in $SCENARIOS; do
  read -r bm bl bh <<<"$(stats "${R["$s bulk$first"]}")"
  read -r cm cl ch <<<"$(stats "${R["$s cpu$first"]}")"
  read -r nm nl nh <<<"$(stats "${R["$s cps"]}")"
  read -r lm ll lh <<<"$(stats "${R["$s lat"]}")"
  awk -v s="$s" -v bm="$bm" -v bl="$bl" -v bh="$bh" -v cm="$cm" -v cl="$cl" -v ch="$ch" \
    -v nm="$nm" -v nl="$nl" -v nh="$nh" -v lm="$lm" -v ll="$ll" -v lh="$lh" 'BEGIN {
      cpu = cm == "-" ? "-" : sprintf("%.2f (%.2f-%.2f)", cm, cl, ch)
      printf "%-10s %22s %16s %18s %18s\n", s, sprintf("%.0f (%.0f-%.0f)", bm, bl, bh), cpu,
        sprintf("%.0f (%.0f-%.0f)", nm, nl, nh), sprintf("%.3f (%.3f-%.3f)", lm, ll, lh) }'
done
echo
echo "ratios of the medians (bulk, CPU, conns/s, latency) to plain TCP and to nfq-pass"
printf '%-10s %12s %12s %12s %12s %12s %12s\n' scenario "bulk/plain" "bulk/pass" "CPU/pass" "conns/plain" "conns/pass" "lat/pass"
for s in $SCENARIOS; do
  pass=nfq-pass
  has nfq-pass || pass=plain
  printf '%-10s %12s %12s %12s %12s %12s %12s\n' "$s" \
    "$(ratio "$(med "$s" "bulk$first")" "$(med plain "bulk$first")")" \
    "$(ratio "$(med "$s" "bulk$first")" "$(med $pass "bulk$first")")" \
    "$(ratio "$(med "$s" "cpu$first")" "$(med $pass "cpu$first")")" \
    "$(ratio "$(med "$s" cps)" "$(med plain cps)")" \
    "$(ratio "$(med "$s" cps)" "$(med $pass cps)")" \
    "$(ratio "$(med "$s" lat)" "$(med $pass lat)")"
done
echo
echo "scaling: iperf3 -P N, $BYTES in total; median Mbit/s / CPU s/GB"
printf '%-10s' scenario
for p in $SCALE; do printf ' %20s' "P=$p"; done
echo
for s in $SCENARIOS; do
  printf '%-10s' "$s"
  for p in $SCALE; do
    printf ' %20s' "$(awk -v b="$(med "$s" "bulk$p")" -v c="$(med "$s" "cpu$p")" 'BEGIN {
      printf "%.0f / %s", b, c == "-" ? "-" : sprintf("%.2f", c) }')"
  done
  echo
done
if has tcpcryptd; then
  echo
  echo "tcpcryptd: $enc_bulk connections encrypted (host A's engine_flows_encrypted)"
  # Counters that explain a slow run (the non-zero ones of interest, per host).
  for h in a b; do
    echo "tcpcryptd $h: $(ip netns exec "$A" "$BIN/tcpcryptctl" -u "$W/$h.sock" status --json |
      grep -E '"(engine_(frames_shrunk|retransmits|drop_[a-z_]+|packets_(in|out)|redelivered|held)|nfq_(enobufs|recv_errors|verdict_errors|held|truncated))"' |
      tr -d ' ,"' | awk -F: '$2 != 0 {printf "%s=%s ", $1, $2}')"
  done
fi

# Memory of idle encrypted connections, through a fresh tcpcryptd pair.
if has tcpcryptd && [ "$IDLE" -gt 0 ]; then
  echo
  echo "memory: $IDLE idle connections through tcpcryptd... (${SECONDS}s)"
  for pid in "${TD_BG[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${TD_BG[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  extra=()
  [ "$IDLE" -gt 30000 ] && extra=(--max-flows $((IDLE * 2 + 1000)))
  start_tcpcryptd -idle "${extra[@]}"
  sleep 1
  # shellcheck disable=SC2086
  before=$(rss ${DAEMONS[tcpcryptd]})
  mkfifo "$W/hold"
  # The client's standard input is the FIFO, opened in the background child
  # (an open for reading waits for a writer); it closes its connections when
  # this shell closes its writing end, fd 3.
  bg "$W/idle-client.log" bash -c 'exec <"$0"; exec "$@"' "$W/hold" \
    ip netns exec "$A" "$BIN/xfer" send -c "${XFER[tcpcryptd]}" -raw -quiet \
    -timeout 10m -n "$IDLE" -p "$IDLE" -hold -up 1 -down 1
  idle_pid=${PIDS[-1]}
  exec 3>"$W/hold"
  for ((i = 0; i < 3000; i++)); do
    grep -q '"holding"' "$W/idle-client.log" && break
    kill -0 "$idle_pid" 2>/dev/null || break
    sleep 0.1
  done
  grep -q '"holding"' "$W/idle-client.log" || { echo "$PROG: the idle connections did not all open:" >&2; tail -n 5 "$W/idle-client.log" >&2; exit 1; }
  sleep 2
  # shellcheck disable=SC2086
  after=$(rss ${DAEMONS[tcpcryptd]})
  enc=$(encrypted a)
  exec 3>&-
  wait "$idle_pid" || { echo "$PROG: the idle client failed:" >&2; tail -n 5 "$W/idle-client.log" >&2; exit 1; }
  [ "${enc:-0}" -ge "$IDLE" ] || { echo "$PROG: only ${enc:-0} of $IDLE idle connections were encrypted" >&2; exit 1; }
  awk -v n="$IDLE" -v b="$before" -v a="$after" 'BEGIN {
    printf "idle: %d encrypted connections held through tcpcryptd: both daemons RSS %.1f -> %.1f MiB, %.1f KiB per connection\n", n, b / 1024, a / 1024, (a - b) / n }'
fi

