#!/usr/bin/env bash
# The demo behind `make demo`: the engine runs a pipeline on local[2]
# (`protium demo`: range -> map_batches -> repartition by key -> write_ipc ->
# read back and count); then the Arrow layer: a C program writes an Arrow IPC
# file with a column of every supported type (examples/every_type.c), pyarrow
# reads it back, and the protium command prints its schema and first rows.
# Usage: scripts/demo.sh BUILD_DIR. Exits non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:?usage: scripts/demo.sh BUILD_DIR}
protium="$build/protium"
every_type="$build/examples/every_type"
py=.venv/bin/python
for f in "$protium" "$every_type" "$py"; do
  [ -x "$f" ] || { echo "demo: $f is missing; run 'make demo' (it builds and sets up first)" >&2; exit 1; }
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
