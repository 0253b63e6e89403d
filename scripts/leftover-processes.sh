#!/usr/bin/env bash
# Fails when a process started from this build's `opsd` or `steno` binary still runs: every
# router, release and opsd a test starts must be stopped by that test (or by its harness when it
# fails), so one left behind is a leak to fix, not to tolerate. Waits up to 15 s for processes
# that are still stopping, then names what is left, stops it and exits 1.
# Usage: scripts/leftover-processes.sh <binary directory, e.g. target/debug>
set -euo pipefail
bin_dir=$(cd "${1:?usage: $0 <binary directory>}" && pwd)

leftovers() {
  local exe
  for proc in /proc/[0-9]*; do
    exe=$(readlink "$proc/exe" 2>/dev/null) || continue
    # A binary rebuilt while it ran reads as "<path> (deleted)".
    exe=${exe% (deleted)}
    if [ "$exe" = "$bin_dir/opsd" ] || [ "$exe" = "$bin_dir/steno" ]; then
      echo "${proc#/proc/}"
    fi
  done
}

for _ in $(seq 1 30); do
  [ -z "$(leftovers)" ] && exit 0
  sleep 0.5
done
echo "processes started by the tests are still running:" >&2
for pid in $(leftovers); do
  echo "  pid $pid: $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) (parent $(awk '{print $4}' "/proc/$pid/stat" 2>/dev/null), in $(readlink "/proc/$pid/cwd" 2>/dev/null))" >&2
  kill -KILL "$pid" 2>/dev/null || true
done
exit 1
