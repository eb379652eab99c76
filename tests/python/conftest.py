"""conftest.py — shared set-up of the Python tests: the protium package from
python/ on sys.path, PT_BUILD_DIR defaulting to the repository's build/
(make build) when the environment does not set it, the session's Kafka
broker (kafka_fixture.py), and the deterministic
test data of the Arrow tests: one column of every type protium supports,
nulls everywhere (nested ones too)."""

from __future__ import annotations

import os
import random
import sys
from decimal import Decimal
from pathlib import Path
from typing import Callable, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]

sys.path.insert(0, str(ROOT / "python"))
os.environ.setdefault("PT_BUILD_DIR", str(ROOT / "build"))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute  # noqa: E402,F401

# One Kafka broker for the whole session. The fixture lives here, not in
# the modules that use it: imported into each module, pytest would start
# one broker per module.
from kafka_fixture import kafka_broker  # noqa: E402,F401

# --------------------------------------------------------------------------
# One column of every supported type.

Maker = Callable[[int, random.Random], pa.Array]


def _mask(n: int, rng: random.Random, p: float = 0.2) -> list[bool]:
    """True = null."""
    return [rng.random() < p for _ in range(n)]


def _nulled(values: list, rng: random.Random, p: float = 0.2) -> list:
    return [None if rng.random() < p else v for v in values]


def _ints(lo: int, hi: int, typ: pa.DataType) -> Maker:
    return lambda n, rng: pa.array(_nulled([rng.randint(lo, hi) for _ in range(n)], rng), typ)


def _floats(typ: pa.DataType, np_dtype: type) -> Maker:
    def make(n: int, rng: random.Random) -> pa.Array:
        values = np.array([rng.uniform(-1e4, 1e4) for _ in range(n)], dtype=np_dtype)
        values[:4] = np.array([0.0, -0.0, np.inf, -np.inf], dtype=np_dtype)[: min(n, 4)]
        return pa.array(values, typ, mask=np.array(_mask(n, rng)))

    return make


def _strings(typ: pa.DataType) -> Maker:
    alphabet = "abcdefghij\u00e9\u4e2d\U0001f600 "

    def make(n: int, rng: random.Random) -> pa.Array:
        values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(n)]
        return pa.array(_nulled(values, rng), typ)

    return make


def _binaries(typ: pa.DataType) -> Maker:
    return lambda n, rng: pa.array(
        _nulled([rng.randbytes(rng.randint(0, 20)) for _ in range(n)], rng), typ
    )


def _fixed_binary(width: int) -> Maker:
    return lambda n, rng: pa.array(
        _nulled([rng.randbytes(width) for _ in range(n)], rng), pa.binary(width)
    )


def _temporal(typ: pa.DataType, lo: int, hi: int) -> Maker:
    return lambda n, rng: pa.array(_nulled([rng.randint(lo, hi) for _ in range(n)], rng), typ)


def _decimal(precision: int, scale: int, factory=pa.decimal128) -> Maker:
    def make(n: int, rng: random.Random) -> pa.Array:
        digits = precision

        def one() -> Decimal:
            unscaled = rng.randint(-(10**digits) + 1, 10**digits - 1)
            return Decimal(unscaled).scaleb(-scale)

        values = [one() for _ in range(n)]
        return pa.array(_nulled(values, rng), factory(precision, scale))

    return make


def _map_of(keys: Maker, items: Maker, keys_sorted: bool = False) -> Maker:
    """Maps of 0-4 entries with null maps and null values (keys never null)."""

    def make(n: int, rng: random.Random) -> pa.Array:
        lengths = [rng.randint(0, 4) for _ in range(n)]
        total = sum(lengths)
        k = keys(total, rng)
        if k.null_count:
            k = pa.compute.fill_null(k, 0 if pa.types.is_integer(k.type) else "")
        v = items(total, rng)
        offsets = [0]
        for length in lengths:
            offsets.append(offsets[-1] + length)
        mask = pa.array(_mask(n, rng), pa.bool_())
        typ = pa.map_(k.type, v.type, keys_sorted=keys_sorted)
        return pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), k, v, type=typ, mask=mask)

    return make


