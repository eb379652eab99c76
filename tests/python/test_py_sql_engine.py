"""Session.read_sql and Dataset.write_sql against a real PostgreSQL 15 (a
database of this module's own: tests/python/sql_servers.py), with psql as
the reference: partitioned reads give every row once with the server's
values; writes in every mode land exactly once, also when a task attempt
fails after staging rows; the password of the URL never shows in an
error."""

from __future__ import annotations

import os
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import protium as pt
from sql_require import require_pg
from sql_servers import pg, psql, with_db  # noqa: F401 - pg: the module's database


@pytest.fixture(autouse=True)
def _needs_pg() -> None:
    require_pg()


@pytest.fixture(scope="module")
def session():
    with pt.Session("local[2]", conf={"range.batch_rows": "1000"}) as s:
        yield s


def test_read_partitioned_matches_server(pg, session) -> None:
    psql(pg, "CREATE TABLE events (id int8, score float8, label text, day date, "
             "amount numeric(10,2)); "
             "INSERT INTO events SELECT g, g / 4.0, 'e' || g, DATE '2020-02-28' + g % 3, "
             "g * 0.01 FROM generate_series(1, 5000) g; "
             "INSERT INTO events (id, label) VALUES (NULL, 'no id')")
    ds = session.read_sql(pg, table="events", column="id", lower_bound=1, upper_bound=5000,
                          num_partitions=5, fetch_size=400)
    assert ds.num_partitions == 5
    t = ds.to_arrow()
    assert t.schema == pa.schema([("id", pa.int64()), ("score", pa.float64()),
                                  ("label", pa.string()), ("day", pa.date32()),
                                  ("amount", pa.decimal128(10, 2))])
    assert t.num_rows == 5001
    assert max(b.num_rows for b in t.to_batches()) <= 400
    rows = sorted(t.to_pylist(), key=lambda r: (r["id"] is None, r["id"] or 0))
    want = psql(pg, "SELECT id, score, label, day, amount FROM events WHERE id IS NOT NULL "
                    "ORDER BY id").splitlines()
    for r, line in zip(rows, want):
        i, score, label, day, amount = line.split("|")
        assert (r["id"], r["score"], r["label"], str(r["day"]), r["amount"]) == \
               (int(i), float(score), label, day, Decimal(amount))
    assert rows[-1]["id"] is None and rows[-1]["label"] == "no id"
    q = session.read_sql(pg, query="SELECT id FROM events WHERE id <= 10",
                         predicates=["id % 2 = 0", "id % 2 = 1"])
    assert q.num_partitions == 2
    assert sorted(q.to_arrow().column("id").to_pylist()) == list(range(1, 11))


def test_write_modes_exactly_once(pg, session) -> None:
    ds = session.range(10000, partitions=4).map_in_arrow(
        lambda it: (b.append_column("half", pc.divide(b.column(0), 2.0)) for b in it),
        schema="id long, half double")
    ds.write_sql(pg, "nums")
    assert psql(pg, "SELECT count(*), count(DISTINCT id), sum(half) FROM nums") == \
        "10000|10000|24997500"
    with pytest.raises(pt.ProtiumError, match='table "nums" exists'):
        ds.write_sql(pg, "nums", mode="error")
    ds.write_sql(pg, "nums", mode="append")
    assert psql(pg, "SELECT count(*), count(DISTINCT id) FROM nums") == "20000|10000"
    ds.write_sql(pg, "nums", mode="overwrite")
    assert psql(pg, "SELECT count(*), count(DISTINCT id) FROM nums") == "10000|10000"
    # pg_tables lists the connected database's tables only: the module's own.
    assert psql(pg, r"SELECT count(*) FROM pg_tables WHERE tablename LIKE 'pt\_stg\_%'") == "0"
    with pytest.raises(ValueError, match="mode must be one of"):
        ds.write_sql(pg, "nums", mode="upsert")


