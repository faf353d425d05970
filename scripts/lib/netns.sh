# Shared by scripts/demo.sh and scripts/netns-bench.sh (sourced, not run).
# The caller sets PROG (for messages), W (its work directory), A and B (the two
# namespace names it creates) and BG_TIMEOUT (seconds a background command may
# run), and then sources this file. Everything it starts goes through bg, so
# cleanup ends exactly those processes, by PID, then removes the namespaces and
# W; it runs on exit, also after an error or Ctrl-C.

PIDS=()

cleanup() {
  set +e
  exec 3>&- 2>/dev/null
  # Only the processes this script started, newest first, by PID.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[i]}" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  wait 2>/dev/null
  ip netns del "$A" 2>/dev/null
  ip netns del "$B" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for FILE PATTERN SECONDS: wait until FILE contains PATTERN.
wait_for() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$PROG: timed out waiting for '$2' in $1:" >&2
  tail -n 20 "$1" >&2 || true
  exit 1
}

# bg LOG CMD...: start CMD in the background (bounded to BG_TIMEOUT seconds),
# its output to LOG.
bg() {
  local log=$1
  shift
  timeout "$BG_TIMEOUT" "$@" >"$log" 2>&1 &
  PIDS+=($!)
}
