"""pt_csv_read against pyarrow.csv as the reference: the same text, with the
same options, gives the same column types and values (inference of ints,
floats, booleans, dates, timestamps and strings; quoted fields spanning
lines; nulls), whole and split into byte ranges."""

from __future__ import annotations

import ctypes
import io
import random

import pyarrow as pa
import pyarrow.csv as pacsv

import protium._lib as L


class CsvOptions(ctypes.Structure):
    _fields_ = [
        ("header", ctypes.c_int),
        ("delimiter", ctypes.c_char),
        ("quote", ctypes.c_char),
        ("escape", ctypes.c_char),
        ("null_values", ctypes.POINTER(ctypes.c_char_p)),
        ("n_null_values", ctypes.c_int64),
        ("schema", ctypes.c_void_p),
        ("infer_rows", ctypes.c_int64),
        ("mode", ctypes.c_int),
        ("corrupt_column", ctypes.c_char_p),
    ]


MODES = {"FAILFAST": 0, "DROPMALFORMED": 1, "PERMISSIVE": 2}


def read(text: bytes, begin: int = 0, end: int | None = None, *, header: bool = True,
         mode: str = "FAILFAST") -> pa.RecordBatch:
    dll = L.lib()._dll
    dll.pt_csv_options_init.argtypes = [ctypes.POINTER(CsvOptions)]
    dll.pt_csv_read.argtypes = [
        ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_char_p,
        ctypes.POINTER(CsvOptions), ctypes.POINTER(L.ArrowSchema),
        ctypes.POINTER(L.ArrowArray), ctypes.POINTER(L.PtError),
    ]
    o = CsvOptions()
    dll.pt_csv_options_init(ctypes.byref(o))
    o.header = int(header)
    o.mode = MODES[mode]
    s, a, err = L.ArrowSchema(), L.ArrowArray(), L.PtError()
    end = len(text) if end is None else end
    rc = dll.pt_csv_read(text, len(text), begin, end, b"t.csv", ctypes.byref(o),
                         ctypes.byref(s), ctypes.byref(a), ctypes.byref(err))
    L.check(rc, err)
    schema = pa.Schema._import_from_c(ctypes.addressof(s))
    return pa.RecordBatch._import_from_c(ctypes.addressof(a), schema)


def reference(text: bytes, header: bool = True) -> pa.Table:
    # pyarrow's defaults, narrowed to protium's rules: only the empty field is
    # null, booleans are true/false, a quoted empty field is the empty string.
    return pacsv.read_csv(
        io.BytesIO(text),
        read_options=pacsv.ReadOptions(autogenerate_column_names=not header),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            null_values=[""], true_values=["true"], false_values=["false"],
            strings_can_be_null=True, quoted_strings_can_be_null=False,
            timestamp_parsers=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"],
        ),
    )