def test_new_table_is_the_renamed_staging_table(pg, session) -> None:
    # Into a table that does not exist, in every mode: exactly the rows,
    # the mapping's column types (as in a table made by CREATE TABLE and
    # filled the old way: no column of the staging's own), a logged table,
    # and rows that kept the xmins of the four tasks' transactions into the
    # shared staging table (renamed, not copied); no staging table left.
    ds = session.range(10000, partitions=4).map_in_arrow(
        lambda it: (b.append_column("half", pc.divide(b.column(0), 2.0)) for b in it),
        schema="id long, half double")
    cols = ("SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || ' ' || "
            "attnotnull, ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '{}'::regclass "
            "AND attnum > 0 AND NOT attisdropped")
    psql(pg, "CREATE TABLE made_old (id bigint, half double precision)")
    ds.write_sql(pg, "made_old", mode="append")
    assert psql(pg, "SELECT count(DISTINCT xmin::text) FROM made_old") == "1"
    for mode in ("error", "overwrite", "append"):
        t = f"renamed_{mode}"
        ds.write_sql(pg, t, mode=mode)
        assert psql(pg, f"SELECT count(*), count(DISTINCT id), sum(half) FROM {t}") == \
            "10000|10000|24997500"
        assert psql(pg, cols.format(t)) == psql(pg, cols.format("made_old")) == \
            "id bigint false, half double precision false"
        assert psql(pg, f"SELECT relpersistence FROM pg_class WHERE oid = '{t}'::regclass") == "p"
        assert psql(pg, f"SELECT count(DISTINCT xmin::text) FROM {t}") == "4"
        assert psql(pg, r"SELECT count(*) FROM pg_tables WHERE tablename LIKE 'pt\_stg\_%'") == "0"


def test_failed_commit_after_rename_leaves_nothing(pg, session, monkeypatch) -> None:
    ds = session.range(10000, partitions=4)
    monkeypatch.setenv("PROTIUM_FAULT_SQL_COMMIT", "1")
    with pytest.raises(pt.ProtiumError, match="PROTIUM_FAULT_SQL_COMMIT"):
        ds.write_sql(pg, "never_committed", mode="error")
    assert psql(pg, "SELECT to_regclass('never_committed') IS NULL") == "t"
    assert psql(pg, r"SELECT count(*) FROM pg_tables WHERE tablename LIKE 'pt\_stg\_%'") == "0"


def test_retried_attempt_never_duplicates(pg, session, tmp_path: Path) -> None:
    marker = tmp_path / "failed-once"

    def fail_once(it):
        for b in it:
            # Partition 1 (ids 2500..4999, batches of 1000) fails once on its
            # second batch, after its first went to its staging table.
            if b.column(0)[0].as_py() == 3500 and not marker.exists():
                marker.write_text("x")
                raise RuntimeError("injected failure")
            yield b

    ds = session.range(10000, partitions=4).map_in_arrow(fail_once, schema="id long")
    ds.write_sql(pg, "retried", mode="append")
    assert marker.exists()
    assert psql(pg, "SELECT count(*), count(DISTINCT id) FROM retried") == "10000|10000"
    assert psql(pg, r"SELECT count(*) FROM pg_tables WHERE tablename LIKE 'pt\_stg\_%'") == "0"


def test_lists_times_intervals_round_trip(pg, session) -> None:
    """Written by binary COPY, read back by protium and by psql."""
    def mdn(m: int, d: int, ns: int) -> pa.MonthDayNano:
        return pa.MonthDayNano([m, d, ns])

    t = pa.table({
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "ints": pa.array([[1, None, 3], [], None, [2**40]], pa.list_(pa.int64())),
        "words": pa.array([["a", "b c"], [None], ["é\"'"], []], pa.list_(pa.string())),
        "amounts": pa.array([[Decimal("1.25")], [Decimal("-0.50"), None], [], None],
                            pa.list_(pa.decimal128(6, 2))),
        "tod": pa.array([0, 3_600_000_001, 86_399_999_999, None], pa.time64("us")),
        "tod_ms": pa.array([1500, None, 0, 86_399_000], pa.time32("ms")),
        "span": pa.array([mdn(14, 3, 5_000), mdn(-1, -2, -3_000_000), None, mdn(0, 0, 0)],
                         pa.month_day_nano_interval()),
        "took": pa.array([90_000_000, None, -1, 0], pa.duration("us")),
    })
    session.from_arrow(t, partitions=2).write_sql(pg, "typed_rt", mode="overwrite")
    assert psql(pg, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                    "attrelid = 'typed_rt'::regclass AND attnum > 0 ORDER BY attnum"
                ).splitlines() == ["bigint", "bigint[]", "text[]", "numeric(6,2)[]",
                                   "time without time zone", "time without time zone",
                                   "interval", "interval"]
    assert psql(pg, "SELECT ints, words, span, took FROM typed_rt WHERE id = 1") == \
        '{1,NULL,3}|{a,"b c"}|1 year 2 mons 3 days 00:00:00.000005|00:01:30'
    back = session.read_sql(pg, table="typed_rt").to_arrow().sort_by("id")
    assert back.column("ints").to_pylist() == t.column("ints").to_pylist()
    assert back.column("words").to_pylist() == t.column("words").to_pylist()
    assert back.column("amounts").to_pylist() == t.column("amounts").to_pylist()
    assert back.column("tod").to_pylist() == t.column("tod").to_pylist()
    assert back.column("tod_ms").to_pylist() == \
        t.column("tod_ms").cast(pa.time64("us")).to_pylist()
    assert back.column("span").to_pylist() == t.column("span").to_pylist()
    assert back.column("took").to_pylist() == [mdn(0, 0, 90_000_000_000), None,
                                               mdn(0, 0, -1000), mdn(0, 0, 0)]


