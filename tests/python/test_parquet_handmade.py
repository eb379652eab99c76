"""Parquet files pyarrow does not write, made byte by byte with
tests/python/pq_builder.py, read by libprotium: the legacy two-level list
forms of old writers, Hadoop-framed LZ4, converted types without a
LogicalType, ENUM / JSON / BSON / UUID, decimals stored as BYTE_ARRAY; and
what the reader refuses (LZO, BIT_PACKED levels, column data in another
file, encrypted columns, decimals of more than 76 digits, the variant
logical type), each with its exact message naming the file and column.
Where pyarrow reads a file too, both readings must agree.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import uuid
from decimal import Decimal as D
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pq_builder as B
import protium.parquet as ptq
from protium import ProtiumError
from protium._lib import PT_ENOTSUP


def read(tmp_path: Path, data: bytes, name: str = "t.parquet") -> tuple[pa.Table, Path]:
    path = tmp_path / name
    path.write_bytes(data)
    return ptq.read_parquet(path).read_all(), path


def same_as_pyarrow(got: pa.Table, path: Path) -> None:
    want = pq.read_table(path)
    assert got.schema == want.schema
    assert got.equals(want)


LIST_ROWS = [["a", "b"], [], None, ["c"]]


def legacy_list(repeated: str, extra_field: bool = False) -> bytes:
    """optional group my_list (LIST) { repeated group <repeated> { required
    binary str (UTF8); [required int32 num;] } }"""
    d, r, v = B.levels_of(LIST_ROWS, optional_list=True)
    schema = [
        B.root(1),
        B.Elem("my_list", repetition=B.OPTIONAL, num_children=1, converted=B.LIST),
        B.Elem(repeated, repetition=B.REPEATED, num_children=2 if extra_field else 1),
        B.Elem("str", B.BYTE_ARRAY, B.REQUIRED, converted=B.UTF8),
    ]
    cols = [B.Column(["my_list", repeated, "str"], B.BYTE_ARRAY, [x.encode() for x in v], d, r, 2, 1)]
    if extra_field:
        schema.append(B.Elem("num", B.INT32, B.REQUIRED))
        cols.append(B.Column(["my_list", repeated, "num"], B.INT32, [1, 2, 3], d, r, 2, 1))
    return B.build(schema, cols, len(LIST_ROWS))


@pytest.mark.parametrize("repeated", ["array", "my_list_tuple"])
def test_legacy_list_named_array_or_tuple(repeated: str, tmp_path: Path) -> None:
    """A repeated group named `array` or `<list>_tuple` with one field is
    the element itself: list<struct<str>>, not list<str>."""
    got, path = read(tmp_path, legacy_list(repeated))
    element = pa.field(repeated, pa.struct([pa.field("str", pa.string(), False)]), False)
    assert got.schema == pa.schema([pa.field("my_list", pa.list_(element))])
    assert got.column("my_list").to_pylist() == [
        [{"str": "a"}, {"str": "b"}], [], None, [{"str": "c"}]]
    same_as_pyarrow(got, path)


def test_legacy_list_group_of_several_fields(tmp_path: Path) -> None:
    got, path = read(tmp_path, legacy_list("element", extra_field=True))
    element = pa.field("element", pa.struct([pa.field("str", pa.string(), False),
                                             pa.field("num", pa.int32(), False)]), False)
    assert got.schema == pa.schema([pa.field("my_list", pa.list_(element))])
    assert got.column("my_list").to_pylist() == [
        [{"str": "a", "num": 1}, {"str": "b", "num": 2}], [], None, [{"str": "c", "num": 3}]]
    same_as_pyarrow(got, path)


def test_bare_repeated_primitive(tmp_path: Path) -> None:
    """`repeated int32 num` outside any LIST: a list that is never null of
    elements that are never null."""
    rows = [[1, 2], [], [3], [4, 5, 6]]
    d, r, v = B.levels_of(rows, optional_list=False)
    data = B.build([B.root(1), B.Elem("num", B.INT32, B.REPEATED)],
                   [B.Column(["num"], B.INT32, v, d, r, 1, 1)], len(rows))
    got, path = read(tmp_path, data)
    assert got.schema == pa.schema(
        [pa.field("num", pa.list_(pa.field("num", pa.int32(), False)), False)])
    assert got.column("num").to_pylist() == rows
    same_as_pyarrow(got, path)


def test_hadoop_lz4(tmp_path: Path) -> None:
    """Codec LZ4 (5) in Hadoop's framing: big-endian lengths before each
    LZ4 block; two blocks in the page."""
    vals = [i * 7919 - 300 for i in range(500)]
    defs = [0 if i % 9 == 0 else 1 for i in range(550)]
    present = iter(vals)
    data = B.build([B.root(1), B.Elem("x", B.INT64, B.OPTIONAL)],
                   [B.Column(["x"], B.INT64, vals[: sum(defs)], defs, None, 1, codec=B.LZ4)],
                   len(defs))
    got, path = read(tmp_path, data)
    assert got.schema == pa.schema([pa.field("x", pa.int64())])
    assert got.column("x").to_pylist() == [next(present) if d else None for d in defs]
    same_as_pyarrow(got, path)


WIDE = decimal.Context(prec=100)


def be(n: int) -> bytes:
    """A decimal's unscaled value as the fewest big-endian two's complement
    bytes."""
    return n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True)


def test_byte_array_decimals(tmp_path: Path) -> None:
    """DECIMAL on BYTE_ARRAY (values of varying length): decimal128 up to 38
    digits, decimal256 beyond; through the LogicalType and through the
    converted type alone."""
    d_vals = [12345, -1, -9999999999, 0]
    e_vals = [10**49, -5, 0, -(10**49) + 1, 7]
    data = B.build(
        [B.root(2),
         B.Elem("d", B.BYTE_ARRAY, B.OPTIONAL, logical=B.logical(B.LT_DECIMAL, 2, 10)),
         B.Elem("e", B.BYTE_ARRAY, B.REQUIRED, converted=B.DECIMAL, scale=3, precision=50)],
        [B.Column(["d"], B.BYTE_ARRAY, [be(v) for v in d_vals], [1, 1, 0, 1, 1], None, 1),
         B.Column(["e"], B.BYTE_ARRAY, [be(v) for v in e_vals])], 5)
    got, path = read(tmp_path, data)
    assert got.schema == pa.schema([pa.field("d", pa.decimal128(10, 2)),
                                    pa.field("e", pa.decimal256(50, 3), False)])
    assert got.column("d").to_pylist() == [D("123.45"), D("-0.01"), None, D("-99999999.99"),
                                           D("0.00")]
    assert got.column("e").to_pylist() == [D(v).scaleb(-3, WIDE) for v in e_vals]
    same_as_pyarrow(got, path)


UUIDS = [uuid.UUID(int=(i + 1) * 0x0123456789ABCDEF0FEDCBA987654321) for i in range(3)]


def test_enum_json_bson_uuid(tmp_path: Path) -> None:
    """ENUM reads as utf8, BSON as binary, JSON and UUID as the extension
    types arrow.json (utf8) and arrow.uuid (fixed_size_binary(16)), as
    pyarrow reads them (pyarrow reads ENUM as binary)."""
    data = B.build(
        [B.root(4),
         B.Elem("e", B.BYTE_ARRAY, B.OPTIONAL, logical=B.logical(B.LT_ENUM)),
         B.Elem("j", B.BYTE_ARRAY, B.REQUIRED, logical=B.logical(B.LT_JSON)),
         B.Elem("b", B.BYTE_ARRAY, B.OPTIONAL, logical=B.logical(B.LT_BSON)),
         B.Elem("u", B.FIXED_LEN_BYTE_ARRAY, B.REQUIRED, type_length=16,
                logical=B.logical(B.LT_UUID))],
        [B.Column(["e"], B.BYTE_ARRAY, [b"RED", b"GREEN"], [1, 0, 1], None, 1),
         B.Column(["j"], B.BYTE_ARRAY, [b'{"a": 1}', b"[1, 2]", b"null"]),
         B.Column(["b"], B.BYTE_ARRAY, [b"\x05\x00\x00\x00\x00"], [0, 1, 0], None, 1),
         B.Column(["u"], B.FIXED_LEN_BYTE_ARRAY, [u.bytes for u in UUIDS], type_length=16)], 3)
    got, path = read(tmp_path, data)
    assert got.schema == pa.schema([
        pa.field("e", pa.string()), pa.field("j", pa.json_(), False),
        pa.field("b", pa.binary()), pa.field("u", pa.uuid(), False)])
    assert got.select(["e", "b"]).to_pydict() == {
        "e": ["RED", None, "GREEN"],
        "b": [None, b"\x05\x00\x00\x00\x00", None],
    }
    assert got.column("j").cast(pa.string()).to_pylist() == ['{"a": 1}', "[1, 2]", "null"]
    assert got.column("u").cast(pa.binary(16)).to_pylist() == [u.bytes for u in UUIDS]
    want = pq.read_table(path)
    assert want.column("e").type == pa.binary()
    assert got.column("e").cast(pa.binary()).equals(want.column("e"))
    for name in ("j", "u", "b"):
        assert got.column(name).equals(want.column(name)), name


@pytest.mark.parametrize("store_schema", [True, False])
def test_pyarrow_uuid_and_json(store_schema: bool) -> None:
    """Columns pyarrow writes from pa.uuid() and pa.json_() (UUID and JSON
    logical types) read back as those extension types, value for value."""
    table = pa.table({
        "u": pa.array([u.bytes for u in UUIDS] + [None], pa.uuid()),
        "j": pa.array(['{"a":1}', None, "[]", '"x"'], pa.json_()),
    })
    sink = io.BytesIO()
    pq.write_table(table, sink, store_schema=store_schema)
    meta = pq.ParquetFile(io.BytesIO(sink.getvalue())).schema
    assert str(meta.column(0).logical_type) == "UUID"
    assert str(meta.column(1).logical_type) == "JSON"
    got = ptq.read_parquet_buffer(sink.getvalue()).read_all()
    assert got.schema == pa.schema([pa.field("u", pa.uuid()), pa.field("j", pa.json_())])
    assert got.column("u").cast(pa.binary(16)).to_pylist() == [u.bytes for u in UUIDS] + [None]
    assert got.column("j").cast(pa.string()).to_pylist() == ['{"a":1}', None, "[]", '"x"']
    assert got.equals(table)


def test_converted_types_only(tmp_path: Path) -> None:
    """Old writers set only the converted type: every one protium maps, with
    no LogicalType in the file."""
    n = 3
    cols = [
        # name, physical, converted, extra element fields, values, Arrow type
        ("utf8", B.BYTE_ARRAY, B.UTF8, {}, [b"x", b"", b"yz"], pa.string(), ["x", "", "yz"]),
        ("enum", B.BYTE_ARRAY, B.ENUM, {}, [b"A", b"B", b"A"], pa.string(), ["A", "B", "A"]),
        ("json", B.BYTE_ARRAY, B.JSON, {}, [b"{}", b"1", b"[]"], pa.json_(), None),
        ("bson", B.BYTE_ARRAY, B.BSON, {}, [b"\x00", b"\x01", b""], pa.binary(),
         [b"\x00", b"\x01", b""]),
        ("dec32", B.INT32, B.DECIMAL, {"scale": 2, "precision": 9}, [12345, -1, 0],
         pa.decimal128(9, 2), [D("123.45"), D("-0.01"), D("0.00")]),
        ("dec64", B.INT64, B.DECIMAL, {"scale": 0, "precision": 18}, [10**17, -(10**17), 5],
         pa.decimal128(18, 0), [D(10**17), D(-(10**17)), D(5)]),
        ("decflba", B.FIXED_LEN_BYTE_ARRAY, B.DECIMAL, {"scale": 1, "precision": 4, "type_length": 2},
         [b"\x04\xd2", b"\xff\xff", b"\x00\x00"], pa.decimal128(4, 1), [D("123.4"), D("-0.1"), D("0.0")]),
        ("date", B.INT32, B.DATE, {}, [0, 19000, -1], pa.date32(),
         [dt.date(1970, 1, 1), dt.date(2022, 1, 8), dt.date(1969, 12, 31)]),
        ("tms", B.INT32, B.TIME_MILLIS, {}, [0, 3_600_001, 86_399_999], pa.time32("ms"),
         [dt.time(0), dt.time(1, 0, 0, 1000), dt.time(23, 59, 59, 999000)]),
        ("tus", B.INT64, B.TIME_MICROS, {}, [1, 60_000_000, 0], pa.time64("us"),
         [dt.time(0, 0, 0, 1), dt.time(0, 1), dt.time(0)]),
        ("tsms", B.INT64, B.TIMESTAMP_MILLIS, {}, [0, 1_700_000_000_123, -1], pa.timestamp("ms", "UTC"),
         None),
        ("tsus", B.INT64, B.TIMESTAMP_MICROS, {}, [0, 1_700_000_000_123_456, -1],
         pa.timestamp("us", "UTC"), None),
        ("u8", B.INT32, B.UINT_8, {}, [0, 255, 7], pa.uint8(), [0, 255, 7]),
        ("u16", B.INT32, B.UINT_16, {}, [0, 65535, 7], pa.uint16(), [0, 65535, 7]),
        ("u32", B.INT32, B.UINT_32, {}, [0, -1, 7], pa.uint32(), [0, 2**32 - 1, 7]),
        ("u64", B.INT64, B.UINT_64, {}, [0, -1, 7], pa.uint64(), [0, 2**64 - 1, 7]),
        ("i8", B.INT32, B.INT_8, {}, [-128, 127, 0], pa.int8(), [-128, 127, 0]),
        ("i16", B.INT32, B.INT_16, {}, [-32768, 32767, 0], pa.int16(), [-32768, 32767, 0]),
        ("i32", B.INT32, B.INT_32, {}, [-(2**31), 2**31 - 1, 0], pa.int32(), [-(2**31), 2**31 - 1, 0]),
        ("i64", B.INT64, B.INT_64, {}, [-(2**63), 2**63 - 1, 0], pa.int64(), [-(2**63), 2**63 - 1, 0]),
    ]
    schema = [B.root(len(cols))]
    columns = []
    for name, ptype, conv, extra, vals, _, _ in cols:
        schema.append(B.Elem(name, ptype, B.REQUIRED, converted=conv, **extra))
        columns.append(B.Column([name], ptype, vals, type_length=extra.get("type_length", 0)))
    got, path = read(tmp_path, B.build(schema, columns, n))
    assert got.schema == pa.schema([pa.field(c[0], c[5], False) for c in cols])
    for name, _, _, _, vals, typ, want in cols:
        if want is None and name == "json":
            assert got.column(name).cast(pa.binary()).to_pylist() == vals
        elif want is None:  # timestamps: the stored integers
            assert got.column(name).cast(pa.int64()).to_pylist() == vals, name
        else:
            assert got.column(name).to_pylist() == want, name
    # pyarrow agrees on every column but ENUM, which it reads as binary.
    theirs = pq.read_table(path)
    assert theirs.column("enum").type == pa.binary()
    for name in got.schema.names:
        if name != "enum":
            assert got.column(name).equals(theirs.column(name)), name


def test_pyarrow_format_version_1_0(tmp_path: Path) -> None:
    """pyarrow's version="1.0" files (no Arrow schema stored): unsigned and
    narrow integers through the converted types of format 1.0."""
    table = pa.table({
        "u32": pa.array([0, 2**32 - 1, None], pa.uint32()),
        "i8": pa.array([-3, None, 100], pa.int8()),
        "s": pa.array(["a", None, "c"]),
        "d": pa.array([D("1.25"), D("-3.50"), None], pa.decimal128(7, 2)),
        "l": pa.array([[1], None, []], pa.list_(pa.int64())),
    })
    path = tmp_path / "v1.parquet"
    pq.write_table(table, path, version="1.0", store_schema=False)
    got = ptq.read_parquet(path).read_all()
    same_as_pyarrow(got, path)
    # uint32 does not exist in format 1.0: pyarrow stores it as int64.
    assert got.schema.field("u32").type == pa.int64()
    assert got.column("u32").to_pylist() == [0, 2**32 - 1, None]


def refused(tmp_path: Path, data: bytes, message: str) -> None:
    """Reading fails with PT_ENOTSUP and exactly `parquet: <path>: <message>`."""
    path = tmp_path / "bad.parquet"
    path.write_bytes(data)
    with pytest.raises(ProtiumError) as e:
        ptq.read_parquet(path).read_all()
    assert e.value.code == PT_ENOTSUP
    assert str(e.value) == f"parquet: {path}: {message}"


def one_int64(**kw) -> bytes:
    rep = B.OPTIONAL if "def_encoding" in kw else B.REQUIRED
    defs = [1, 0, 1] if rep == B.OPTIONAL else None
    return B.build([B.root(1), B.Elem("x", B.INT64, rep)],
                   [B.Column(["x"], B.INT64, [1, 2], defs, None, int(rep == B.OPTIONAL), **kw)],
                   3 if defs else 2)


def test_refuses_lzo(tmp_path: Path) -> None:
    refused(tmp_path, one_int64(codec=B.LZO),
            "row group 0, column 'x', page 0: compression codec LZO (3) is not supported; "
            "rewrite the file with SNAPPY, GZIP, ZSTD, LZ4_RAW, BROTLI or none")


def test_refuses_bit_packed_levels(tmp_path: Path) -> None:
    refused(tmp_path, one_int64(def_encoding=B.BIT_PACKED),
            "row group 0, column 'x', page 0: definition levels of encoding BIT_PACKED are not "
            "supported")


def test_refuses_bit_packed_repetition_levels(tmp_path: Path) -> None:
    d, r, v = B.levels_of([[1, 2], [], [3]], optional_list=False)
    data = B.build([B.root(1), B.Elem("num", B.INT32, B.REPEATED)],
                   [B.Column(["num"], B.INT32, v, d, r, 1, 1, rep_encoding=B.BIT_PACKED)], 3)
    refused(tmp_path, data, "row group 0, column 'num', page 0: repetition levels of encoding "
                            "BIT_PACKED are not supported")


@pytest.mark.parametrize("encoding, name", [(B.BIT_PACKED, "BIT_PACKED"), (10, "unknown")])
def test_refuses_value_encoding(encoding: int, name: str, tmp_path: Path) -> None:
    """Values in the deprecated BIT_PACKED encoding, or one the format does
    not define."""
    refused(tmp_path, one_int64(encoding=encoding),
            f"row group 0, column 'x', page 0: encoding {name} ({encoding}) is not supported")


def test_refuses_encrypted_file_with_plaintext_footer(tmp_path: Path) -> None:
    data = B.build([B.root(1), B.Elem("x", B.INT64, B.REQUIRED)],
                   [B.Column(["x"], B.INT64, [1, 2])], 2, encrypted_plaintext_footer=True)
    path = tmp_path / "bad.parquet"
    path.write_bytes(data)
    with pytest.raises(ProtiumError) as e:
        ptq.read_parquet(path)
    assert e.value.code == PT_ENOTSUP
    assert str(e.value) == f"parquet: {path}: encrypted Parquet files are not supported"


def test_refuses_file_path(tmp_path: Path) -> None:
    refused(tmp_path, one_int64(file_path="other.parquet"),
            "row group 0, column 'x': column data in another file (file_path) is not supported")


def test_refuses_encrypted_column(tmp_path: Path) -> None:
    refused(tmp_path, one_int64(encrypted=True),
            "row group 0, column 'x': encrypted columns are not supported")


def test_refuses_decimal_past_76_digits(tmp_path: Path) -> None:
    data = B.build([B.root(1), B.Elem("d", B.FIXED_LEN_BYTE_ARRAY, B.REQUIRED, type_length=33,
                                      logical=B.logical(B.LT_DECIMAL, 2, 77))],
                   [B.Column(["d"], B.FIXED_LEN_BYTE_ARRAY, [bytes(33)], type_length=33)], 1)
    refused(tmp_path, data, "column 'd': a decimal of more than 76 digits is not supported yet")


@pytest.mark.parametrize("member", [9, 16, 17, 18])
def test_refuses_interval_variant_geospatial_logical_types(member: int, tmp_path: Path) -> None:
    """LogicalType members INTERVAL (9, reserved), VARIANT (16), GEOMETRY
    (17) and GEOGRAPHY (18)."""
    lt = B.Struct().struct(member, B.Struct())
    data = B.build([B.root(1), B.Elem("v", B.BYTE_ARRAY, B.REQUIRED, logical=lt)],
                   [B.Column(["v"], B.BYTE_ARRAY, [b"\x01"])], 1)
    refused(tmp_path, data,
            "column 'v': this logical type (interval, variant or geospatial) is not supported yet")


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
def test_time_past_one_day_is_an_error(unit: str, tmp_path: Path) -> None:
    """Arrow's times lie within one day; a file's TIME value past it (the
    fuzzer made one) fails the read rather than giving an invalid array."""
    day = {"ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}[unit]
    lt = B.logical(B.LT_TIME, unit=unit)
    ptype = B.INT32 if unit == "ms" else B.INT64
    ok = B.build([B.root(1), B.Elem("t", ptype, B.OPTIONAL, logical=lt)],
                 [B.Column(["t"], ptype, [0, day - 1], [1, 0, 1], None, 1)], 3)
    got, _ = read(tmp_path, ok, "ok.parquet")
    want_type = pa.time32(unit) if unit == "ms" else pa.time64(unit)
    assert got.schema == pa.schema([pa.field("t", want_type)])
    assert got.column("t").equals(pa.chunked_array([pa.array([0, None, day - 1], want_type)]))
    bad = B.build([B.root(1), B.Elem("t", ptype, B.OPTIONAL, logical=lt)],
                  [B.Column(["t"], ptype, [5, day], [1, 0, 1], None, 1)], 3)
    path = tmp_path / "bad.parquet"
    path.write_bytes(bad)
    with pytest.raises(ProtiumError) as e:
        ptq.read_parquet(path).read_all()
    assert str(e.value) == (f"parquet: {path}: row group 0, column 't': TIME value {day} is not "
                            f"within one day (of {day} {unit})")


def test_read_as_other_types_not_refused() -> None:
    """Not refused, read as another type than written: fixed-size lists
    (stored as LIST) as lists, where pyarrow restores the size from
    ARROW:schema; dictionaries of values other than strings and binary as
    their values, as pyarrow does. The values are the same."""
    table = pa.table({
        "f": pa.array([[1, 2], [3, None], None], pa.list_(pa.int16(), 2)),
        "d": pa.array([7, 8, 7]).dictionary_encode(),
    })
    sink = io.BytesIO()
    pq.write_table(table, sink)
    got = ptq.read_parquet_buffer(sink.getvalue()).read_all()
    assert got.schema == pa.schema([pa.field("f", pa.list_(pa.int16())), pa.field("d", pa.int64())])
    assert got.to_pydict() == {"f": [[1, 2], [3, None], None], "d": [7, 8, 7]}
