#!/usr/bin/env bash
# Runs every test of protium, in order: the C unit tests (ctest), the Python
# tests (pytest, against the same build), the C tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer, a short fault campaign
# (plain build, then the sanitizer build), and a bounded fuzz run.
# Prints one summary line at the end; exits non-zero if any part failed.
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
FUZZ_SECONDS=${FUZZ_SECONDS:-45}
CHAOS_RUNS=${CHAOS_RUNS:-120}
CHAOS_ASAN_RUNS=${CHAOS_ASAN_RUNS:-15}
passed=0
failed=0
failures=()

step() { # step NAME COMMAND...: runs one part, counting it
  local name=$1; shift
  echo
  echo "=== $name ==="
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$name")
  fi
}

# PT_REQUIRE_SQL: the SQL tests fail rather than skip when the PostgreSQL or
# MariaDB server or an ADBC driver wheel (all installed by scripts/setup.sh)
# is missing, so a pass means they ran.
export PT_REQUIRE_SQL=1

c_tests() { (cd "$BUILD" && ctest --output-on-failure -j "$JOBS"); }

# PT_REQUIRE_SPARK: the Spark comparisons (.venv-spark, made by setup) fail
# rather than skip when their environment is missing.
python_tests() {
  PT_BUILD_DIR="$PWD/$BUILD" PT_REQUIRE_SPARK=1 .venv/bin/python -m pytest -q tests/python
}

asan_tests() {
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPT_SANITIZE=ON >/dev/null &&
    cmake --build build-asan -j "$JOBS" >/dev/null &&
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j "$JOBS")
}

fuzz_run() { scripts/fuzz.sh build-fuzz "$FUZZ_SECONDS"; }

chaos_run() { tests/chaos/run.sh "$BUILD" "$CHAOS_RUNS" | tail -n 25; }

chaos_asan_run() { # build-asan was built by asan_tests
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    tests/chaos/run.sh build-asan "$CHAOS_ASAN_RUNS" | tail -n 25
}

step "C unit tests (ctest)" c_tests
step "Python tests (pytest)" python_tests
step "C unit tests under ASan+UBSan (ctest)" asan_tests
step "fault campaign ($CHAOS_RUNS runs)" chaos_run
step "fault campaign under ASan+UBSan ($CHAOS_ASAN_RUNS runs)" chaos_asan_run
step "fuzz (libFuzzer, ${FUZZ_SECONDS}s per target)" fuzz_run

echo
if [ "$failed" -gt 0 ]; then
  echo "failed parts: ${failures[*]}"
fi
echo "test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
