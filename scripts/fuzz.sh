#!/usr/bin/env bash
# Runs every Fuzz target of both modules (the daemon's and deploy/) for the given time each (default 60s), one at a
# time (the machines have two cores), and prints how many executions each ran. Minimising a
# new input is capped at 5 s: with the default 60 s, targets with long inputs spend whole
# runs minimising (see docs/dev/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-60s}
failed=()
root=$PWD
for mod in . deploy; do
  cd "$root/$mod"
  for pkg in $(go list ./...); do
    dir=$(go list -f '{{.Dir}}' "$pkg")
    for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
      echo "== $pkg $f"
      log=$(mktemp)
      if go test -run '^$' -fuzz "^${f}\$" -fuzztime "$t" -fuzzminimizetime 5s -parallel 1 "$pkg" >"$log" 2>&1; then
        grep -E 'elapsed' "$log" | tail -1
      else
        # Keep going: one failing target must not hide the others. Print the
        # whole failure (the crasher, if any, is in testdata/fuzz/).
        grep -vE '^fuzz: elapsed' "$log" | tail -30
        failed+=("$pkg $f")
      fi
      rm -f "$log"
    done
  done
done
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
