#!/usr/bin/env bash
# Microbenchmarks of the protocol core and the engine, with ratios against a baseline
# measured in the same run: the engine's encrypt/decrypt paths against the bare AEAD
# seal/open of the same AEAD (so the ratio is what the rewriting costs on top of the
# cryptography). Usage: scripts/bench.sh [benchtime] (default 1s). Needs no root.
set -euo pipefail
cd "$(dirname "$0")/.."
bt=${1:-1s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(go version | cut -d' ' -f3) $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
go test -run '^$' -bench 'Seal|Open' -benchtime "$bt" -benchmem ./crypto/ | tee -a "$out"
go test -run '^$' -bench 'Encrypt|Decrypt|Handshake|SegmentOverhead' -benchtime "$bt" -benchmem ./engine/ | tee -a "$out"
go test -run '^$' -bench 'Parse|Rebuild|TCPChecksum' -benchtime "$bt" -benchmem ./packet/ | tee -a "$out"
python3 - "$out" <<'PY'
import re, sys
mbs = {}
for line in open(sys.argv[1]):
    m = re.match(r"Benchmark(\S+?)-\d+\s+\d+\s+([\d.]+) ns/op\s+([\d.]+) MB/s", line)
    if m:
        mbs[m.group(1)] = float(m.group(3))
names = {"AES128GCM": "AEAD_AES_128_GCM", "AES256GCM": "AEAD_AES_256_GCM", "ChaCha20Poly1305": "AEAD_CHACHA20_POLY1305"}
print("\n# engine throughput relative to the bare AEAD (same run)")
print(f"{'path':<34} {'engine MB/s':>12} {'AEAD MB/s':>10} {'ratio':>6}")
for short, long in names.items():
    for path, base in (("Encrypt", "Seal"), ("Decrypt", "Open")):
        for size, bsize in (("1448", "1400"), ("65000", "16384")):
            e = mbs.get(f"{path}/{short}/{size}")
            a = mbs.get(f"{base}/{long}/{bsize}")
            if e and a:
                print(f"{path+'/'+short+'/'+size:<34} {e:>12.1f} {a:>10.1f} {e/a:>6.2f}")
PY
