#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang, ASan and
# UBSan into BUILD_DIR and runs each for SECONDS, starting from the seed
# inputs committed in tests/fuzz/corpus/<target without "fuzz_">/.
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS. Exits non-zero on a crash (the
# crashing input is kept in BUILD_DIR/fuzz-artifacts/).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build=$1
seconds=$2
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPT_FUZZ=ON -DPT_TESTS=OFF >/dev/null
cmake --build "$build" -j "$jobs" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/pt-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"

status=0
found=0
for target in "$build"/fuzz/fuzz_*; do
  [ -x "$target" ] || continue
  found=1
  name=$(basename "$target")
  corpus="$work/$name"
  mkdir -p "$corpus"
  seeds="tests/fuzz/corpus/${name#fuzz_}"
  if [ -d "$seeds" ]; then cp "$seeds"/* "$corpus"/ 2>/dev/null || true; fi
  echo "fuzz: $name for ${seconds}s from $(ls "$corpus" | wc -l) seeds"
  # malloc_limit_mb: an allocation this large from a small input means a
  # length was trusted that should not have been.
  if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
       UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
       "$target" "$corpus" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
         -malloc_limit_mb=512 -artifact_prefix="$artifacts/$name-" -print_final_stats=1 \
         >"$work/$name.log" 2>&1; then
    status=1
    echo "fuzz: $name FAILED; the input is in $artifacts/; log tail:"
    tail -n 60 "$work/$name.log"
  else
    grep -E "^stat::number_of_executed_runs|^#[0-9]+.*DONE" "$work/$name.log" | tail -n 2 || true
    echo "fuzz: $name ok"
  fi
done
if [ "$found" -eq 0 ]; then
  echo "fuzz: no targets were built in $build/fuzz" >&2
  exit 1
fi
exit $status
