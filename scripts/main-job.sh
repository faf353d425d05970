#!/usr/bin/env bash
# The main job: regenerate the tcpcrypt test vectors from their fixed inputs and check
# that they match the committed file byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
go run ./internal/cmd/genvectors -o "$tmp"
if cmp -s "$tmp" testdata/vectors/tcpcrypt.json; then
  echo "vectors: testdata/vectors/tcpcrypt.json regenerated identically ($(grep -o '"name"' "$tmp" | wc -l) cases)"
else
  echo "vectors: regenerated file differs from testdata/vectors/tcpcrypt.json" >&2
  exit 1
fi
