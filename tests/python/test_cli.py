"""The protium command: `protium cat` against Arrow IPC streams and files that
pyarrow writes, compared with JSON lines computed here, independently, from
pyarrow's values and the rules of src/io/README.md; --schema, --limit,
standard input, a closed pipe, errors and `version`.

The build directory comes from PT_BUILD_DIR (default: build/ of the repository).
"""

from __future__ import annotations

import base64
import datetime
import math
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from conftest import ROOT

BUILD = Path(os.environ.get("PT_BUILD_DIR", ROOT / "build"))
PROTIUM = BUILD / "protium"



@pytest.fixture(autouse=True, scope="module")
def protium_built() -> None:
    """A missing binary is a failure, not a skip: a suite that skips every
    CLI test passes without testing anything."""
    if not PROTIUM.exists():
        pytest.fail(f"{PROTIUM} is missing: build first (make build)")


def run(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PROTIUM), *args], input=input, capture_output=True, timeout=120
    )


# --------------------------------------------------------------------------
# Expected JSON, computed from pyarrow's values.


def json_string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def float_layout(neg: bool, digits: str, e: int) -> str:
    """Python repr's layout for the value 0.d1d2... * 10^(e+1)."""
    if e < -4 or e >= 16:
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        s = m + "e" + ("-" if e < 0 else "+") + "%02d" % abs(e)
    elif e >= 0:
        s = (digits + "0" * (e + 1))[: e + 1] + "." + (digits[e + 1 :] or "0")
    else:
        s = "0." + "0" * (-e - 1) + digits
    return ("-" if neg else "") + s


def json_float(x, kind: str) -> str:
    if math.isnan(x):
        return '"NaN"'
    if math.isinf(x):
        return '"Infinity"' if x > 0 else '"-Infinity"'
    if x == 0:
        return "-0.0" if math.copysign(1.0, float(x)) < 0 else "0.0"
    if kind == "float64":
        return repr(float(x))  # shortest round trip, the layout we follow
    # numpy's Dragon4 gives the shortest digits for the narrow widths.
    t = np.format_float_scientific(x, unique=True, trim="-")
    neg = t.startswith("-")
    mantissa, exp = t.lstrip("-").split("e")
    return float_layout(neg, mantissa.replace(".", "").rstrip("0") or "0", int(exp))


EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
ERA_DAYS = 146097  # the Gregorian calendar repeats every 400 years


def date_text(days: int) -> str:
    ordinal = EPOCH_ORDINAL + days
    # Whole 400-year eras that bring the day into datetime's years 1..400.
    eras = (ordinal - 1) // ERA_DAYS
    ordinal, shift = ordinal - eras * ERA_DAYS, eras * 400
    d = datetime.date.fromordinal(ordinal)
    y = d.year + shift
    year = "-%04d" % -y if y < 0 else ("+%04d" % y if y > 9999 else "%04d" % y)
    return "%s-%02d-%02d" % (year, d.month, d.day)


UNIT_PER_SECOND = {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}


