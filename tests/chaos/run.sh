#!/usr/bin/env bash
# The fault campaign: tests/chaos/run.sh [BUILD] [RUNS] [SEED]. Runs the
# chaos program of BUILD on a small tmpfs of its own (so that it may fill
# the disk) when it can mount one (root); otherwise in a temporary
# directory, without the disk-full fault, and says so. The last line is the
# campaign's JSON; the exit status is non-zero if any run failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
RUNS=${2:-10}
SEED=${3:-$(date +%s)}
exe="$BUILD/tests/chaos"
if [ ! -x "$exe" ]; then
  echo "chaos: $exe is missing: build first (make build)" >&2
  exit 2
fi
root=$(mktemp -d "${TMPDIR:-/tmp}/pt-chaos-XXXXXX")
disk=()
if mount -t tmpfs -o size=256m,mode=0700 tmpfs "$root" 2>/dev/null; then
  disk=(--disk-full)
  trap 'umount "$root"; rmdir "$root"' EXIT
else
  echo "chaos: cannot mount a tmpfs on $root (needs root): the disk-full fault is skipped"
  trap 'rm -rf "$root"' EXIT
fi
"$exe" --dir "$root" --runs "$RUNS" --seed "$SEED" "${disk[@]}"