def _union(mode: str, children: dict[str, Maker], codes: list[int]) -> Maker:
    """A sparse or dense union whose children hold nulls too (a union row is
    null when its child's value is)."""

    def make(n: int, rng: random.Random) -> pa.Array:
        which = [rng.randrange(len(codes)) for _ in range(n)]
        types = pa.array([codes[w] for w in which], pa.int8())
        names = list(children)
        if mode == "sparse":
            arrays = [children[name](n, rng) for name in names]
            return pa.UnionArray.from_sparse(types, arrays, names, codes)
        counts = [which.count(k) for k in range(len(codes))]
        # Dense children a little longer than needed: offsets skip values.
        arrays = [children[name](counts[k] + 2, rng) for k, name in enumerate(names)]
        slots = [sorted(rng.sample(range(counts[k] + 2), counts[k])) for k in range(len(codes))]
        offsets = pa.array([slots[w].pop(0) for w in which], pa.int32())
        return pa.UnionArray.from_dense(types, offsets, arrays, names, codes)

    return make


def _list_view_of(inner: Maker, large: bool = False) -> Maker:
    """List views whose rows are ranges of the child in any order, some
    overlapping, some empty, with null rows and null elements."""

    def make(n: int, rng: random.Random) -> pa.Array:
        values = inner(n * 2 + 5, rng)
        offsets, sizes = [], []
        for _ in range(n):
            size = rng.randint(0, 5)
            offsets.append(rng.randint(0, len(values) - size))
            sizes.append(size)
        typ = pa.int64() if large else pa.int32()
        cls = pa.LargeListViewArray if large else pa.ListViewArray
        return cls.from_arrays(pa.array(offsets, typ), pa.array(sizes, typ), values,
                               mask=pa.array(_mask(n, rng), pa.bool_()))

    return make


def _run_end_encoded(inner: Maker, ends: pa.DataType) -> Maker:
    """Runs of 1-9 rows of inner's values (nulls among them)."""

    def make(n: int, rng: random.Random) -> pa.Array:
        run_ends, at = [], 0
        while at < n:
            at = min(n, at + rng.randint(1, 9))
            run_ends.append(at)
        values = inner(len(run_ends), rng)
        return pa.RunEndEncodedArray.from_arrays(pa.array(run_ends, ends), values)

    return make


def _extension(typ: pa.ExtensionType, storage: Maker) -> Maker:
    """An extension array (its name and metadata travel as field metadata)."""
    return lambda n, rng: pa.ExtensionArray.from_storage(typ, storage(n, rng))


def _json_texts(n: int, rng: random.Random) -> pa.Array:
    return pa.array(_nulled(['{"k": %d, "s": "%s"}' % (rng.randint(0, 99), "x" * rng.randint(0, 5))
                             for _ in range(n)], rng))


def _month_day_nano(n: int, rng: random.Random) -> pa.Array:
    values = [
        (rng.randint(-(2**31), 2**31 - 1), rng.randint(-(2**31), 2**31 - 1),
         rng.randint(-(2**63), 2**63 - 1))
        for _ in range(n)
    ]
    return pa.array(_nulled(values, rng), pa.month_day_nano_interval())


def _list_of(inner: Maker, typ: Callable[[pa.DataType], pa.DataType]) -> Maker:
    """Lists of 0-5 values of inner, with null lists and null elements."""

    def make(n: int, rng: random.Random) -> pa.Array:
        lengths = [rng.randint(0, 5) for _ in range(n)]
        values = inner(sum(lengths), rng)
        offsets, acc = [0], 0
        for length in lengths:
            acc += length
            offsets.append(acc)
        mask = pa.array(_mask(n, rng), pa.bool_())
        list_type = typ(values.type)
        cls = pa.LargeListArray if pa.types.is_large_list(list_type) else pa.ListArray
        off_type = pa.int64() if cls is pa.LargeListArray else pa.int32()
        return cls.from_arrays(pa.array(offsets, off_type), values, mask=mask)

    return make


def _fixed_list(inner: Maker, size: int) -> Maker:
    def make(n: int, rng: random.Random) -> pa.Array:
        values = inner(n * size, rng)
        return pa.FixedSizeListArray.from_arrays(values, size, mask=pa.array(_mask(n, rng), pa.bool_()))

    return make


def _embedding(size: int) -> Maker:
    """Embedding-like tensors: fixed_size_list<float32> without inner nulls."""

    def make(n: int, rng: random.Random) -> pa.Array:
        values = pa.array(np.array([rng.gauss(0, 1) for _ in range(n * size)], np.float32))
        return pa.FixedSizeListArray.from_arrays(values, size, mask=pa.array(_mask(n, rng, 0.1), pa.bool_()))

    return make


