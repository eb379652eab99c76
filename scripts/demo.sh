#!/usr/bin/env bash
# The demos behind `make demo` and `make demo-arrow`.
#   story (make demo): examples/train_and_enrich.py, the training story at full
#     size: 2,000,000 click events written as Arrow IPC by the engine, features
#     with map_in_pandas, an MLP trained with DistributedDataParallel on 2 ranks
#     (one of them killed mid-epoch: the stage reruns and resumes from its
#     checkpoint), every event enriched with a predicted label and written out.
#   arrow (make demo-arrow): the engine runs a pipeline on local[2] (`protium
#     demo`: range -> map_batches -> repartition by key -> write_ipc -> read
#     back and count); then the Arrow layer: a C program writes an Arrow IPC
#     file with a column of every supported type (examples/every_type.c),
#     pyarrow reads it back, and the protium command prints its schema and rows.
# Usage: scripts/demo.sh BUILD_DIR [story|arrow]. Exits non-zero if a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:?usage: scripts/demo.sh BUILD_DIR [story|arrow]}
which=${2:-story}
py=.venv/bin/python

if [ "$which" = story ]; then
  [ -f "$build/libprotium.so" ] && [ -x "$py" ] ||
    { echo "demo: $build/libprotium.so or $py is missing; run 'make demo' (it builds and sets up first)" >&2; exit 1; }
  "$py" -c 'import torch' 2>/dev/null ||
    { echo "demo: torch is not installed in .venv; run scripts/setup.sh" >&2; exit 1; }
  # The killed rank dies at step 1,234 of 3,514; checkpoints every 100 steps.
  PT_BUILD_DIR="$PWD/$build" PYTHONPATH="$PWD/python" \
    exec "$py" examples/train_and_enrich.py --rows 2000000 --epochs 2 --kill-rank-at 1234
fi
[ "$which" = arrow ] || { echo "demo: no demo '$which' (story or arrow)" >&2; exit 2; }

protium="$build/protium"
every_type="$build/examples/every_type"
for f in "$protium" "$every_type" "$py"; do
  [ -x "$f" ] || { echo "demo: $f is missing; run 'make demo-arrow' (it builds and sets up first)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/protium-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
file="$work/every_type.arrow"

heading() { printf '\n=== %s ===\n' "$1"; }

heading "1. the engine: protium demo (a pipeline on local[2])"
"$protium" demo "$work/pipeline"
echo "its output: $(ls "$work/pipeline" | tr '\n' ' ')"

heading "2. C: build every Arrow type with pt_builder_*, write an IPC file"
"$every_type" "$file"

heading "3. pyarrow reads what protium wrote"
"$py" - "$file" <<'PY'
import sys
import pyarrow as pa

with pa.memory_map(sys.argv[1]) as source:
    reader = pa.ipc.open_file(source)
    table = reader.read_all()
print(f"{reader.num_record_batches} record batches, {table.num_rows} rows, "
      f"{table.num_columns} columns")
print(table.schema)
print()
table.validate(full=True)
# The first rows of a few columns, as pyarrow sees them (no pandas needed).
for name in ["id", "float32", "utf8", "decimal", "timestamp_ms_utc", "struct", "color"]:
    print(f"{name}: {table.column(name).slice(0, 3).to_pylist()}")
PY

heading "4. protium cat --schema"
"$protium" cat "$file" --schema

heading "5. protium cat --limit 5 (JSON lines)"
"$protium" cat "$file" --limit 5

heading "done"
echo "demo: every step succeeded"
