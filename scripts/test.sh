#!/usr/bin/env bash
# Runs every test of protium, in order: the C unit tests (ctest), the Python
# tests (pytest, against the same build), the C tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer, a short fault campaign
# (plain build, then the sanitizer build), and a bounded fuzz run.
# Prints one summary line at the end; exits non-zero if any part failed.
# Arguments name the parts to run (c python asan chaos fuzz); none = all.
# The SQL servers below serve whichever of c, python, asan run.
set -uo pipefail
cd "$(dirname "$0")/.."

parts=("$@")
for p in "${parts[@]}"; do
  case $p in
    c | python | asan | chaos | fuzz) ;;
    *) echo "scripts/test.sh: unknown part '$p' (c python asan chaos fuzz)" >&2; exit 2 ;;
  esac
done
wanted() { # wanted PART: whether it runs
  [ ${#parts[@]} -eq 0 ] && return 0
  local p
  for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done
  return 1
}

BUILD=${BUILD:-build}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
FUZZ_SECONDS=${FUZZ_SECONDS:-45}
CHAOS_RUNS=${CHAOS_RUNS:-120}
CHAOS_ASAN_RUNS=${CHAOS_ASAN_RUNS:-15}
passed=0
failed=0
failures=()

step() { # step PART NAME COMMAND...: runs one part if wanted, counting it
  wanted "$1" || return 0
  shift
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

# One PostgreSQL and one MariaDB serve the whole run (tests/sql_servers.sh):
# the C tests, the Python tests and the sanitizer pass each make a database
# of their own there (PT_TEST_PG_URL, PT_TEST_MYSQL_URL) rather than start
# servers of their own. Stopped and removed on every way out, Ctrl-C
# included; a server that does not start leaves its variable unset, and its
# tests start their own as when run alone.
unset PT_TEST_PG_URL PT_TEST_MYSQL_URL
# /tmp, as the fixtures: the postgres user must reach its data directory.
sql_dir=
if wanted c || wanted python || wanted asan; then
  sql_dir=$(mktemp -d /tmp/pt-sql.XXXXXX) || sql_dir=
fi
if [ -n "$sql_dir" ]; then
  trap 'tests/sql_servers.sh stop "$sql_dir"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  eval "$(tests/sql_servers.sh start "$sql_dir")"
fi

c_tests() { (cd "$BUILD" && ctest --output-on-failure -j "$JOBS"); }

# PT_REQUIRE_SPARK: the Spark comparisons (.venv-spark, made by setup) fail
# rather than skip when their environment is missing.
python_tests() {
  local dir=$BUILD
  case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
  PT_BUILD_DIR="$dir" PT_REQUIRE_SPARK=1 .venv/bin/python -m pytest -q tests/python
}

build_asan() {
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPT_SANITIZE=ON >/dev/null &&
    cmake --build build-asan -j "$JOBS" >/dev/null
}

asan_tests() {
  build_asan &&
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j "$JOBS")
}

fuzz_run() { scripts/fuzz.sh build-fuzz "$FUZZ_SECONDS"; }

chaos_run() { tests/chaos/run.sh "$BUILD" "$CHAOS_RUNS" | tail -n 25; }

chaos_asan_run() { # build-asan: built by asan_tests, or here when that part did not run
  { wanted asan || build_asan; } || return 1
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    tests/chaos/run.sh build-asan "$CHAOS_ASAN_RUNS" | tail -n 25
}

step c "C unit tests (ctest)" c_tests
step python "Python tests (pytest)" python_tests
step asan "C unit tests under ASan+UBSan (ctest)" asan_tests
step chaos "fault campaign ($CHAOS_RUNS runs)" chaos_run
step chaos "fault campaign under ASan+UBSan ($CHAOS_ASAN_RUNS runs)" chaos_asan_run
step fuzz "fuzz (libFuzzer, ${FUZZ_SECONDS}s per target)" fuzz_run

echo
if [ "$failed" -gt 0 ]; then
  echo "failed parts: ${failures[*]}"
fi
echo "test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
