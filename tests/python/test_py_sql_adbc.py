"""Session.read_sql through ADBC drivers (the adbc-driver-sqlite and
adbc-driver-postgresql wheels' shared libraries, loaded by protium through
the ADBC C ABI): a SQLite file made here with Python's sqlite3 and read with
Spark JDBC ranges against the same rows through the adbc_driver_sqlite DB-API
as the reference; the PostgreSQL driver against a database of this module's
own (tests/python/sql_servers.py), compared with protium's own libpq reader;
errors stay clear."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest

import protium as pt
from sql_require import require_module
from sql_servers import pg, psql  # noqa: F401 - pg: the module's database

adbc_sqlite = require_module("adbc_driver_sqlite.dbapi", "adbc-driver-sqlite")


@pytest.fixture(scope="module")
def session():
    with pt.Session("local[2]") as s:
        yield s


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("adbc") / "events.db"
    c = sqlite3.connect(path)
    c.execute("CREATE TABLE ev (id INTEGER, score REAL, label TEXT, raw BLOB)")
    c.executemany("INSERT INTO ev VALUES (?, ?, ?, ?)",
                  [(i, i / 8, f"e{i}", bytes([i % 256])) for i in range(4000)])
    c.execute("INSERT INTO ev (label) VALUES ('no id')")
    c.commit()
    c.close()
    return path


def test_sqlite_ranges_match_the_reference(session, db) -> None:
    ds = session.read_sql(f"adbc:sqlite://{db}", table="ev", column="id", lower_bound=0,
                          upper_bound=4000, num_partitions=4)
    assert ds.num_partitions == 4
    got = ds.to_arrow()
    with adbc_sqlite.connect(str(db)) as c, c.cursor() as cur:
        cur.execute("SELECT * FROM ev")
        want = cur.fetch_arrow_table()
    assert got.schema == want.schema == pa.schema(
        [("id", pa.int64()), ("score", pa.float64()), ("label", pa.string()),
         ("raw", pa.binary())])
    key = lambda r: (r["id"] is None, r["id"] or 0)  # noqa: E731
    assert sorted(got.to_pylist(), key=key) == sorted(want.to_pylist(), key=key)


def test_postgresql_driver_matches_libpq(pg, session) -> None:  # noqa: F811
    require_module("adbc_driver_postgresql", "adbc-driver-postgresql")
    psql(pg, "CREATE TABLE IF NOT EXISTS adbc_ev (id int8, x float8, s text, ts timestamp); "
             "TRUNCATE adbc_ev; INSERT INTO adbc_ev SELECT g, g / 3.0, 's' || g, "
             "TIMESTAMP '2024-01-01' + g * INTERVAL '1 minute' FROM generate_series(1, 3000) g")
    kw = dict(table="adbc_ev", column="id", lower_bound=1, upper_bound=3000, num_partitions=3)
    mine = session.read_sql(pg, **kw).to_arrow().sort_by("id")
    adbc = session.read_sql("adbc:" + pg, **kw).to_arrow().sort_by("id")
    assert adbc.num_rows == 3000
    assert adbc.column("id").to_pylist() == mine.column("id").to_pylist()
    assert adbc.column("s").to_pylist() == mine.column("s").to_pylist()
    assert adbc.column("x").to_pylist() == mine.column("x").to_pylist()
    assert adbc.column("ts").cast(pa.timestamp("us")).to_pylist() == \
        mine.column("ts").to_pylist()


def _batch_rows(ds) -> list[int]:
    def sizes(batches):
        for b in batches:
            yield pa.record_batch({"n": pa.array([b.num_rows], pa.int64())})
    return ds.map_in_arrow(sizes, "n long").to_arrow().column("n").to_pylist()


def test_sqlite_fetch_size(session, db) -> None:
    # The SQLite driver's batch_rows option: batches of exactly fetch_size
    # rows but the last, all rows there.
    kw = dict(table="ev", column="id", lower_bound=0, upper_bound=4000, num_partitions=2)
    small = _batch_rows(session.read_sql(f"adbc:sqlite://{db}", fetch_size=300, **kw))
    assert sum(small) == 4001 and max(small) == 300 and len(small) >= 4001 // 300
    big = _batch_rows(session.read_sql(f"adbc:sqlite://{db}", fetch_size=5000, **kw))
    assert sum(big) == 4001 and len(big) == 2


def test_postgresql_driver_fetch_size(pg, session) -> None:  # noqa: F811
    require_module("adbc_driver_postgresql", "adbc-driver-postgresql")
    # The PostgreSQL driver sizes batches by an estimate of their bytes:
    # fetch_size becomes that hint, so batches come out about that many rows.
    psql(pg, "CREATE TABLE IF NOT EXISTS adbc_fs (id int8, x float8); TRUNCATE adbc_fs; "
             "INSERT INTO adbc_fs SELECT g, g / 7.0 FROM generate_series(1, 20000) g")
    small = _batch_rows(session.read_sql("adbc:" + pg, table="adbc_fs", fetch_size=1000))
    big = _batch_rows(session.read_sql("adbc:" + pg, table="adbc_fs", fetch_size=100000))
    assert sum(small) == sum(big) == 20000
    assert len(big) == 1
    assert len(small) >= 10 and max(small) <= 4000


def test_errors(session, db, tmp_path: Path) -> None:
    with pytest.raises(pt.ProtiumError, match="cannot load the sqlite driver"):
        session.read_sql(f"adbc:sqlite://{db}", table="ev",
                         adbc_driver=str(tmp_path / "missing.so"))
    with pytest.raises(pt.ProtiumError, match="the query was refused: .*no_such"):
        session.read_sql(f"adbc:sqlite://{db}", table="no_such")
    with pytest.raises(pt.ProtiumError, match="writing supports the sqlite and postgresql"):
        session.range(3).write_sql("adbc:flightsql://127.0.0.1:1", "w")


def test_write_through_the_drivers(pg, session, tmp_path: Path) -> None:  # noqa: F811
    require_module("adbc_driver_postgresql", "adbc-driver-postgresql")
    # The installed driver wheels' libraries, found by the package for the
    # executors; exactly once, also when a task attempt fails after staging.
    marker = tmp_path / "failed-once"

    def fail_once(it):
        for b in it:
            yield b
            # Partition 1's first attempt fails once its rows are staged.
            if b.column(0)[0].as_py() == 2500 and not marker.exists():
                marker.write_text("x")
                raise RuntimeError("injected failure")

    ds = session.range(10000, partitions=4).map_in_arrow(fail_once, schema="id long")
    out = tmp_path / "out.db"
    ds.write_sql(f"adbc:sqlite://{out}", "w")
    assert marker.exists()
    c = sqlite3.connect(out)
    assert c.execute("SELECT count(*), count(DISTINCT id), sum(id) FROM w").fetchone() == \
        (10000, 10000, 49995000)
    assert c.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'pt%'").fetchone() == (0,)
    c.close()
    marker.unlink()
    ds.write_sql("adbc:" + pg, "adbc_w", mode="overwrite")
    assert marker.exists()
    assert psql(pg, "SELECT count(*), count(DISTINCT id) FROM adbc_w") == "10000|10000"