def test_conf_password_never_shown(pg, capfd) -> None:
    """sql.password: not in the driver's error, the executors' failures, the
    log output (the executors' stderr included) or the progress records."""
    bad = with_db(pg, "nodb")
    with pt.Session("local[1]", conf={"sql.password": "C0nfS3cret",
                                      "task.max_failures": "1"}) as s:
        with pytest.raises(pt.ProtiumError) as e:
            s.read_sql(bad, table="events")
        assert "cannot connect" in str(e.value) and "C0nfS3cret" not in str(e.value)
        with pytest.raises(pt.ProtiumError) as e:
            s.range(10, partitions=1).write_sql(bad, "never")
        assert "cannot connect" in str(e.value) and "C0nfS3cret" not in str(e.value)
        assert "C0nfS3cret" not in repr(s.jobs_progress())
    out, err = capfd.readouterr()
    assert "C0nfS3cret" not in out + err


def test_env_password_only(pg, capfd, monkeypatch) -> None:
    """PGPASSWORD alone: a role that must give its password (scram-sha-256
    in pg_hba.conf) reads and writes with it only in the environment (the
    executors inherit it), and where the server quotes it (a relation of that
    name, described by the driver; a column of that name, met by a task) it
    is masked, as everywhere else: not in the progress records nor printed."""
    secret = "EnvPgS3cret"
    # Roles and pg_hba.conf belong to the server, not to the database: on a
    # shared server the role is this process's own, its line admits it to
    # this module's database only, and both go again at the end.
    role = f"envpw_{os.getpid()}"
    hba = Path(psql(pg, "SHOW hba_file"))
    original = hba.read_text()
    hba.write_text(f"host {pg.rsplit('/', 1)[1]} {role} 127.0.0.1/32 scram-sha-256\n" + original)
    try:
        _env_password_only(pg, role, secret, capfd, monkeypatch)
    finally:
        hba.write_text(original)
        psql(pg, "SELECT pg_reload_conf()")
        if psql(pg, f"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'") == "1":
            psql(pg, f"DROP OWNED BY {role}; DROP ROLE {role}")