def timestamp_text(v: int, unit: str, tz) -> str:
    per = UNIT_PER_SECOND[unit]
    secs, frac = divmod(v, per)
    days, sod = divmod(secs, 86400)
    s = date_text(days) + "T%02d:%02d:%02d" % (sod // 3600, sod // 60 % 60, sod % 60)
    if per > 1:
        s += ".%0*d" % (len(str(per)) - 1, frac)
    return json_string(s + ("Z" if tz else ""))


def column_texts(arr: pa.Array) -> list[str]:
    """The JSON text of each row of arr."""
    t = arr.type
    valid = arr.is_valid().to_pylist() if len(arr) else []

    def per_row(values):
        return [v if ok else "null" for v, ok in zip(values, valid)]

    if isinstance(t, pa.BaseExtensionType):
        return column_texts(arr.storage)  # printed as its storage
    if pa.types.is_dictionary(t):
        words = column_texts(arr.dictionary)
        return per_row([words[i] if i is not None else "null" for i in arr.indices.to_pylist()])
    if pa.types.is_null(t):
        return ["null"] * len(arr)
    if pa.types.is_boolean(t):
        return per_row(["true" if v else "false" for v in arr.to_pylist()])
    if pa.types.is_integer(t):
        return per_row([str(v) for v in arr.to_pylist()])
    if pa.types.is_floating(t):
        kind = {16: "float16", 32: "float32", 64: "float64"}[t.bit_width]
        np_type = {16: np.float16, 32: np.float32, 64: np.float64}[t.bit_width]
        return per_row(
            [json_float(np_type(v), kind) if v is not None else None for v in arr.to_pylist()]
        )
    if pa.types.is_string_view(t) or pa.types.is_binary_view(t):
        # Through Python values: the views' own buffers are not contiguous.
        values = arr.to_pylist()
        if pa.types.is_string_view(t):
            return per_row([json_string(v) if v is not None else None for v in values])
        return per_row(['"%s"' % base64.b64encode(v).decode() if v is not None else None
                        for v in values])
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        # Through binary: the bytes may be ill-formed UTF-8 on purpose.
        raw = arr.view(pa.large_binary() if pa.types.is_large_string(t) else pa.binary())
        return per_row(
            [json_string(b.decode("utf-8", "replace")) if b is not None else None
             for b in raw.to_pylist()]
        )
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return per_row(
            ['"%s"' % base64.b64encode(b).decode() if b is not None else None
             for b in arr.to_pylist()]
        )
    if pa.types.is_date64(t):
        ms = arr.view(pa.int64()).to_pylist()
        return per_row([json_string(date_text(v // 86400000)) if v is not None else None
                        for v in ms])
    if pa.types.is_time(t):
        ints = arr.view(pa.int32() if t.bit_width == 32 else pa.int64()).to_pylist()
        per = UNIT_PER_SECOND[t.unit]

        def time_text(v: int) -> str:
            secs, frac = divmod(v, per)
            s = "%02d:%02d:%02d" % (secs // 3600, secs // 60 % 60, secs % 60)
            return json_string(s + (".%0*d" % (len(str(per)) - 1, frac) if per > 1 else ""))

        return per_row([time_text(v) if v is not None else None for v in ints])
    if pa.types.is_interval(t):
        return per_row(
            ['{"months": %d, "days": %d, "nanoseconds": %d}' % (v.months, v.days, v.nanoseconds)
             if v is not None else None for v in arr.to_pylist()]
        )
    if pa.types.is_decimal(t):
        if t.scale < 0:
            # The unscaled integer and its power of ten, as in 123E+2.
            def text(v: Decimal) -> str:
                unscaled = int(v.scaleb(t.scale))
                return '"%d%s"' % (unscaled, "E+%d" % -t.scale if unscaled else "")

            return per_row([text(v) if v is not None else None for v in arr.to_pylist()])
        return per_row(['"%s"' % format(v, "f") if v is not None else None for v in arr.to_pylist()])
    if pa.types.is_date32(t):
        ints = arr.view(pa.int32()).to_pylist()
        return per_row([json_string(date_text(v)) if v is not None else None for v in ints])
    if pa.types.is_timestamp(t):
        ints = arr.view(pa.int64()).to_pylist()
        return per_row([timestamp_text(v, t.unit, t.tz) if v is not None else None for v in ints])
    if pa.types.is_duration(t):
        return per_row([str(v) for v in arr.view(pa.int64()).to_pylist()])
    if pa.types.is_fixed_size_list(t):
        items = column_texts(arr.values)
        n = t.list_size
        rows = []
        for i in range(len(arr)):
            j = (arr.offset + i) * n
            rows.append("[" + ", ".join(items[j : j + n]) + "]")
        return per_row(rows)
    if pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        items = column_texts(arr.values)
        width = np.int32 if pa.types.is_list_view(t) else np.int64
        offs = np.frombuffer(arr.buffers()[1], width)[arr.offset:]
        sizes = np.frombuffer(arr.buffers()[2], width)[arr.offset:]
        return per_row(
            ["[" + ", ".join(items[offs[i] : offs[i] + sizes[i]]) + "]" for i in range(len(arr))]
        )
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t):
        items = column_texts(arr.values)
        offs = arr.offsets.to_pylist()
        return per_row(
            ["[" + ", ".join(items[offs[i] : offs[i + 1]]) + "]" for i in range(len(arr))]
        )
    if pa.types.is_run_end_encoded(t):
        # The value of each row's run, from the run ends (offset included).
        texts = column_texts(arr.values)
        ends = arr.run_ends.to_pylist()
        out, run = [], 0
        for i in range(arr.offset, arr.offset + len(arr)):
            while ends[run] <= i:
                run += 1
            out.append(texts[run])
        return out
    if pa.types.is_union(t):
        # {"child name": value} of the child the type id selects.
        # From the buffers: pyarrow's field() slices sparse children (not
        # dense ones), and its type_codes and offsets leave out the offset.
        texts = [column_texts(arr.field(k)) for k in range(t.num_fields)]
        codes = list(t.type_codes)
        ids = np.frombuffer(arr.buffers()[1], np.int8)[arr.offset:]
        if t.mode == "dense":
            offs = np.frombuffer(arr.buffers()[2], np.int32)[arr.offset:]
            return ["{" + json_string(t.field(codes.index(ids[i])).name) + ": "
                    + texts[codes.index(ids[i])][offs[i]] + "}" for i in range(len(arr))]
        return ["{" + json_string(t.field(codes.index(ids[i])).name) + ": "
                + texts[codes.index(ids[i])][i] + "}" for i in range(len(arr))]
    if pa.types.is_struct(t):
        fields = [(json_string(t.field(k).name), column_texts(arr.field(k))) for k in range(t.num_fields)]
        return per_row(
            ["{" + ", ".join(f"{name}: {texts[i]}" for name, texts in fields) + "}"
             for i in range(len(arr))]
        )
    raise AssertionError(f"no rule for {t}")


def expected_lines(batches) -> str:
    out = []
    for b in batches:
        cols = [(json_string(name), column_texts(b.column(k))) for k, name in enumerate(b.schema.names)]
        for i in range(b.num_rows):
            out.append("{" + ", ".join(f"{n}: {texts[i]}" for n, texts in cols) + "}\n")
    return "".join(out)


# --------------------------------------------------------------------------
# Data: every type, with nulls and edges.


def invalid_utf8() -> pa.Array:
    raw = pa.array([b"ok", b"\xff", b"a\xe2\x82", b"\xed\xa0\x80", b"\xc0\xafz", b"\xf0\x9f\x98", None])
    return pa.Array.from_buffers(pa.string(), len(raw), raw.buffers(), null_count=raw.null_count)


def every_type_batch(n: int = 7) -> pa.RecordBatch:
    """n = 7 rows of every type; row 6 is null wherever a null can be."""
    rng = np.random.default_rng(7)
    f64 = [0.1, -0.0, 1e16, 5e-324, float("nan"), float("inf"), None]
    f32 = np.array([0.1, 3.4028235e38, 1e-45, 0.3, -1.5, float("-inf"), 0], np.float32)
    f16 = np.array([0.1, 65504, 6e-8, 0.3333, -2, float("nan"), 0], np.float16)
    struct = pa.StructArray.from_arrays(
        [pa.array([1, None, 3, 4, 5, 6, 7], pa.int32()),
         pa.array([["a"], [], None, ["b", None], [], ["c"], []], pa.list_(pa.string()))],
        names=["x", "tags"],
        mask=pa.array([False, False, True, False, False, False, True]),
    )
    cols = {
        "null": pa.nulls(n),
        "bool": pa.array([True, False, True, None, False, True, None]),
        "int8": pa.array([-128, 127, 0, 1, -1, 5, None], pa.int8()),
        "uint8": pa.array([0, 255, 1, 2, 3, 4, None], pa.uint8()),
        "int16": pa.array([-32768, 32767, 0, 1, -1, 5, None], pa.int16()),
        "uint16": pa.array([0, 65535, 1, 2, 3, 4, None], pa.uint16()),
        "int32": pa.array([-(2**31), 2**31 - 1, 0, 1, -1, 5, None], pa.int32()),
        "uint32": pa.array([0, 2**32 - 1, 1, 2, 3, 4, None], pa.uint32()),
        "int64": pa.array([-(2**63), 2**63 - 1, 0, 1, -1, 5, None], pa.int64()),
        "uint64": pa.array([0, 2**64 - 1, 1, 2, 3, 4, None], pa.uint64()),
        "float16": pa.array(f16, pa.float16(), mask=np.arange(n) == 6),
        "float32": pa.array(f32, pa.float32(), mask=np.arange(n) == 6),
        "float64": pa.array(f64, pa.float64()),
        "utf8": pa.array(['plain', 'q"b\\s', "\n\t\x01\x1f\x7f", "é€😀", "", "x" * 100, None]),
        "large_utf8": pa.array(["a", "bb", "", "ccc", "d", "e", None], pa.large_string()),
        "string_view": pa.array(["short", "a string longer than twelve", "", "é€😀 outside the view",
                                 "exactly12byt", "q\"\\", None], pa.string_view()),
        "binary_view": pa.array([b"", b"\xff" * 13, b"abc", b"0123456789abc", b"x", b"yz", None],
                                pa.binary_view()),
        "bad_utf8": invalid_utf8(),
        "binary": pa.array([b"", b"f", b"fo", b"foo", b"foob", b"\xff\xfe", None]),
        "large_binary": pa.array([b"x"] * 6 + [None], pa.large_binary()),
        "fixed_size_binary": pa.array([b"abc", b"\0\0\0", b"xyz", b"123", b"+/=", b"   ", None], pa.binary(3)),
        "decimal": pa.array([Decimal("-12.340"), Decimal("0"), Decimal("0.005"), Decimal("123456.789"),
                             Decimal("-0.001"), Decimal("1"), None], pa.decimal128(10, 3)),
        "decimal_s0": pa.array([Decimal(10**37), Decimal(-(10**37)), Decimal(0), Decimal(7), Decimal(-7),
                                Decimal(99), None], pa.decimal128(38, 0)),
        "decimal32": pa.array([Decimal("-1.5"), Decimal("0"), Decimal("9999999.99"), Decimal("-9999999.99"),
                               Decimal("0.01"), Decimal("1"), None], pa.decimal32(9, 2)),
        "decimal64": pa.array([Decimal(10**17), Decimal(-(10**17)), Decimal(0), Decimal(7), Decimal(-7),
                               Decimal(99), None], pa.decimal64(18, 0)),
        "decimal256": pa.array([Decimal("-1" + "0" * 65), Decimal("9" * 66 + ".9999999999"), Decimal(0), Decimal("1e-10"),
                                Decimal("-12345.6789"), Decimal(1), None], pa.decimal256(76, 10)),
        "decimal256_neg_scale": pa.array([Decimal("1e3"), Decimal("-1.23e7"), Decimal(0), Decimal("5e2"),
                                          Decimal("9e8"), Decimal("-1e2"), None], pa.decimal256(20, -2)),
        "date64": pa.array([0, -86400000, 11016 * 86400000, -719528 * 86400000, 86400000,
                            2932897 * 86400000, None],
                           pa.int64()).cast(pa.date64()),
        "time32_s": pa.array([0, 86399, 3600, 59, 61, 45296, None], pa.int32()).cast(pa.time32("s")),
        "time32_ms": pa.array([0, 86399999, 1, 12345, 3600000, 45296789, None], pa.int32()).cast(pa.time32("ms")),
        "time64_us": pa.array([0, 86399999999, 1, 2, 3, 45296789012, None], pa.int64()).cast(pa.time64("us")),
        "time64_ns": pa.array([0, 86399999999999, 1, 2, 3, 45296789012345, None], pa.int64()).cast(pa.time64("ns")),
        "interval_mdn": pa.array([(1, 2, 3), (-1, -2, -3), (0, 0, 0), (2**31 - 1, -(2**31), 2**63 - 1),
                                  (0, 0, -(2**63)), (12, 30, 10**9), None], pa.month_day_nano_interval()),
        "date32": pa.array([0, -1, 11016, -719528, -719529, 2932897, None], pa.int32()).cast(pa.date32()),
        "ts_s": pa.array([0, -1, 1614834367, -(2**63), 2**63 - 1, -86401, None], pa.int64()).cast(pa.timestamp("s")),
        "ts_ms": pa.array([-1, 1614834367123, 0, -(2**63), 2**63 - 1, 1, None], pa.int64()).cast(pa.timestamp("ms")),
        "ts_us_utc": pa.array([1614834367123456, -1500000, 5, 0, -1, 10**15, None], pa.int64()).cast(pa.timestamp("us", "UTC")),
        "ts_ns_tokyo": pa.array([-1, -(2**63), 2**63 - 1, 0, 1, 10**18, None], pa.int64()).cast(pa.timestamp("ns", "Asia/Tokyo")),
        "duration_s": pa.array([-5, 0, -(2**63), 2**63 - 1, 1, 2, None], pa.int64()).cast(pa.duration("s")),
        "duration_ns": pa.array([-5, 0, 1, 2, 3, 4, None], pa.int64()).cast(pa.duration("ns")),
        "list": pa.array([[1, 2], [], None, [None, 4], [5], [6, 7, 8], None], pa.list_(pa.int64())),
        "large_list": pa.array([["a"], [], ["b", None], None, ["c"], [], None], pa.large_list(pa.string())),
        "fixed_size_list": pa.array([[1.5, None], [2.5, 3.5], None, [0.1, 0.2], [1, 2], [3, 4], None],
                                    pa.list_(pa.float64(), 2)),
        "struct": struct,
        "list_of_struct": pa.ListArray.from_arrays(pa.array([0, 2, 2, 3, 4, 6, 7, 7], pa.int32()), struct),
        "dict": pa.array(["a", "b", None, "a", "c", "b", None]).dictionary_encode(),
        "map": pa.array([[("a", 1), ("b", None)], [], None, [("c", 3)], [("", -1)], [("x", 0)], None],
                        pa.map_(pa.utf8(), pa.int32())),
        "sparse_union": pa.UnionArray.from_sparse(
            pa.array([0, 1, 0, 1, 1, 0, 0], pa.int8()),
            [pa.array([1, 2, None, 4, 5, 6, 7], pa.int32()),
             pa.array(["a", "b", "c", None, "e", "f", "g"])], ["i", "s"]),
        "dense_union": pa.UnionArray.from_dense(
            pa.array([5, 5, 2, 2, 5, 2, 5], pa.int8()), pa.array([0, 1, 0, 1, 2, 2, 3], pa.int32()),
            [pa.array([1.5, None, 0.25]), pa.array([[1], [], None, [None, 2]], pa.list_(pa.int8()))],
            ["f", "l"], [2, 5]),
        "list_view": pa.ListViewArray.from_arrays(
            pa.array([3, 0, 1, 0, 2, 4, 0], pa.int32()), pa.array([2, 3, 0, 1, 3, 1, 0], pa.int32()),
            pa.array([1, None, 3, 4, 5]), mask=pa.array([False] * 6 + [True])),
        "large_list_view": pa.LargeListViewArray.from_arrays(
            pa.array([0, 0, 1, 2, 0, 1, 0], pa.int64()), pa.array([1, 2, 1, 0, 3, 2, 0], pa.int64()),
            pa.array(["a", "bb", None])),
        "ree": pa.RunEndEncodedArray.from_arrays(pa.array([2, 3, 7], pa.int16()),
                                                 pa.array(["two", None, "four"])),
        "ree_struct": pa.RunEndEncodedArray.from_arrays(
            pa.array([1, 7], pa.int64()),
            pa.StructArray.from_arrays([pa.array([1, None]), pa.array(["x", "y"])], ["a", "b"])),
        "uuid": pa.ExtensionArray.from_storage(
            pa.uuid(), pa.array([bytes(range(16)), b"\xff" * 16, None, b"0" * 16, b"1" * 16,
                                 b"2" * 16, None], pa.binary(16))),
        "json": pa.ExtensionArray.from_storage(
            pa.json_(), pa.array(['{"a": 1}', "[]", "null", None, '"s"', "1.5", "{}"])),
        "map_sorted": pa.array([[(1, [1.5])], [(2, None), (3, [])], [], None, [], [(9, [None])], None],
                               pa.map_(pa.int64(), pa.list_(pa.float64()), keys_sorted=True)),
        "dict_int32": pa.DictionaryArray.from_arrays(
            pa.array([2, 0, 1, None, 0, 2, 1], pa.int32()), pa.array([10.5, None, -1.0])),
        "random_f64": pa.array(rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)),
        "random_f32": pa.array((rng.standard_normal(n) * 1e5).astype(np.float32)),
    }
    return pa.RecordBatch.from_pydict(cols)


def write_ipc(path: Path, batches, schema: pa.Schema, fmt: str, compression=None) -> None:
    options = pa.ipc.IpcWriteOptions(compression=compression)
    opener = pa.ipc.new_file if fmt == "file" else pa.ipc.new_stream
    with opener(str(path), schema, options=options) as w:
        for b in batches:
            w.write_batch(b)


def cat_text(path, *args: str) -> str:
    r = run("cat", str(path), *args)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b""
    return r.stdout.decode("utf-8")


# --------------------------------------------------------------------------
# cat: every type, both formats, every compression


@pytest.mark.parametrize("fmt", ["stream", "file"])
@pytest.mark.parametrize("compression", [None, "lz4", "zstd"])
def test_cat_every_type(tmp_path, fmt, compression):
    batch = every_type_batch()
    batches = [batch, batch.slice(2, 4), batch.slice(6)]
    path = tmp_path / f"every.{fmt}"
    write_ipc(path, batches, batch.schema, fmt, compression)
    assert cat_text(path) == expected_lines(batches)


def test_expected_rules_spot_checks():
    """The Python side's rules agree with the hand-written examples of the
    README, so both sides are not wrong together."""
    b = every_type_batch()
    row0 = expected_lines([b.slice(0, 1)])
    assert '"float32": 0.1,' in row0
    assert '"float16": 0.1,' in row0
    assert '"float64": 0.1,' in row0
    assert '"decimal": "-12.340"' in row0
    assert '"ts_us_utc": "2021-03-04T05:06:07.123456Z"' in row0
    assert '"uint64": 0,' in row0
    assert date_text(-719529) == "-0001-12-31"
    assert timestamp_text(-1, "ns", None) == '"1969-12-31T23:59:59.999999999"'
    assert json_float(np.float16(65504), "float16") == "65500.0"
    assert json_float(1e16, "float64") == "1e+16"


def test_cat_random_floats(tmp_path):
    """Random bit patterns (and every float16): each prints as the shortest
    text that reads back to the same value of its width."""
    rng = np.random.default_rng(11)
    n = 2**16
    f64 = rng.integers(0, 2**64, n, dtype=np.uint64).view(np.float64)
    f32 = rng.integers(0, 2**32, n, dtype=np.uint32).view(np.float32)
    f16 = np.arange(n, dtype=np.uint16).view(np.float16)  # every one of them
    batch = pa.RecordBatch.from_pydict(
        {"d": pa.array(f64), "f": pa.array(f32), "h": pa.array(f16, pa.float16())}
    )
    path = tmp_path / "floats.arrow"
    write_ipc(path, [batch], batch.schema, "file")
    got = cat_text(path)
    assert got == expected_lines([batch])
    # And they do read back: parse the text and compare bit patterns.
    import json

    for line, d, f in zip(got.splitlines()[:2000], f64, f32):
        row = json.loads(line)
        if not math.isnan(d):
            assert np.float64(row["d"]).tobytes() == d.tobytes() or d == 0
        if not math.isnan(f) and not math.isinf(f):
            assert np.float32(float(row["f"])) == f


def test_cat_sliced_and_nested_nulls(tmp_path):
    inner = pa.array([[{"a": 1, "b": [None, "x"]}, None], None, [], [{"a": None, "b": None}]],
                     pa.list_(pa.struct([("a", pa.int64()), ("b", pa.list_(pa.string()))])))
    batch = pa.RecordBatch.from_arrays([inner], names=["deep"])
    path = tmp_path / "s.arrows"
    batches = [batch.slice(1), batch.slice(0, 1)]
    write_ipc(path, batches, batch.schema, "stream")
    text = cat_text(path)
    assert text == expected_lines(batches)
    assert text.splitlines()[0] == '{"deep": null}'
    assert text.splitlines()[-1] == '{"deep": [{"a": 1, "b": [null, "x"]}, null]}'


def test_cat_dictionary_across_batches(tmp_path):
    d1 = pa.array(["x", "y", "x"]).dictionary_encode()
    b1 = pa.RecordBatch.from_arrays([d1], names=["d"])
    # A second batch with a different dictionary (a stream may replace it).
    d2 = pa.DictionaryArray.from_arrays(pa.array([1, 0], pa.int32()), pa.array(["p", "q"]))
    b2 = pa.RecordBatch.from_arrays([d2], names=["d"])
    path = tmp_path / "d.arrows"
    write_ipc(path, [b1, b2], b1.schema, "stream")
    assert cat_text(path) == '{"d": "x"}\n{"d": "y"}\n{"d": "x"}\n{"d": "q"}\n{"d": "p"}\n'


@pytest.mark.parametrize("fmt", ["stream", "file"])
def test_cat_empty(tmp_path, fmt):
    schema = pa.schema([("a", pa.int64()), ("b", pa.string())])
    path = tmp_path / "none"
    write_ipc(path, [], schema, fmt)
    assert cat_text(path) == ""
    empty = pa.RecordBatch.from_pydict({"a": pa.array([], pa.int64()), "b": pa.array([], pa.string())})
    write_ipc(path, [empty, empty], schema, fmt)
    assert cat_text(path) == ""


def test_cat_stdin():
    batch = pa.RecordBatch.from_pydict({"a": [1, 2], "b": ["x", None]})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(batch)
    r = run("cat", "-", input=sink.getvalue().to_pybytes())
    assert r.returncode == 0, r.stderr
    assert r.stdout == b'{"a": 1, "b": "x"}\n{"a": 2, "b": null}\n'


# --------------------------------------------------------------------------
# --limit, --schema


def three_batches(tmp_path) -> Path:
    batches = [pa.RecordBatch.from_pydict({"i": list(range(k * 4, k * 4 + 4))}) for k in range(3)]
    path = tmp_path / "three.arrow"
    write_ipc(path, batches, batches[0].schema, "file")
    return path


@pytest.mark.parametrize("limit,rows", [(0, 0), (1, 1), (4, 4), (6, 6), (12, 12), (100, 12)])
def test_limit(tmp_path, limit, rows):
    path = three_batches(tmp_path)
    want = "".join('{"i": %d}\n' % i for i in range(rows))
    assert cat_text(path, "--limit", str(limit)) == want
    assert cat_text(path, f"--limit={limit}") == want


def test_schema(tmp_path):
    schema = pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            pa.field("name", pa.string(), metadata={"unit": "none", "multi": "a\nb"}),
            pa.field("at", pa.timestamp("us", "UTC")),
            pa.field("tags", pa.list_(pa.string())),
            pa.field("d", pa.dictionary(pa.int32(), pa.string())),
            pa.field("s", pa.struct([("x", pa.float64())])),
            pa.field("dec", pa.decimal128(10, 3)),
        ],
        metadata={"origin": "test"},
    )
    path = tmp_path / "schema.arrow"
    write_ipc(path, [], schema, "file")
    lines = cat_text(path, "--schema").splitlines()
    assert lines[0] == "id: int64 not null"
    assert lines[1] == "name: utf8"
    assert lines[2] == "  -- field metadata --"
    assert sorted(lines[3:5]) == ["  multi: a\\nb", "  unit: none"]
    assert lines[5] == "at: timestamp[us, tz=UTC]"
    assert lines[6].startswith("tags: list<") and "utf8" in lines[6]
    assert lines[7] == "d: dictionary<values=utf8, indices=int32>"
    assert lines[8] == "s: struct<x: float64>"
    assert lines[9] == "dec: decimal128(10, 3)"
    assert lines[10:] == ["-- schema metadata --", "origin: test"]


