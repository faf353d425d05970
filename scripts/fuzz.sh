#!/usr/bin/env bash
# Runs every Fuzz target in the module for the given time each (default 60s), one at a
# time (the machines have two cores), and prints how many executions each ran.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-60s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $f"
    go test -run '^$' -fuzz "^${f}\$" -fuzztime "$t" -parallel 1 "$pkg" 2>&1 | grep -E 'elapsed|PASS|FAIL|ok|failing' | tail -3
  done
done