def sample(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    lines = ["i,f,b,d,ts,s"]
    for k in range(n):
        def maybe(v: str) -> str:
            return "" if rng.random() < 0.1 else v
        s = rng.choice(['plain', '"with, comma"', '"line\nbreak"', '"say ""hi"""', "x y"])
        lines.append(",".join([
            maybe(str(rng.randint(-2**63, 2**63 - 1))),
            maybe(repr(rng.uniform(-1e6, 1e6))),
            maybe(rng.choice(["true", "false"])),
            maybe(f"{rng.randint(1900, 2100)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"),
            maybe(f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T0{rng.randint(0, 9)}:"
                  f"{rng.randint(10, 59)}:{rng.randint(10, 59)}"),
            maybe(s),
        ]))
    return ("\n".join(lines) + "\n").encode()


def test_values_match_pyarrow() -> None:
    text = sample(2000, 1)
    got = pa.Table.from_batches([read(text)])
    want = reference(text)
    assert got.schema.names == want.schema.names
    # pyarrow infers timestamp[s] where protium keeps microseconds.
    want = want.set_column(4, "ts", want.column("ts").cast(pa.timestamp("us")))
    assert got.schema == want.schema
    assert got.equals(want)


def test_ranges_match_whole() -> None:
    text = sample(300, 2)
    whole = pa.Table.from_batches([read(text)])
    for cut in random.Random(3).sample(range(len(text)), 40):
        parts = pa.Table.from_batches([read(text, 0, cut), read(text, cut)])
        assert parts.equals(whole), cut


def float_texts(n: int, seed: int) -> list[str]:
    """Doubles as the texts CSV files hold: shortest round-trip (17 digits),
    random bit patterns, short decimals with exponents, and decimal
    midpoints between neighbouring doubles (where rounding must break the
    tie exactly as strtod does)."""
    import struct
    from decimal import Decimal

    import numpy as np

    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        k = rng.random()
        if k < 0.3:
            v = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
            if v == v and abs(v) != float("inf"):
                out.append(repr(v))
        elif k < 0.6:
            out.append(repr(rng.uniform(-1e6, 1e6)))
        elif k < 0.8:
            out.append(f"{rng.randint(0, 10**rng.randint(1, 20))}."
                       f"{rng.randint(0, 10**rng.randint(0, 20))}"
                       + rng.choice(["", f"e{rng.randint(-30, 30)}", f"E+{rng.randint(0, 9)}"]))
        else:
            v = struct.unpack("d", struct.pack("Q", rng.getrandbits(62)))[0]
            if 1e-20 < v < 1e20:
                mid = (Decimal(v) + Decimal(float(np.nextafter(v, np.inf)))) / 2
                out.append(format(mid, "f")[:rng.randint(20, 40)])
    return out


def test_floats_exactly_as_strtod() -> None:
    # The reader converts most numbers without strtod; each must still be the
    # nearest double, bit for bit what Python's float() gives.
    import struct

    texts = float_texts(40_000, 5)
    got = read(("x\n" + "\n".join(texts) + "\n").encode()).column(0).to_pylist()
    bad = [(t, g) for t, g in zip(texts, got)
           if struct.pack("d", g) != struct.pack("d", float(t))]
    assert bad == []


def test_number_texts_at_the_edges() -> None:
    # The digit runs are read eight bytes at a time: lengths around 8, 16,
    # 18 and 19 digits, leading zeros, signs, and texts that are not numbers
    # where a digit run stops, must read as Python reads them.
    import struct

    ints = ["0", "-0", "+7", "00000000012", "-000000000000000001", "12345678",
            "123456789", "1234567890123456", "12345678901234567", "123456789012345678",
            "-123456789012345678", "1234567890123456789", "9223372036854775807",
            "-9223372036854775808", "+9223372036854775807"]
    got = read(("i\n" + "\n".join(ints) + "\n").encode()).column(0)
    assert got.type == pa.int64()
    assert got.to_pylist() == [int(t) for t in ints]
    for text in ["12345678a", "1234567812345678x", "9223372036854775808", "1-2", "12 3"]:
        col = read(f"i\n{text}\n1\n".encode()).column(0)
        assert col.type != pa.int64(), text
    floats = ["0.0", "-0.0", "000.00012345678901234567", "0.00000000000000000001",
              "12345678.12345678", "1234567812345678.0", "1234567890123456789.0",
              "12345678901234567890.5", "0.1234567890123456789", "0.12345678901234567890",
              "00000000000000000000000001.5", "99999999.99999999e-5", "1.e3", ".5", "-.5e+2",
              "123456789012345678901234567890"]
    got = read(("f\n" + "\n".join(floats) + "\n").encode()).column(0)
    assert got.type == pa.float64()
    bad = [(t, g) for t, g in zip(floats, got.to_pylist())
           if struct.pack("d", g) != struct.pack("d", float(t))]
    assert bad == []
    for text in ["1.2345678x", "12345678.1234567-8", "1e", "-", "."]:
        col = read(f"f\n{text}\n1.5\n".encode()).column(0)
        assert col.type == pa.string(), text


def test_columns_outgrow_their_first_estimate() -> None:
    # The columns are sized from the newlines of the first 64 KiB and an
    # even share of the text per string column: long records first, then
    # many short ones, with one string column taking nearly all the text,
    # must grow past that estimate and still read as pyarrow reads them.
    rng = random.Random(11)
    lines = ["a,s,t"]
    for i in range(200):
        lines.append(f"{i},{'x' * 400},")
    for i in range(200, 60_000):
        lines.append(f"{i},{rng.choice(['', 'p', 'qq'])},{'y' * rng.randint(0, 30)}")
    text = ("\n".join(lines) + "\n").encode()
    got = pa.Table.from_batches([read(text)])
    assert got.num_rows == 59_999 + 1
    assert got.equals(reference(text))


# Blank lines where a file may have them: before the header, between
# records (several in a row, LF and CRLF), at the end; and inside quoted
# fields, where they are data.
BLANK_FILES = {
    "end": b"a,b\n1,2\n\n",
    "ends": b"a,b\n1,2\n3,4\n\n\n\r\n",
    "start": b"\n\r\n\na,b\n1,2\n3,4\n",
    "middle": b"a,b\n1,2\n\n\n3,4\n\r\n5,6\n",
    "crlf": b"a,b\r\n\r\n1,2\r\n\r\n\r\n3,4\r\n\r\n",
    "quoted": b'a,b\n\n"x\n\ny",1\n\n"\n",2\n"\r\n\r\n",3\n\n',
    "no final newline": b"\na,b\n\n1,2\n\n3,4",
    "long": b"a,b\n" + b"".join(b"%d,%s\n%s" % (i, b"x" * (i % 70), b"\n" * (i % 3))
                                  for i in range(300)),
}


def test_blank_lines_are_no_records() -> None:
    # As pyarrow.csv (ignore_empty_lines) and Spark: a blank line is not a
    # row, not malformed, not the header; in every mode, whole and cut
    # anywhere (a range may start or end on a blank line).
    for name, text in BLANK_FILES.items():
        want = reference(text)
        for mode in MODES:
            got = pa.Table.from_batches([read(text, mode=mode)])
            assert got.equals(want), (name, mode)
        for cut in range(len(text) + 1):
            parts = pa.Table.from_batches([read(text, 0, cut), read(text, cut)])
            assert parts.equals(want), (name, cut)


def test_blank_lines_without_a_header() -> None:
    text = b"\n\n1,x\n\n2,y\r\n\r\n"
    got = pa.Table.from_batches([read(text, header=False)])
    assert got.column_names == ["_c0", "_c1"]
    assert got.to_pydict() == {"_c0": [1, 2], "_c1": ["x", "y"]}
    assert got.num_rows == reference(text, header=False).num_rows
    # A file of blank lines alone is one column of nulls, as DuckDB reads
    # it (pyarrow.csv finds no column).
    only = read(b"\n\r\n\n", header=False)
    assert only.schema.names == ["_c0"] and only.column(0).to_pylist() == [None] * 3


def test_one_column_blank_lines_are_nulls() -> None:
    # With one column a blank line after the header is a record of one
    # empty field, a null (DuckDB does the same; pyarrow.csv skips it), in
    # every mode, whole and cut anywhere; those before the header are not.
    text = b"\n\r\nv\nx\n\n\"\"\n\r\n\ny\n\n"
    want = ["x", None, "", None, None, "y", None]
    for mode in MODES:
        assert read(text, mode=mode).column(0).to_pylist() == want, mode
    for cut in range(len(text) + 1):
        parts = pa.Table.from_batches([read(text, 0, cut), read(text, cut)])
        assert parts.column(0).to_pylist() == want, cut
    assert reference(text).column(0).to_pylist() == ["x", "", "y"]


def test_blank_lines_are_not_samples_for_inference() -> None:
    # With infer_rows records looked at, blank lines take no place among
    # them: the int column is still an int column.
    text = b"a,b\n" + b"\n" * 5000 + b"1,2\n3,4\n"
    got = read(text)
    assert got.column(0).type == pa.int64()
    assert got.column(0).to_pylist() == [1, 3]
    # With one column they are nulls, which have no say in types either.
    got = read(b"a\n" + b"\n" * 5000 + b"1\n2\n")
    assert got.column(0).type == pa.int64()
    assert got.column(0).to_pylist() == [None] * 5000 + [1, 2]


def test_line_numbers_count_blank_lines() -> None:
    # An error after blank lines names the line as an editor numbers it.
    import pytest

    text = b"\n\na,b\n\n1,2\r\n\r\n\n3\n"
    with pytest.raises(Exception, match=r"t.csv: line 8: malformed record: 1 fields, the schema has 2"):
        read(text)
    got = pa.Table.from_batches([read(text, mode="DROPMALFORMED")])
    assert got.to_pydict() == {"a": [1], "b": [2]}
    got = pa.Table.from_batches([read(text, mode="PERMISSIVE")])
    assert got.to_pydict() == {"a": [1, 3], "b": [2, None]}


def test_a_line_of_spaces_is_a_value() -> None:
    # Not blank: pyarrow reads it as a value too (here one field where the
    # schema has two, so malformed).
    import pytest

    text = b"a,b\n1,2\n  \n3,4\n"
    with pytest.raises(Exception, match=r"line 3: malformed record: 1 fields"):
        read(text)
    with pytest.raises(pa.ArrowInvalid):
        reference(text)
    one = b"a\nx\n \ny\n"
    assert read(one).column(0).to_pylist() == reference(one).column(0).to_pylist() == ["x", " ", "y"]