def _struct(children: dict[str, tuple[Maker, bool]]) -> Maker:
    """A struct with null rows whose children hold values (and nulls) too."""

    def make(n: int, rng: random.Random) -> pa.Array:
        arrays, fields = [], []
        for name, (inner, nullable) in children.items():
            child = inner(n, rng)
            assert nullable or child.null_count == 0
            arrays.append(child)
            fields.append(pa.field(name, child.type, nullable=nullable))
        return pa.StructArray.from_arrays(arrays, fields=fields, mask=pa.array(_mask(n, rng), pa.bool_()))

    return make


def _non_null_ints(n: int, rng: random.Random) -> pa.Array:
    return pa.array([rng.randint(-1000, 1000) for _ in range(n)], pa.int32())


def _dictionary(index: pa.DataType, values: pa.Array) -> Maker:
    def make(n: int, rng: random.Random) -> pa.Array:
        idx = pa.array(_nulled([rng.randrange(len(values)) for _ in range(n)], rng), index)
        return pa.DictionaryArray.from_arrays(idx, values)

    return make


_WORDS = pa.array(["apple", "banana", "", "cherry", "d\u00e9j\u00e0", "elder", "fig", "grape"])

COLUMNS: dict[str, Maker] = {
    "null": lambda n, rng: pa.nulls(n),
    "bool": lambda n, rng: pa.array(_nulled([rng.random() < 0.5 for _ in range(n)], rng)),
    "int8": _ints(-128, 127, pa.int8()),
    "int16": _ints(-(2**15), 2**15 - 1, pa.int16()),
    "int32": _ints(-(2**31), 2**31 - 1, pa.int32()),
    "int64": _ints(-(2**63), 2**63 - 1, pa.int64()),
    "uint8": _ints(0, 2**8 - 1, pa.uint8()),
    "uint16": _ints(0, 2**16 - 1, pa.uint16()),
    "uint32": _ints(0, 2**32 - 1, pa.uint32()),
    "uint64": _ints(0, 2**64 - 1, pa.uint64()),
    "float16": _floats(pa.float16(), np.float16),
    "float32": _floats(pa.float32(), np.float32),
    "float64": _floats(pa.float64(), np.float64),
    "utf8": _strings(pa.utf8()),
    "large_utf8": _strings(pa.large_utf8()),
    "binary": _binaries(pa.binary()),
    "large_binary": _binaries(pa.large_binary()),
    "fixed_size_binary_3": _fixed_binary(3),
    "fixed_size_binary_16": _fixed_binary(16),
    "date32": _temporal(pa.date32(), -719162, 2932896),
    **{
        f"timestamp_{u}{'_' + tzn if tzn else ''}": _temporal(
            pa.timestamp(u, tz=tz), -(2**40), 2**40
        )
        for u in ("s", "ms", "us", "ns")
        for tzn, tz in (("", None), ("utc", "UTC"), ("paris", "Europe/Paris"))
    },
    **{f"duration_{u}": _temporal(pa.duration(u), -(2**62), 2**62) for u in ("s", "ms", "us", "ns")},
    "decimal128_1_0": _decimal(1, 0),
    "decimal128_5_2": _decimal(5, 2),
    "decimal128_18_0": _decimal(18, 0),
    "decimal128_38_10": _decimal(38, 10),
    "decimal128_38_38": _decimal(38, 38),
    "decimal32_1_0": _decimal(1, 0, pa.decimal32),
    "decimal32_9_3": _decimal(9, 3, pa.decimal32),
    "decimal64_18_0": _decimal(18, 0, pa.decimal64),
    "decimal64_12_12": _decimal(12, 12, pa.decimal64),
    "decimal256_76_0": _decimal(76, 0, pa.decimal256),
    "decimal256_60_20": _decimal(60, 20, pa.decimal256),
    "decimal256_40_-5": _decimal(40, -5, pa.decimal256),
    "date64": lambda n, rng: pa.array(
        _nulled([rng.randint(-719162, 2932896) * 86400000 for _ in range(n)], rng), pa.date64()
    ),
    "time32_s": _temporal(pa.time32("s"), 0, 86399),
    "time32_ms": _temporal(pa.time32("ms"), 0, 86399999),
    "time64_us": _temporal(pa.time64("us"), 0, 86399999999),
    "time64_ns": _temporal(pa.time64("ns"), 0, 86399999999999),
    "interval_month_day_nano": _month_day_nano,
    "map_utf8_int32": _map_of(_strings(pa.utf8()), _ints(-100, 100, pa.int32())),
    "map_int64_list_sorted": _map_of(
        _ints(-100, 100, pa.int64()), _list_of(_strings(pa.utf8()), pa.list_), keys_sorted=True
    ),
    "map_views_unions": _map_of(
        _strings(pa.utf8()),
        _struct({"v": (_binaries(pa.binary_view()), True),
                 "u": (_union("dense", {"i": _ints(0, 9, pa.int32()), "t": _strings(pa.utf8())},
                               [1, 4]), True),
                 "lv": (_list_view_of(_ints(0, 9, pa.int16())), True)}),
    ),
    "list_map": _list_of(_map_of(_ints(0, 9, pa.int16()), _decimal(9, 2, pa.decimal32)), pa.list_),
    "string_view": _strings(pa.string_view()),
    "binary_view": _binaries(pa.binary_view()),
    "string_view_long": lambda n, rng: pa.array(
        _nulled(["x" * rng.randint(0, 40) + str(rng.random()) for _ in range(n)], rng),
        pa.string_view(),
    ),
    "list_string_view": _list_of(_strings(pa.string_view()), pa.list_),
    "list_view_int32": _list_view_of(_ints(-100, 100, pa.int32())),
    "large_list_view_utf8": _list_view_of(_strings(pa.utf8()), large=True),
    "list_view_struct": _list_view_of(
        _struct({"a": (_ints(0, 9, pa.int8()), True), "v": (_strings(pa.string_view()), True)})
    ),
    "ree_int16_utf8": _run_end_encoded(_strings(pa.utf8()), pa.int16()),
    "ree_int32_float64": _run_end_encoded(_floats(pa.float64(), np.float64), pa.int32()),
    "ree_int64_struct": _run_end_encoded(
        _struct({"a": (_ints(0, 9, pa.int32()), True), "b": (_binaries(pa.binary_view()), True)}),
        pa.int64(),
    ),
    "list_ree": _list_of(_run_end_encoded(_ints(-5, 5, pa.int64()), pa.int32()), pa.list_),
    "ext_uuid": _extension(pa.uuid(), _fixed_binary(16)),
    "ext_json": _extension(pa.json_(), _json_texts),
    "ext_tensor": _extension(
        pa.fixed_shape_tensor(pa.float32(), [2, 3], dim_names=["r", "c"]), _embedding(6)
    ),
    "list_ext_uuid": _list_of(_extension(pa.uuid(), _fixed_binary(16)), pa.list_),
    "sparse_union": _union(
        "sparse", {"i": _ints(-100, 100, pa.int32()), "s": _strings(pa.utf8())}, [3, 7]
    ),
    "dense_union": _union(
        "dense",
        {"f": _floats(pa.float64(), np.float64), "l": _list_of(_ints(0, 9, pa.int8()), pa.list_),
         "b": _binaries(pa.binary())},
        [0, 1, 5],
    ),
    "list_dense_union": _list_of(
        _union("dense", {"x": _ints(0, 9, pa.int64()), "d": _decimal(9, 2, pa.decimal32)}, [1, 2]),
        pa.list_,
    ),
    "list_time64_ns": _list_of(_temporal(pa.time64("ns"), 0, 86399999999999), pa.list_),
    "struct_temporal": _struct(
        {
            "d": (lambda n, rng: pa.array(
                _nulled([rng.randint(-1000, 1000) * 86400000 for _ in range(n)], rng), pa.date64()
            ), True),
            "t": (_temporal(pa.time32("ms"), 0, 86399999), True),
            "i": (_month_day_nano, True),
            "m": (_decimal(70, 30, pa.decimal256), True),
            "map": (_map_of(_strings(pa.large_utf8()), _ints(0, 9, pa.uint8())), True),
            "sv": (_binaries(pa.binary_view()), True),
            "r": (_run_end_encoded(_decimal(20, 4, pa.decimal256), pa.int32()), True),
            "u": (_union("sparse", {"a": _ints(0, 9, pa.int16()), "b": _strings(pa.utf8())},
                         [0, 1]), True),
        }
    ),
    "list_int32": _list_of(_ints(-100, 100, pa.int32()), pa.list_),
    "list_utf8": _list_of(_strings(pa.utf8()), pa.list_),
    "large_list_int64": _list_of(_ints(-100, 100, pa.int64()), pa.large_list),
    "list_list_int8": _list_of(_list_of(_ints(-100, 100, pa.int8()), pa.list_), pa.list_),
    "fixed_size_list_int16_3": _fixed_list(_ints(-100, 100, pa.int16()), 3),
    "fixed_size_list_float32_64": _embedding(64),
    "struct": _struct(
        {
            "a": (_ints(-100, 100, pa.int64()), True),
            "b": (_strings(pa.utf8()), True),
            "c": (_non_null_ints, False),
        }
    ),
    "struct_nested": _struct(
        {
            "l": (_list_of(_ints(0, 9, pa.uint8()), pa.list_), True),
            "s": (_struct({"x": (_floats(pa.float64(), np.float64), True)}), True),
            "e": (_embedding(4), True),
        }
    ),
    "list_struct": _list_of(
        _struct({"k": (_strings(pa.utf8()), True), "v": (_ints(0, 9, pa.int16()), True)}),
        pa.list_,
    ),
    "dict_int8_utf8": _dictionary(pa.int8(), _WORDS),
    "dict_int16_utf8": _dictionary(pa.int16(), _WORDS),
    "dict_int32_utf8": _dictionary(pa.int32(), _WORDS),
    "dict_int64_utf8": _dictionary(pa.int64(), _WORDS),
    "dict_int32_int64": _dictionary(pa.int32(), pa.array([10, -20, 30, None, 2**40])),
    "dict_int16_large_utf8": _dictionary(pa.int16(), _WORDS.cast(pa.large_utf8())),
    "dict_int16_string_view": _dictionary(pa.int16(), _WORDS.cast(pa.string_view())),
    "dict_int8_decimal256": _dictionary(
        pa.int8(), pa.array([Decimal("1.5"), None, Decimal("-2.25")], pa.decimal256(40, 2))
    ),
    "dict_int32_time64": _dictionary(pa.int32(), pa.array([0, 1000, None, 86399999999], pa.time64("us"))),
}

