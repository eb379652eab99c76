"""Writes the Parquet files of Spark committed beside this script, with the
benchmark environment's PySpark (local mode):

    .venv-bench/bin/python tests/data/parquet/make_spark_files.py

spark_default.parquet: Spark's defaults (INT96 timestamps, SNAPPY, three-level
lists); spark_legacy.parquet: spark.sql.parquet.writeLegacyFormat (decimals
as FIXED_LEN_BYTE_ARRAY, Hive's legacy list and map layouts). Both hold the
same rows; test_parquet_spark.py reads them with protium and pyarrow.
"""

from __future__ import annotations

import glob
import shutil
import tempfile
from pathlib import Path

from pyspark.sql import SparkSession

HERE = Path(__file__).resolve().parent

ROWS = """
SELECT id,
       CAST(id * 1.5 AS DOUBLE) AS score,
       IF(id % 4 = 0, NULL, CONCAT('name-', id)) AS name,
       TIMESTAMP_SECONDS(1600000000 + id * 3601) AS ts,
       CAST(id / 7 AS DECIMAL(12, 3)) AS amount,
       IF(id % 5 = 0, NULL, SEQUENCE(0, id % 4)) AS tags,
       IF(id % 6 = 0, NULL, MAP('k', id, 'j', id * 2)) AS attrs,
       NAMED_STRUCT('a', id, 'b', IF(id % 3 = 0, NULL, ARRAY(CAST(id AS STRING)))) AS info,
       DATE_ADD(DATE '2024-01-01', CAST(id AS INT)) AS day
FROM RANGE(40)
"""


def main() -> None:
    spark = (SparkSession.builder.master("local[1]").appName("parquet-files")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.ui.enabled", "false").getOrCreate())
    try:
        for name, legacy in (("spark_default", "false"), ("spark_legacy", "true")):
            spark.conf.set("spark.sql.parquet.writeLegacyFormat", legacy)
            with tempfile.TemporaryDirectory() as tmp:
                out = f"{tmp}/out"
                spark.sql(ROWS).coalesce(1).write.parquet(out)
                part = glob.glob(f"{out}/part-*.parquet")[0]
                shutil.copy(part, HERE / f"{name}.parquet")
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
