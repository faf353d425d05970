#!/usr/bin/env bash
# Runs every Fuzz target in the module for the given time each (default 60s), one at a
# time (the machines have two cores), and prints how many executions each ran. Minimising a
# new input is capped at 5 s: with the default 60 s, targets with long inputs spend whole
# runs minimising (see docs/dev/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-60s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $f"
    go test -run '^$' -fuzz "^${f}\$" -fuzztime "$t" -fuzzminimizetime 5s -parallel 1 "$pkg" 2>&1 | grep -E 'elapsed|PASS|FAIL|ok|failing' | tail -3
  done
done
