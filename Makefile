# protium — the two commands (make demo, make test) and the steps behind them.
# Every target sets up what it needs first (scripts/setup.sh is idempotent).

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
PY         := .venv/bin/python

RUNS       ?= 200
SEED       ?= $(shell date +%s)

.PHONY: all build setup demo demo-arrow test test-c test-python test-asan test-valgrind fuzz chaos bench clean

all: build

setup:
	@scripts/setup.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# The training story (examples/train_and_enrich.py) at full size.
demo: setup build
	@scripts/demo.sh $(BUILD) story

# The engine's pipeline and the Arrow layer (protium demo, every type, pyarrow).
demo-arrow: setup build
	@scripts/demo.sh $(BUILD) arrow

test: setup build
	@scripts/test.sh

# One part of make test each, with the servers make test starts for it (the
# shared PostgreSQL and MariaDB of the SQL tests).
test-c: setup build
	@BUILD=$(BUILD) scripts/test.sh c

test-python: setup build
	@BUILD=$(BUILD) scripts/test.sh python

test-asan: setup
	@scripts/test.sh asan

# The single-process C tests under valgrind's memcheck (the engine tests start
# executor processes, which ASan covers instead). Only definite leaks count:
# the IPC codec pool's threads live as long as the process, and their stacks
# show as "possibly lost".
test-valgrind: build
	@set -e; for t in $(BUILD)/tests/test_*; do \
	  case $$t in *engine*|*exec_task*|*barrier*) continue;; esac; \
	  echo "valgrind $$t"; \
	  valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
	    $$t >/dev/null; \
	done; echo "valgrind: clean"

fuzz:
	@scripts/fuzz.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

# The fault campaign (tests/chaos): RUNS jobs under random faults from SEED.
chaos: build
	@tests/chaos/run.sh $(BUILD) $(RUNS) $(SEED)

bench: setup build
	@bench/run ipc

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
