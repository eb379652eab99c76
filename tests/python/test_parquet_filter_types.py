"""Predicate pushdown on timestamps (every unit, with and without a time
zone) and decimals (INT32, INT64 and FIXED_LEN_BYTE_ARRAY backed): row groups
and pages whose statistics rule a filter out are skipped, exactly those,
and the rows kept filter to what pyarrow's whole file filters to.
"""

from __future__ import annotations

import datetime
import decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import protium.parquet as ptq

N, GROUP = 10_000, 100  # 100 row groups of 100 rows
BASE = datetime.datetime(2024, 5, 1, 12, 0, 0)
UTC = datetime.timezone.utc


def table() -> pa.Table:
    secs = [int((BASE - datetime.datetime(1970, 1, 1)).total_seconds()) + i for i in range(N)]
    cols = {}
    for unit, mul in (("s", 1), ("ms", 1000), ("us", 10**6), ("ns", 10**9)):
        cols[f"ts_{unit}"] = pa.array([s * mul for s in secs], pa.timestamp(unit))
        cols[f"tz_{unit}"] = pa.array([s * mul for s in secs], pa.timestamp(unit, "Europe/Paris"))
    # Decimals from -50.00 up: negative and positive statistics alike.
    vals = [decimal.Decimal(i - 5000) / 100 for i in range(N)]
    cols["d32"] = pa.array(vals, pa.decimal128(7, 2))
    cols["d64"] = pa.array(vals, pa.decimal128(15, 2))
    cols["dfl"] = pa.array(vals, pa.decimal128(30, 2))
    cols["day"] = pa.array([(BASE + datetime.timedelta(days=i)).date() for i in range(N)], pa.date32())
    return pa.table(cols)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("filter_types")
    t = table()
    # INT32 and INT64 for the small decimals, as parquet-mr writes them.
    pq.write_table(t, d / "groups.parquet", row_group_size=GROUP, store_decimal_as_integer=True)
    # One row group with a page index, pages of 100 rows: a page closes
    # after each batch of write_batch_size rows once past data_page_size.
    pq.write_table(t, d / "pages.parquet", row_group_size=N, data_page_size=1,
                   write_batch_size=GROUP, write_page_index=True, store_decimal_as_integer=True,
                   use_dictionary=False)
    return d / "groups.parquet", d / "pages.parquet"


def run(path: Path, filter, expr, columns=None) -> dict:
    stats: dict = {}
    got = ptq.read_parquet(path, filter=filter, stats=stats, columns=columns).read_all()
    full = pq.read_table(path, columns=columns)
    assert got.filter(expr(got)).equals(full.filter(expr(full)))
    assert full.filter(expr(full)).num_rows > 0
    return stats


AT_9800 = BASE + datetime.timedelta(seconds=9_800)
CASES = []
for unit in ("s", "ms", "us", "ns"):
    CASES += [
        (f"ts_{unit}", ">=", AT_9800, 2),
        (f"ts_{unit}", "<", BASE + datetime.timedelta(seconds=250), 3),
        (f"ts_{unit}", "=", BASE + datetime.timedelta(seconds=4_242), 1),
        # An aware datetime is an instant: 9800 s after BASE in UTC.
        (f"tz_{unit}", ">=", AT_9800.replace(tzinfo=UTC), 2),
        (f"tz_{unit}", "in", [BASE.replace(tzinfo=UTC), AT_9800.replace(tzinfo=UTC)], 2),
    ]
for col in ("d32", "d64", "dfl"):
    CASES += [
        # 48.005 lies between two values of scale 2: rows 9801 and up.
        (col, ">=", decimal.Decimal("48.005"), 2),
        (col, "=", decimal.Decimal("-50"), 1),
        (col, "<", decimal.Decimal("-49.0"), 1),
        (col, "in", [decimal.Decimal("-0.01"), decimal.Decimal("0.000")], 2),
        (col, ">", decimal.Decimal("1000"), 0),
    ]
CASES += [("day", ">=", (BASE + datetime.timedelta(days=9_900)).date(), 1)]


def expr_of(col: str, op: str, value):
    def expr(t: pa.Table):
        c = t[col]
        if pa.types.is_decimal(c.type):  # a scale that holds every literal
            c = c.cast(pa.decimal128(38, 6))
        if op == "in":
            return pc.is_in(c, value_set=pa.array(value, c.type))
        v = pa.scalar(value, c.type)
        return {">=": pc.greater_equal, "<": pc.less, "=": pc.equal, ">": pc.greater}[op](c, v)
    return expr


@pytest.mark.parametrize("col,op,value,groups", CASES, ids=[f"{c[0]}{c[1]}{c[2]}" for c in CASES])
def test_row_groups_skipped_exactly(files, col: str, op: str, value, groups: int) -> None:
    if groups == 0:
        stats: dict = {}
        assert ptq.read_parquet(files[0], filter=[(col, op, value)], stats=stats).read_all().num_rows == 0
    else:
        stats = run(files[0], [(col, op, value)], expr_of(col, op, value))
    assert (stats["row_groups_read"], stats["row_groups_skipped"]) == (groups, N // GROUP - groups)


@pytest.mark.parametrize("col", ["ts_s", "ts_ms", "ts_us", "ts_ns", "tz_us", "d32", "d64", "dfl"])
def test_pages_skipped_exactly(files, col: str) -> None:
    value = AT_9800 if col.startswith("ts") else decimal.Decimal("48.005")
    if col.startswith("tz"):
        value = AT_9800.replace(tzinfo=UTC)
    stats = run(files[1], [(col, ">=", value)], expr_of(col, ">=", value), columns=[col])
    assert (stats["pages_read"], stats["pages_skipped"]) == (2, 98)
