"""spark_delta_server.py — one PySpark session with delta-spark, run by the
Spark environment's Python (.venv-spark) for spark_delta.py: it reads
requests from stdin, one JSON object a line ({"code": "..."}), runs the
code with `spark` and the helpers below in scope, and answers one line on
stdout, prefixed so that whatever Spark prints there is told apart:
"@@spark-delta@@ " + {"ok": true, "result": <the variable `result`>} or
{"ok": false, "error": "<traceback>"}. It stops at end of input.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import traceback

import pyarrow as pa
from pyspark.sql import SparkSession

MARK = "@@spark-delta@@ "


def session(jars_dir: str) -> SparkSession:
    jars = sorted(glob.glob(os.path.join(jars_dir, "*.jar")))
    return (SparkSession.builder.master("local[1]")
            .config("spark.jars", ",".join(jars))
            .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
            .config("spark.sql.catalog.spark_catalog",
                    "org.apache.spark.sql.delta.catalog.DeltaCatalog")
            .config("spark.sql.session.timeZone", "UTC")
            # Small tables: one task per step, not Spark's 200 shuffle
            # partitions nor Delta's 50 for replaying the log.
            .config("spark.sql.shuffle.partitions", "1")
            .config("spark.databricks.delta.snapshotPartitions", "1")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.memory", "1g")
            # A short run on a busy machine: the JIT's quick tier only and
            # one GC thread spend less CPU than the server defaults.
            .config("spark.driver.extraJavaOptions",
                    "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
            # Tiny tables: compiling each query's whole-stage code costs
            # more CPU than it saves.
            .config("spark.sql.codegen.wholeStage", "false")
            # Delta's per-commit checksum file replays the whole state once
            # more after each write; readers do not need it.
            .config("spark.databricks.delta.writeChecksumFile.enabled", "false")
            .getOrCreate())


def save_arrow(df, path: str) -> list[str]:
    """Spark's reading of `df` as an Arrow IPC file at `path`; returns
    Spark's schema (simpleString) and row count for the test to check."""
    table = df.toArrow()
    with pa.OSFile(path, "wb") as f, pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table)
    return [df.schema.simpleString(), table.num_rows]


def load_arrow(path: str) -> pa.Table:
    with pa.OSFile(path, "rb") as f:
        return pa.ipc.open_file(f).read_all()


def frame(path: str, ddl: str):
    """A DataFrame of the rows of the Arrow IPC file at `path`, typed by the
    Spark DDL schema `ddl` (Spark's own conversion from Arrow)."""
    return spark.createDataFrame(load_arrow(path), schema=ddl)


def main() -> None:
    global spark
    spark = session(sys.argv[1])
    spark.sparkContext.setLogLevel("ERROR")
    scope = {"spark": spark, "save_arrow": save_arrow, "load_arrow": load_arrow,
             "frame": frame, "json": json, "os": os}
    print(MARK + json.dumps({"ok": True, "result": spark.version}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        scope.pop("result", None)
        try:
            exec(request["code"], scope)
            answer = {"ok": True, "result": scope.get("result")}
        except Exception:  # the test shows Spark's error
            answer = {"ok": False, "error": traceback.format_exc()}
        print(MARK + json.dumps(answer, default=str), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