# Columns declared non-nullable (and holding no nulls).
NOT_NULL_COLUMNS: dict[str, Maker] = {
    "int64_not_null": lambda n, rng: pa.array([rng.randint(-9, 9) for _ in range(n)], pa.int64()),
    "utf8_not_null": lambda n, rng: pa.array([str(rng.random()) for _ in range(n)], pa.utf8()),
}

ALL_COLUMNS = list(COLUMNS) + list(NOT_NULL_COLUMNS)


def make_column(name: str, n: int, seed: int = 0) -> tuple[pa.Field, pa.Array]:
    """The column `name` with n rows (deterministic for a seed), and its
    field, which carries metadata for odd-named columns."""
    rng = random.Random(f"{name}/{seed}")
    if name in NOT_NULL_COLUMNS:
        array = NOT_NULL_COLUMNS[name](n, rng)
        return pa.field(name, array.type, nullable=False), array
    array = COLUMNS[name](n, rng)
    metadata = {"column": name, "seed": str(seed)} if len(name) % 2 else None
    return pa.field(name, array.type, nullable=True, metadata=metadata), array


def make_table(
    n: int = 200, seed: int = 0, columns: Optional[list[str]] = None, batch_rows: int = 0
) -> pa.Table:
    """A table of the given columns (default: every one), with schema
    metadata; split into batches of batch_rows rows if given."""
    fields, arrays = zip(*(make_column(c, n, seed) for c in (columns or ALL_COLUMNS)))
    schema = pa.schema(list(fields), metadata={"producer": "protium tests", "empty": ""})
    table = pa.Table.from_arrays(list(arrays), schema=schema)
    if batch_rows:
        table = pa.Table.from_batches(table.to_batches(max_chunksize=batch_rows), schema)
    return table


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes `arrow_column` runs once per column of ALL_COLUMNS."""
    if "arrow_column" in metafunc.fixturenames:
        metafunc.parametrize("arrow_column", ALL_COLUMNS)


@pytest.fixture(scope="session")
def slurm_cluster():
    """One real Slurm cluster (tests/python/slurm_cluster.py) for every test
    of the session that asks for it: munged, slurmctld and two slurmd nodes
    in network namespaces, two fake GPUs per node. Skipped, loudly, only
    where the machine cannot run it (no root, namespaces refused)."""
    from slurm_cluster import start_or_skip

    cluster = start_or_skip()
    if cluster is None:
        pytest.skip("SLURM TESTS SKIPPED: see the message above")
    try:
        yield cluster
    finally:
        cluster.stop()
