#!/usr/bin/env bash
# Microbenchmarks of the protocol core and the engine, with ratios against a baseline
# measured in the same run: the engine's encrypt/decrypt paths against the bare AEAD
# seal/open of the same AEAD, timed in blocks alternating with the engine's (so the ratio
# is what the rewriting costs on top of the cryptography). Usage: scripts/bench.sh [benchtime] (default 1s). Needs no root.
set -euo pipefail
cd "$(dirname "$0")/.."
bt=${1:-1s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(go version | cut -d' ' -f3) $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
go test -run '^$' -bench 'Seal|Open' -benchtime "$bt" -benchmem ./crypto/ | tee -a "$out"
go test -run '^$' -bench 'Encrypt|Decrypt|Handshake|SegmentOverhead' -benchtime "$bt" -benchmem ./engine/ | tee -a "$out"
go test -run '^$' -bench 'Parse|Rebuild|TCPChecksum|Sum' -benchtime "$bt" -benchmem ./packet/ | tee -a "$out"
python3 - "$out" <<'PY'
import re, sys
rows = []
for line in open(sys.argv[1]):
    m = re.match(r"Benchmark((?:Encrypt|EncryptInFlight|Decrypt)/\S+?)-\d+\s+\d+\s+[\d.]+ ns/op\s+([\d.]+) MB/s(.*)", line)
    if not m:
        continue
    rest = m.group(3)
    metric = lambda unit: (re.search(r"([\d.]+) " + unit + r"(\s|$)", rest) or [None, None])[1]
    rows.append((m.group(1), float(m.group(2)), metric("x-aead16K"), metric("x-aead1400"), metric("allocs/op")))
# The engine benchmarks time the bare AEAD themselves, in blocks alternating with the
# engine's (engine/pace_test.go), on 16 KiB frames (the cipher at its best) and on
# 1400-byte frames (one MSS of data); the ratios are those, not quotients of the
# separate crypto benchmarks above, which this machine's drift between runs skews.
print("\n# engine throughput as a fraction of the bare AEAD timed alongside it")
print(f"{'path':<40} {'engine MB/s':>12} {'x AEAD 16K':>11} {'x AEAD 1400':>12} {'allocs/op':>10}")
for name, mbs, r16, r14, allocs in rows:
    print(f"{name:<40} {mbs:>12.1f} {r16 or '-':>11} {r14 or '-':>12} {allocs or '-':>10}")
PY