def _env_password_only(pg, role, secret, capfd, monkeypatch) -> None:
    psql(pg, f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'; "
             f"GRANT ALL ON SCHEMA public TO {role}")
    psql(pg, "SELECT pg_reload_conf()")
    url = pg.replace("postgres@", f"{role}@")
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    for _ in range(100):  # the reload is asynchronous: wait until a password is asked for
        if subprocess.run(["psql", "-w", url, "-c", "SELECT 1"], env=env,
                          capture_output=True).returncode != 0:
            break
        time.sleep(0.05)
    else:
        pytest.fail("pg_hba.conf's scram-sha-256 line never took effect")
    monkeypatch.setenv("PGPASSWORD", secret)
    with pt.Session("local[1]", conf={"task.max_failures": "1"}) as s:
        s.range(20, partitions=2).write_sql(url, "env_w", mode="error")
        back = s.read_sql(url, table="env_w", column="id", lower_bound=0, upper_bound=20,
                          num_partitions=2).to_arrow()
        assert sorted(back.column("id").to_pylist()) == list(range(20))
        with pytest.raises(pt.ProtiumError) as e:
            s.read_sql(url, query=f'SELECT * FROM "{secret}"')
        assert 'relation "***" does not exist' in str(e.value)
        assert secret not in str(e.value)
        with pytest.raises(pt.ProtiumError) as e:
            s.read_sql(url, table="env_w", predicates=[f'"{secret}" = 1']).to_arrow()
        assert 'column "***" does not exist' in str(e.value)
        assert secret not in str(e.value)
        assert secret not in repr(s.jobs_progress())
    assert psql(pg, "SELECT count(*), sum(id) FROM env_w") == "20|190"
    monkeypatch.setenv("PGPASSWORD", "Wr0ngEnvPw")
    with pt.Session("local[1]") as s:
        with pytest.raises(pt.ProtiumError, match="password authentication failed") as e:
            s.read_sql(url, table="env_w")
        assert "Wr0ngEnvPw" not in str(e.value)
    out, err = capfd.readouterr()
    assert secret not in out + err and "Wr0ngEnvPw" not in out + err


def test_errors_mask_the_password(pg, session) -> None:
    bad = with_db(pg.replace("postgres@", "postgres:Sup3rSecret@"), "nodb")
    with pytest.raises(pt.ProtiumError) as e:
        session.read_sql(bad, table="events")
    assert "Sup3rSecret" not in str(e.value) and "cannot connect" in str(e.value)
    with pytest.raises(ValueError, match="give table= or query="):
        session.read_sql(pg)
    with pytest.raises(ValueError, match="needs lower_bound="):
        session.read_sql(pg, table="events", column="id")


def test_table_or_query_positional(pg, session) -> None:
    """The second positional argument is a query when it starts with '(',
    SELECT, WITH or VALUES (any case, after whitespace, as a whole word),
    else a table: `selected` is a table's name; table= and query= still work
    and no two of the three are taken together."""
    psql(pg, "DROP TABLE IF EXISTS selected; CREATE TABLE selected (id int8, s text); "
             "INSERT INTO selected SELECT g, 's' || g FROM generate_series(1, 5) g")

    def ids(ds) -> list:
        return sorted(ds.to_arrow().column("id").to_pylist())

    assert ids(session.read_sql(pg, "selected")) == [1, 2, 3, 4, 5]
    assert ids(session.read_sql(pg, table="selected")) == [1, 2, 3, 4, 5]
    assert ids(session.read_sql(pg, "\n  select id from selected where id < 3")) == [1, 2]
    assert ids(session.read_sql(pg, query="SELECT id FROM selected WHERE id > 3")) == [4, 5]
    assert ids(session.read_sql(pg, "WITH w AS (SELECT id FROM selected) "
                                    "SELECT id FROM w WHERE id = 2")) == [2]
    assert ids(session.read_sql(pg, "(SELECT id FROM selected WHERE id = 4)")) == [4]
    from protium.connectors import is_query
    assert [is_query(x) for x in ("selected", "with_x", '"values"', "public.select",
                                  "SELECT*FROM t", " \t(x", "wItH a AS (SELECT 1) TABLE a")] == \
        [False, False, False, False, True, True, True]
    t = session.read_sql(pg, "Values (7::int8), (8)").to_arrow()
    assert sorted(t.column(0).to_pylist()) == [7, 8]
    # Spark JDBC ranges work the same with the positional form.
    ds = session.read_sql(pg, "selected", column="id", lower_bound=1, upper_bound=6,
                          num_partitions=2)
    assert ds.num_partitions == 2 and ids(ds) == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="give the table or query once"):
        session.read_sql(pg, "selected", table="selected")
    with pytest.raises(ValueError, match="give the table or query once"):
        session.read_sql(pg, "SELECT 1", query="SELECT 1")
    with pytest.raises(ValueError, match="give table= or query=, not both"):
        session.read_sql(pg, table="selected", query="SELECT 1")
    with pytest.raises(TypeError):
        session.read_sql(pg, "selected", "id")  # nothing else is positional
