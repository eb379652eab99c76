"""Session.read_sql and Dataset.write_sql against a real MariaDB (a database
of this module's own: tests/python/sql_servers.py), with the mariadb client
as the reference: a partitioned read gives the server's rows once each, writes
land exactly once in every mode, also when a task attempt fails after
staging rows."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

import protium as pt
from sql_require import require_mariadb
from sql_servers import mariadb, my  # noqa: F401 - my: the module's database


@pytest.fixture(autouse=True)
def _needs_mariadb() -> None:
    require_mariadb()


@pytest.fixture(scope="module")
def session():
    with pt.Session("local[2]", conf={"range.batch_rows": "1000"}) as s:
        yield s


def test_read_partitioned_matches_server(my, session) -> None:
    mariadb(my, "CREATE TABLE events (id BIGINT, score DOUBLE, label VARCHAR(20), day DATE, "
                "amount DECIMAL(10,2)); INSERT INTO events SELECT seq, seq / 4, "
                "CONCAT('e', seq), DATE '2020-02-28' + INTERVAL (seq % 3) DAY, seq * 0.01 "
                "FROM seq_1_to_3000; INSERT INTO events (id, label) VALUES (NULL, 'no id')")
    ds = session.read_sql(my, table="events", column="id", lower_bound=1, upper_bound=3000,
                          num_partitions=4, fetch_size=250)
    t = ds.to_arrow()
    assert t.schema == pa.schema([("id", pa.int64()), ("score", pa.float64()),
                                  ("label", pa.string()), ("day", pa.date32()),
                                  ("amount", pa.decimal128(10, 2))])
    assert t.num_rows == 3001
    assert max(b.num_rows for b in t.to_batches()) <= 250
    rows = sorted((r for r in t.to_pylist() if r["id"] is not None), key=lambda r: r["id"])
    want = mariadb(my, "SELECT id, score, label, day, amount FROM events WHERE id IS NOT NULL "
                       "ORDER BY id").splitlines()
    assert len(rows) == len(want) == 3000
    for r, line in zip(rows, want):
        i, score, label, day, amount = line.split("\t")
        assert (r["id"], r["score"], r["label"], str(r["day"]), r["amount"]) == \
               (int(i), float(score), label, day, Decimal(amount))


def test_write_exactly_once(my, session, tmp_path: Path) -> None:
    marker = tmp_path / "failed-once"

    def fail_once(it):
        for b in it:
            if b.column(0)[0].as_py() == 3500 and not marker.exists():
                marker.write_text("x")  # partition 1's second batch, once
                raise RuntimeError("injected failure")
            yield b

    ds = session.range(10000, partitions=4).map_in_arrow(fail_once, schema="id long")
    ds.write_sql(my, "nums", mode="error")
    assert marker.exists()
    assert mariadb(my, "SELECT count(*), count(DISTINCT id) FROM nums") == "10000\t10000"
    ds.write_sql(my, "nums", mode="append")
    assert mariadb(my, "SELECT count(*) FROM nums") == "20000"
    ds.write_sql(my, "nums", mode="overwrite")
    assert mariadb(my, "SELECT count(*), count(DISTINCT id) FROM nums") == "10000\t10000"
    assert mariadb(my, "SELECT count(*) FROM information_schema.tables WHERE "
                       r"table_schema = DATABASE() AND table_name LIKE 'pt\_stg\_%'") == "0"