def test_schema_metadata_bytes_print_as_text(tmp_path):
    """Metadata is bytes: what is not UTF-8 text prints as \\xNN (NUL
    included), a backslash as \\\\, text as itself; one line per pair."""
    schema = pa.schema(
        [pa.field("x", pa.int64(), metadata={b"k\x00": b"caf\xc3\xa9 \xff\\n"})],
        metadata={b"raw": b"\x80\xc3(\xf0\x9f\x98\x80"},
    )
    path = tmp_path / "meta.arrow"
    write_ipc(path, [], schema, "file")
    out = subprocess.run([str(PROTIUM), "cat", "--schema", str(path)], capture_output=True)
    assert out.returncode == 0
    lines = out.stdout.decode("utf-8").splitlines()  # valid UTF-8 throughout
    assert lines == [
        "x: int64",
        "  -- field metadata --",
        "  k\\x00: caf\u00e9 \\xff\\\\n",
        "-- schema metadata --",
        "raw: \\x80\\xc3(\U0001f600",
    ]


# --------------------------------------------------------------------------
# Output to a reader that goes away


def test_closed_pipe_is_quiet(tmp_path):
    batch = pa.RecordBatch.from_pydict({"i": np.arange(300000), "s": ["some text"] * 300000})
    path = tmp_path / "big.arrow"
    write_ipc(path, [batch], batch.schema, "file")
    p = subprocess.Popen([str(PROTIUM), "cat", str(path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    first = p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=60) == 0
    assert first == b'{"i": 0, "s": "some text"}\n'
    assert err == b""


# --------------------------------------------------------------------------
# Errors


def assert_fails(r, path, code=1):
    assert r.returncode == code, (r.returncode, r.stderr)
    msg = r.stderr.decode()
    assert msg.startswith(f"protium: cat: {path}: "), msg
    assert len(msg.strip()) > len(f"protium: cat: {path}: ") + 5, msg
    assert msg.count("\n") == 1


def test_missing_file(tmp_path):
    path = tmp_path / "nope.arrow"
    r = run("cat", str(path))
    assert_fails(r, path)
    assert r.stdout == b""


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, world\n", b"ARROW1", b"ARROW1\0\0" + b"\xff" * 64, bytes(range(256)) * 10,
     b"\xff\xff\xff\xff\x10\0\0\0" + b"\0" * 16],
    ids=["empty", "text", "magic-only", "magic-then-junk", "bytes", "stream-junk"],
)
def test_garbage_file(tmp_path, content):
    path = tmp_path / "garbage.arrow"
    path.write_bytes(content)
    assert_fails(run("cat", str(path)), path)


