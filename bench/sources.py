"""sources.py — `bench/run sources`: reading a PostgreSQL table and a CSV
file into Arrow, and writing the table back, with protium against the peers
a user would pick, in the same run.

PostgreSQL: a throwaway server (PostgreSQL 15 from the distribution, in a
temporary directory on a free port, like the tests'; or, with PT_BENCH_PG_URL
set, a database of its own on that running server, dropped at the end) holds PT_BENCH_ROWS
rows (default 2,000,000) of (id int8, x float8, label text, ts timestamp,
amount numeric(12,2)). Read into one Arrow table in the driver process:
protium `s.read_sql(url, table=..., column="id", ..., num_partitions=P)
.to_arrow()` on local[P], and PySpark's JDBC source on local[P] with the
same partitioning, `.toArrow()` (PostgreSQL JDBC driver from Maven Central,
fetched once with mvn into $PT_BUILD_DIR/jars), for P = 1, 2, 4; beside
them the Python peers a user would pick: the ADBC PostgreSQL driver
(`adbc_driver_postgresql.dbapi`, `fetch_arrow_table()`, one connection and
one range query per partition in P threads), ConnectorX
(`read_sql(..., partition_on="id", partition_num=P, return_type="arrow")`)
and pandas.read_sql over SQLAlchemy + psycopg2 (one connection: P = 1 only);
and protium itself reading through the ADBC driver (`adbc:` URL, system
protium_adbc) against its own libpq path. Write:
PT_BENCH_WRITE_ROWS rows (default PT_BENCH_ROWS) of the same columns from Arrow
into a new table, protium `write_sql` (exactly once: staged, then one
transaction) against PySpark's `write.jdbc` (batched INSERTs), 2 partitions.
The server checkpoints after loading the table and before every timed
write (untimed), so that no system pays for flushing the WAL of what ran
before it: a checkpoint that max_wal_size forced in the middle of a write
made protium's 2M-row write 0.9 M rows/s instead of 1.5.

CSV: PT_BENCH_CSV_MIB MiB (default 1024) of the same columns written by
pyarrow.csv, the schema inferred by each system. Case csv, every row into one
Arrow table in this process: protium `read_csv(path, header=True).to_arrow()`
on local[2] with its defaults (one byte range per task slot; each executor
parses its range and writes the batches to a result file that this process
maps), `pyarrow.csv.read_csv(path)` (its threads) and DuckDB
`SELECT * FROM read_csv_auto(path)` to Arrow. Case csv_count, the rows
counted, no table handed back: protium `read_csv(...).count()` (FAILFAST:
each record's structure checked, no value converted), DuckDB
`SELECT count(*) FROM read_csv_auto(path)`,
and pyarrow's read as above (it cannot count without building the table).
The difference between protium's two cases is what moving the table to
this process costs.

Delta: PT_BENCH_DELTA_ROWS rows (default 1,000,000) of the same columns
written by deltalake as a table of PT_BENCH_DELTA_FILES commits (default 4),
one file each; read into one Arrow table by protium
`read_delta(path).to_arrow()` (local[2]) and by deltalake
(`DeltaTable(path).to_pyarrow_table()`, delta-rs's reader), case delta.

Metrics: <system>.read_cpu_s.csv (the least CPU seconds of a CSV read into
Arrow: protium's driver and executors, the peer's whole process) and
ratio.read_cpu.csv.<peer> (peer's / protium's, higher is better for
protium), since on a shared VM the wall clock of one run can swing by half;
<system>.read_rows_per_s.<case> (systems protium, protium_adbc,
pyspark, adbc, connectorx, pandas, pyarrow, duckdb, deltalake), <system>.write_rows_per_s.<case>,
ratio.read.<case>.<peer> and ratio.write.<case>.<peer> (protium / peer,
higher is better for protium); cases pg_p1, pg_p2, pg_p4, csv, csv_count, delta,
pg_write.
Each figure is the best of PT_BENCH_REPEATS runs (default 3); the reads
of one case run in rounds, every system once per round in turn, so that
a stretch of time in which the machine runs slower (its host's other load)
falls on every system alike, not on all the runs of one;
PT_BENCH_CASES (default pg,csv,delta) picks the cases (csv and delta
need no PostgreSQL server);
PT_BENCH_PARTITIONS (default 1,2,4) and PT_BENCH_SPARK=0 (PySpark left out,
as the test's tiny run does) narrow a run. A peer that
fails (no Java, no network for the jar) is left out with its reason on
stderr. Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "bench"))
BUILD = Path(os.environ.get("PT_BUILD_DIR", ROOT / "build"))
os.environ.setdefault("PT_BUILD_DIR", str(BUILD))
ROWS = int(os.environ.get("PT_BENCH_ROWS", "2000000"))
WRITE_ROWS = int(os.environ.get("PT_BENCH_WRITE_ROWS", str(ROWS)))
CSV_MIB = int(os.environ.get("PT_BENCH_CSV_MIB", "1024"))
DELTA_ROWS = int(os.environ.get("PT_BENCH_DELTA_ROWS", "1000000"))
DELTA_FILES = int(os.environ.get("PT_BENCH_DELTA_FILES", "4"))
REPEATS = int(os.environ.get("PT_BENCH_REPEATS", "3"))
PARTS = [int(p) for p in os.environ.get("PT_BENCH_PARTITIONS", "1,2,4").split(",")]
SPARK = os.environ.get("PT_BENCH_SPARK", "1") != "0"  # 0: leave PySpark out (the tests)
CASES = set(os.environ.get("PT_BENCH_CASES", "pg,csv,delta").split(","))  # pg: read and write
PG_BIN = Path("/usr/lib/postgresql/15/bin")
JDBC = "org.postgresql:postgresql:42.7.14"
JAR = BUILD / "jars" / "postgresql-42.7.14.jar"


def log(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


def best(fn, repeats: int = REPEATS, setup=None) -> float:
    t = float("inf")
    for _ in range(repeats):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def best_rounds(fns: dict, repeats: int = REPEATS) -> dict:
    """The best time of each of fns (name -> function) over `repeats`
    rounds, each round running every one once in turn: a machine whose
    speed changes for seconds at a time (a neighbour's load on the host)
    then slows every system alike instead of all the runs of one. A peer
    that raises is left out, its reason logged; protium's own paths
    ("protium", "protium_count") fail the run."""
    t = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if name not in t:
                continue
            try:
                t0 = time.perf_counter()
                fn()
                t[name] = min(t[name], time.perf_counter() - t0)
            except Exception as e:  # noqa: BLE001 - a peer's failure leaves it out
                if name in ("protium", "protium_count"):
                    raise
                log(f"{name}: {e!r}; left out")
                del t[name]
    return t


def tree_cpu(pids) -> float:
    """CPU seconds (user + system) so far of this process and of pids."""
    t = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            t += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass  # gone: its CPU is not counted
    return t


def with_cpu(name: str, fn, pids, best_cpu: dict):
    """fn, also keeping in best_cpu[name] the least CPU time of a run:
    this process's and that of the processes pids() lists."""
    def run() -> None:
        ps = pids()
        c0 = tree_cpu(ps)
        fn()
        c = tree_cpu(ps) - c0
        best_cpu[name] = min(best_cpu.get(name, float("inf")), c)
    return run


# Metrics that finish() adds as they are (no ratio derived from them).
EXTRA: dict[str, float] = {}


# ---------------------------------------------------------------- PostgreSQL

def as_postgres(cmd: list[str]) -> None:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self) -> None:
        shared = os.environ.get("PT_BENCH_PG_URL")
        if shared:  # a running server (the test session's): a database of our own on it
            self.dir = None
            self.admin = shared
            db = f"pt_bench_{os.getpid()}"
            self.url = shared.rsplit("/", 1)[0] + "/" + db
            subprocess.run(["psql", shared, "-v", "ON_ERROR_STOP=1", "-qc",
                            f"CREATE DATABASE {db}"], check=True, capture_output=True)
            host = shared.split("@", 1)[-1].split("/", 1)[0]
            self.jdbc = f"jdbc:postgresql://{host}/{db}"
            return
        # /tmp itself: the postgres user must reach it (TMPDIR may be private).
        self.dir = tempfile.mkdtemp(prefix="pt-bench-pg.", dir="/tmp")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        as_postgres([str(PG_BIN / "initdb"), "-D", f"{self.dir}/data", "-U", "postgres",
                     "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        self.port = free_port()
        as_postgres([str(PG_BIN / "pg_ctl"), "-D", f"{self.dir}/data", "-l", f"{self.dir}/log",
                     "-w", "-o", f"-k {self.dir} -h 127.0.0.1 -p {self.port}", "start"])
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.jdbc = f"jdbc:postgresql://127.0.0.1:{self.port}/postgres"

    def sql(self, text: str) -> str:
        return subprocess.run(["psql", self.url, "-v", "ON_ERROR_STOP=1", "-Atc", text],
                              check=True, capture_output=True, text=True).stdout.strip()

    def stop(self) -> None:
        if self.dir is None:
            db = self.url.rsplit("/", 1)[1]
            subprocess.run(["psql", self.admin, "-qc", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"],
                           check=True, capture_output=True)
            return
        as_postgres([str(PG_BIN / "pg_ctl"), "-D", f"{self.dir}/data", "-m", "fast", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)


def fetch_jar() -> Path | None:
    if JAR.exists():
        return JAR
    JAR.parent.mkdir(parents=True, exist_ok=True)
    log(f"sources: fetching {JDBC} with mvn into {JAR.parent}")
    r = subprocess.run(["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={JDBC}",
                        f"-DoutputDirectory={JAR.parent}"], capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0 or not JAR.exists():
        log("sources: could not fetch the JDBC driver; PySpark left out:\n" + r.stdout[-2000:])
        return None
    return JAR


def spark_session(parts: int, jar: Path):
    from pyspark.sql import SparkSession
    return (SparkSession.builder.master(f"local[{parts}]").appName("bench-sources")
            .config("spark.jars", str(jar))
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.driver.memory", "4g")
            .getOrCreate())


def make_arrow(n: int, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = np.arange(n, dtype=np.int64)
    words = np.array([f"label-{i:05d}" for i in range(4096)])
    ts = (np.int64(1_700_000_000_000_000) + rng.integers(0, 10**12, n)).astype("datetime64[us]")
    # int64 casts to decimal128(21, 2) at least; the values then fit (12, 2).
    amount = pa.array(rng.integers(-10**8, 10**8, n)).cast(pa.decimal128(21, 2)) \
        .cast(pa.decimal128(12, 2))
    return pa.table({"id": ids, "x": rng.standard_normal(n),
                     "label": pa.array(words[rng.integers(0, 4096, n)]),
                     "ts": pa.array(ts, pa.timestamp("us")), "amount": amount})


def ranges(p: int) -> list[str]:
    """Spark JDBC's ranges of id over [0, ROWS) in p partitions, as protium
    makes them (the first open below and taking NULLs, the last open above)."""
    if p == 1:
        return ["TRUE"]
    step = ROWS // p
    cuts = [step * i for i in range(1, p)]
    out = [f"id < {cuts[0]} OR id IS NULL"]
    out += [f"id >= {a} AND id < {b}" for a, b in zip(cuts, cuts[1:])]
    return out + [f"id >= {cuts[-1]}"]


def adbc_read(url: str, p: int) -> None:
    """The ADBC PostgreSQL driver from Python, a connection per range, the
    ranges in p threads (the driver releases the GIL while it reads)."""
    from concurrent.futures import ThreadPoolExecutor

    import adbc_driver_postgresql.dbapi as adbc

    def one(where: str) -> pa.Table:
        with adbc.connect(url) as c, c.cursor() as cur:
            cur.execute(f"SELECT * FROM events WHERE {where}")
            return cur.fetch_arrow_table()
    with ThreadPoolExecutor(p) as ex:
        t = pa.concat_tables(ex.map(one, ranges(p)))
    assert t.num_rows == ROWS, t.num_rows


def cx_read(url: str, p: int) -> None:
    import connectorx as cx
    kw = dict(partition_on="id", partition_num=p, partition_range=(0, ROWS)) if p > 1 else {}
    t = cx.read_sql(url, "SELECT * FROM events", return_type="arrow", **kw)
    assert t.num_rows == ROWS, t.num_rows


def pandas_read(url: str, p: int) -> None:
    import pandas as pd
    import sqlalchemy
    eng = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
    with eng.connect() as c:
        df = pd.read_sql("SELECT * FROM events", c)
    eng.dispose()
    assert len(df) == ROWS, len(df)


def main() -> None:
    import protium as pt

    metrics: dict[str, float] = {}
    rows_table = []

    def record(system: str, kind: str, case: str, rows: int, seconds: float) -> None:
        rps = rows / seconds
        metrics[f"{system}.{kind}_rows_per_s.{case}"] = rps
        rows_table.append((case, kind, system, rps))
        print(f"{case:9s} {kind:5s} {system:8s} {rps / 1e6:8.2f} M rows/s", flush=True)

    if "pg" not in CASES:
        if "csv" in CASES:
            csv_case(pt, record)
        if "delta" in CASES:
            delta_case(pt, record)
        finish(metrics)
        return

    pg = Postgres()
    try:
        pg.sql(f"CREATE TABLE events (id int8, x float8, label text, ts timestamp, "
               f"amount numeric(12,2)); INSERT INTO events SELECT g, random() * 2 - 1, "
               f"'label-' || lpad((g % 4096)::text, 5, '0'), TIMESTAMP '2024-01-01' + "
               f"g * INTERVAL '1 second', round((random() * 2000000 - 1000000)::numeric, 2) "
               f"FROM generate_series(0, {ROWS - 1}) g")
        pg.sql("VACUUM ANALYZE events")  # not inside the transaction above
        pg.sql("CHECKPOINT")  # the load's WAL flushed now, not during the first reads
        jar = fetch_jar() if SPARK else None
        # -- reads
        for p in PARTS:
            case = f"pg_p{p}"
            with pt.Session(f"local[{p}]") as s:
                def read() -> None:
                    t = s.read_sql(pg.url, table="events", column="id", lower_bound=0,
                                   upper_bound=ROWS, num_partitions=p).to_arrow()
                    assert t.num_rows == ROWS, t.num_rows

                def aread() -> None:
                    t = s.read_sql("adbc:" + pg.url, table="events", column="id",
                                   lower_bound=0, upper_bound=ROWS,
                                   num_partitions=p).to_arrow()
                    assert t.num_rows == ROWS, t.num_rows
                fns = {"protium": read, "protium_adbc": aread,
                       "adbc": lambda: adbc_read(pg.url, p),
                       "connectorx": lambda: cx_read(pg.url, p)}
                if p == 1:
                    fns["pandas"] = lambda: pandas_read(pg.url, p)
                for system, t in best_rounds(fns).items():
                    record(system, "read", case, ROWS, t)
            if jar:
                try:
                    spark = spark_session(p, jar)
                    def sread() -> None:
                        df = spark.read.jdbc(pg.jdbc, "events", column="id", lowerBound=0,
                                             upperBound=ROWS, numPartitions=p,
                                             properties={"user": "postgres",
                                                         "driver": "org.postgresql.Driver",
                                                         "fetchsize": "10000"})
                        assert df.toArrow().num_rows == ROWS
                    record("pyspark", "read", case, ROWS, best(sread))
                    spark.stop()
                except Exception as e:  # noqa: BLE001 - a peer's failure leaves it out
                    log(f"pyspark read {case}: {e!r}; left out")
        # -- writes
        data = make_arrow(WRITE_ROWS)

        def checkpoint() -> None:
            # Each timed write starts from a clean checkpoint, so that neither
            # system pays for flushing what came before it (the table load,
            # the other's writes) when the server's WAL reaches max_wal_size.
            pg.sql("CHECKPOINT")
        with pt.Session("local[2]") as s:
            ds = s.from_arrow(data, partitions=2)
            k = [0]

            def write() -> None:
                k[0] += 1
                ds.write_sql(pg.url, f"w_protium_{k[0]}", mode="error")
            record("protium", "write", "pg_write", WRITE_ROWS, best(write, setup=checkpoint))
        assert pg.sql("SELECT count(*) FROM w_protium_1") == str(WRITE_ROWS)
        if jar:
            try:
                spark = spark_session(2, jar)
                df = spark.createDataFrame(data.to_pandas()).repartition(2).cache()
                df.count()
                k = [0]

                def swrite() -> None:
                    k[0] += 1
                    df.write.jdbc(pg.jdbc, f"w_spark_{k[0]}", mode="error",
                                  properties={"user": "postgres",
                                              "driver": "org.postgresql.Driver"})
                record("pyspark", "write", "pg_write", WRITE_ROWS, best(swrite, setup=checkpoint))
                spark.stop()
            except Exception as e:  # noqa: BLE001
                log(f"pyspark write: {e!r}; left out")
    finally:
        pg.stop()

    if "csv" in CASES:
        csv_case(pt, record)

    if "delta" in CASES:
        delta_case(pt, record)

    finish(metrics)


def csv_case(pt, record) -> None:
    work = Path(tempfile.mkdtemp(prefix="pt-bench-csv."))
    try:
        path = work / "events.csv"
        chunk = make_arrow(200_000, seed=5)
        with pacsv.CSVWriter(path, chunk.schema) as w:
            while path.stat().st_size < CSV_MIB * (1 << 20):
                w.write_table(chunk)
        n_csv = pacsv.read_csv(path).num_rows
        # csv: every row into one Arrow table in this process; csv_count: the
        # rows counted where they are (no table handed back).
        try:
            import duckdb
        except ImportError as e:
            duckdb = None
            log(f"duckdb csv: {e!r}; left out")

        def dread() -> None:
            con = duckdb.connect()
            got = con.sql(f"SELECT * FROM read_csv_auto('{path}')").arrow()
            got = got.read_all() if hasattr(got, "read_all") else got  # a reader in 2.x
            assert got.num_rows == n_csv
            con.close()

        def dcount() -> None:
            con = duckdb.connect()
            got = con.sql(f"SELECT count(*) FROM read_csv_auto('{path}')").fetchall()[0][0]
            assert got == n_csv
            con.close()

        def aread() -> None:
            assert pacsv.read_csv(path).num_rows == n_csv
        cpu: dict[str, float] = {}
        with pt.Session("local[2]") as s:
            def pread() -> None:
                assert s.read_csv(path, header=True).to_arrow().num_rows == n_csv

            def pcount() -> None:
                assert s.read_csv(path, header=True).count() == n_csv
            fns = {"protium": with_cpu("protium", pread, s.executor_pids, cpu),
                   "protium_count": pcount,
                   "pyarrow": with_cpu("pyarrow", aread, list, cpu)}
            if duckdb is not None:
                fns.update(duckdb=with_cpu("duckdb", dread, list, cpu), duckdb_count=dcount)
            t = best_rounds(fns)
        # CPU per read into Arrow (the least of the rounds): protium's
        # driver and executors, the peers' whole process (all threads).
        for system, c in cpu.items():
            EXTRA[f"{system}.read_cpu_s.csv"] = round(c, 3)
        for peer in ("pyarrow", "duckdb"):
            if peer in cpu and cpu.get("protium"):
                EXTRA[f"ratio.read_cpu.csv.{peer}"] = round(cpu[peer] / cpu["protium"], 3)
        for system, case in (("protium", "csv"), ("protium_count", "csv_count"),
                             ("pyarrow", "csv"), ("pyarrow", "csv_count"),
                             ("duckdb", "csv"), ("duckdb_count", "csv_count")):
            # pyarrow has no way to count without a table: its read counts.
            if system in t:
                record(system.split("_")[0], "read", case, n_csv, t[system])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def delta_case(pt, record) -> None:
    """A table of DELTA_FILES commits written by deltalake, read by both."""
    work = Path(tempfile.mkdtemp(prefix="pt-bench-delta."))
    try:
        from deltalake import DeltaTable, write_deltalake

        path = work / "events"
        data = make_arrow(DELTA_ROWS, seed=7)
        step = -(-DELTA_ROWS // DELTA_FILES)
        for k in range(0, DELTA_ROWS, step):
            write_deltalake(str(path), data.slice(k, step), mode="append")
        with pt.Session("local[2]") as s:
            def pdelta() -> None:
                assert s.read_delta(path).to_arrow().num_rows == DELTA_ROWS

            def ddelta() -> None:
                assert DeltaTable(str(path)).to_pyarrow_table().num_rows == DELTA_ROWS
            t = best_rounds({"protium": pdelta, "deltalake": ddelta})
        for system, v in t.items():
            record(system, "read", "delta", DELTA_ROWS, v)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def finish(metrics: dict[str, float]) -> None:
    for key, v in list(metrics.items()):
        system, kind, case = key.split(".")
        if system == "protium":
            continue
        mine = metrics.get(f"protium.{kind}.{case}")
        if mine:
            metrics[f"ratio.{kind.split('_')[0]}.{case}.{system}"] = mine / v
    metrics.update(EXTRA)
    print(json.dumps({"bench": "sources", "metrics": metrics}))


if __name__ == "__main__":
    main()