@pytest.mark.parametrize("fmt", ["stream", "file"])
def test_truncated_files(tmp_path, fmt):
    """Every prefix of a valid file fails cleanly (or, for a stream cut at a
    message boundary, prints the rows before the cut): never a crash."""
    batch = every_type_batch()
    whole = tmp_path / "whole"
    write_ipc(whole, [batch, batch], batch.schema, fmt, "zstd")
    data = whole.read_bytes()
    path = tmp_path / "cut"
    full = expected_lines([batch, batch])
    for n in sorted(set(range(0, len(data), max(1, len(data) // 150))) | {len(data) - 1}):
        path.write_bytes(data[:n])
        r = run("cat", str(path))
        assert r.returncode in (0, 1), (n, r.returncode, r.stderr)
        if r.returncode == 1:
            assert r.stderr.decode().startswith(f"protium: cat: {path}: ")
        assert full.startswith(r.stdout.decode("utf-8", "replace"))


def test_usage_errors(tmp_path):
    for args in [["cat"], ["cat", "--limit"], ["cat", "f", "--limit", "x"], ["cat", "f", "--limit", "-1"],
                 ["cat", "f", "--bogus"], ["cat", "a", "b"], ["frobnicate"], []]:
        r = run(*args)
        assert r.returncode == 2, (args, r.returncode)
        assert r.stderr.startswith(b"protium: ") or r.stderr.startswith(b"usage: "), (args, r.stderr)
        assert r.stdout == b""


def test_help_and_version():
    r = run("version")
    assert r.returncode == 0
    assert r.stdout == b"protium 0.1.0\n"
    for flag in ["help", "--help", "-h"]:
        r = run(flag)
        assert r.returncode == 0
        out = r.stdout.decode()
        assert "usage: protium" in out
        for cmd in ["version", "cat FILE", "--schema", "--limit N", "help"]:
            assert cmd in out


def test_large_batch_in_chunks(tmp_path):
    """A batch larger than the command's slice size prints whole and in order,
    and --limit cuts inside it."""
    n = 150000
    batch = pa.RecordBatch.from_pydict(
        {"i": np.arange(n), "s": pa.array([f"r{i}" if i % 7 else None for i in range(n)])}
    )
    path = tmp_path / "large.arrow"
    write_ipc(path, [batch], batch.schema, "file", "lz4")
    assert cat_text(path) == expected_lines([batch])
    assert cat_text(path, "--limit", "70000") == expected_lines([batch.slice(0, 70000)])


# --------------------------------------------------------------------------
# The examples (what the README and `make demo` show)

EXAMPLES = BUILD / "examples"


def test_example_arrow_basics(tmp_path):
    path = tmp_path / "people.arrow"
    r = subprocess.run([str(EXAMPLES / "arrow_basics"), str(path)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    table = pa.ipc.open_file(str(path)).read_all()
    assert table.schema.field("id").type == pa.int64() and not table.schema.field("id").nullable
    assert r.stdout.decode() == expected_lines(table.to_batches())
    assert r.stdout.decode().splitlines()[0] == (
        '{"id": 1000, "name": "ada", "score": 97.5, "tags": ["math", "engines"], '
        '"joined": "1840-01-01T00:00:00.000Z"}'
    )


def test_example_every_type(tmp_path):
    """protium writes every type, pyarrow reads it (validating every array),
    and `protium cat` prints exactly what pyarrow's values say."""
    path = tmp_path / "every.arrow"
    r = subprocess.run([str(EXAMPLES / "every_type"), str(path)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    reader = pa.ipc.open_file(str(path))
    batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
    assert len(batches) >= 2
    for b in batches:
        b.validate(full=True)
    assert cat_text(path) == expected_lines(batches)
    schema = cat_text(path, "--schema").splitlines()
    assert schema[0] == "id: int64 not null"
    assert schema[-2:] == ["-- schema metadata --", "source: examples/every_type.c"]


def protium_interval_stream() -> tuple[bytes, list[str]]:
    """An IPC stream holding month and day_time interval columns (which
    pyarrow's Python layer cannot hold): a pyarrow int32 and int64 column,
    their layouts, exported through the C Data Interface with the interval
    formats put in, written by libprotium. Returns it and the expected lines."""
    import ctypes

    import protium.arrow  # noqa: F401  (loads the library)
    from protium._lib import (ArrowArray, ArrowSchema, PtError, check, lib, release_array,
                              release_schema)

    months = pa.array([0, -1, 2**31 - 1, None, 14], pa.int32())
    days = [(1, 5), (-2, -(2**31)), (0, 0), (7, 86399999), None]
    raw = pa.array([None if d is None else (d[0] & 0xFFFFFFFF) | (d[1] << 32) for d in days],
                   pa.int64())
    batch = pa.record_batch([months, raw], names=["m", "dt"])
    s, a = ArrowSchema(), ArrowArray()
    batch._export_to_c(ctypes.addressof(a), ctypes.addressof(s))
    formats = [ctypes.c_char_p(b"tiM"), ctypes.c_char_p(b"tiD")]
    for k in range(2):
        s.children[k].contents.format = formats[k]
    err, writer = PtError(), ctypes.c_void_p()
    try:
        check(lib().pt_ipc_writer_open_buffer(ctypes.byref(s), None, ctypes.byref(writer),
                                              ctypes.byref(err)), err)
        check(lib().pt_ipc_writer_write(writer, ctypes.byref(a), ctypes.byref(err)), err)
        check(lib().pt_ipc_writer_close(writer, ctypes.byref(err)), err)
        data, size = ctypes.c_void_p(), ctypes.c_int64()
        check(lib().pt_ipc_writer_take_buffer(writer, ctypes.byref(data), ctypes.byref(size),
                                              ctypes.byref(err)), err)
        out = ctypes.string_at(data, size.value)
        ctypes.CDLL(None).free(data)
    finally:
        if writer:
            lib().pt_ipc_writer_free(writer)
        release_array(a)
        release_schema(s)
    lines = []
    for m, d in zip(months.to_pylist(), days):
        dt = "null" if d is None else '{"days": %d, "milliseconds": %d}' % d
        lines.append('{"m": %s, "dt": %s}\n' % ("null" if m is None else m, dt))
    return out, lines


def test_cat_month_and_day_time_intervals():
    data, lines = protium_interval_stream()
    r = run("cat", "-", input=data)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == "".join(lines)
    r = run("cat", "-", "--schema", input=data)
    assert r.stdout.decode().splitlines()[:2] == ["m: month_interval", "dt: day_time_interval"]
