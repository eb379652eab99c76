"""Dataset.count() over read_csv: in PERMISSIVE mode the executors count
the records with the quote-aware scan instead of parsing them, and in
FAILFAST mode the same scan also checks each record's structure (field
count, quotes) without converting values, as Spark's column pruning does.
The count must equal the rows a parse gives (to_arrow().num_rows) and
pyarrow.csv's, over quoted newlines, doubled quotes, CRLF, blank lines, a
missing final newline, header or not, directories of several files and
files cut into many ranges; a FAILFAST count fails with file and line on a
record of the wrong shape or an unclosed quote, but not on a value that
does not convert (to_arrow() does); DROPMALFORMED still parses, so a
record with a bad value is not counted."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

import protium as pt


def records(n: int, seed: int, *, crlf: bool, blank: bool, header: bool, final_newline: bool) -> bytes:
    """n records of three fields, quoted ones holding newlines, CRLF, doubled
    quotes and delimiters (some over many 64-byte blocks), with blank lines
    between some (when blank)."""
    rng = random.Random(seed)
    out = [b"id,s,t\r\n" if crlf else b"id,s,t\n"] if header else []
    for i in range(n):
        parts = []
        for _ in range(2):
            k = rng.randrange(7)
            v = ["w%d" % i, "a\nb", "x\r\ny", 'q""q', "c,d\n\ne", "L" + "z\n," * rng.randrange(20, 60),
                 ""][k]
            parts.append(v.encode() if k == 0 else b'"' + v.encode() + b'"')
        end = b"\r\n" if crlf and rng.random() < 0.5 else b"\n"
        out.append(b"%d," % i + b",".join(parts) + end)
        if blank and rng.random() < 0.05:
            out.append(b"\r\n" if crlf and rng.random() < 0.5 else b"\n")
    text = b"".join(out)
    if not final_newline:
        text = text.rstrip(b"\r\n")
    return text


def pyarrow_rows(path: Path, header: bool) -> int:
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(autogenerate_column_names=not header),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
    ).num_rows


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize("header", [False, True])
def test_count_equals_parsed_rows(tmp_path: Path, crlf: bool, header: bool) -> None:
    plain = records(3000, 3, crlf=crlf, blank=False, header=header, final_newline=False)
    blanks = records(3000, 4, crlf=crlf, blank=True, header=header, final_newline=True)
    (tmp_path / "plain.csv").write_bytes(plain)
    (tmp_path / "blanks.csv").write_bytes(blanks)
    # Blank lines are no records, as in pyarrow: both files count as
    # pyarrow reads them.
    want_plain = pyarrow_rows(tmp_path / "plain.csv", header)
    assert want_plain == 3000 == pyarrow_rows(tmp_path / "blanks.csv", header)
    assert blanks.count(b"\n\n") + blanks.count(b"\n\r\n") > 100
    # Ranges of a few KB, cut inside quoted newlines, on quotes, between \r
    # and \n; and one range per file.
    for part in ("2999", "65536", str(1 << 30)):
        with pt.Session("local[2]", conf={"csv.partition_bytes": part,
                                          "csv.cut_span_bytes": "1000"}) as s:
            for name in ("plain.csv", "blanks.csv"):
                for mode in ("PERMISSIVE", "FAILFAST", "DROPMALFORMED"):
                    ds = s.read_csv(tmp_path / name, header=header, mode=mode)
                    if part == "2999":
                        assert ds.num_partitions > 10
                    assert ds.count() == ds.to_arrow().num_rows == want_plain, (name, part, mode)


def test_count_of_a_directory(tmp_path: Path) -> None:
    d = tmp_path / "dir"
    d.mkdir()
    want = 0
    for k in range(5):
        text = records(200 + 150 * k, 10 + k, crlf=k % 2 == 1, blank=False, header=True,
                       final_newline=k != 2)
        (d / f"part-{k}.csv").write_bytes(text)
        want += pyarrow_rows(d / f"part-{k}.csv", True)
    (d / "part-8-empty.csv").write_bytes(b"")  # after the first file, which settles the schema
    (d / "part-9-header-only.csv").write_bytes(b"id,s,t\n")
    with pt.Session("local[2]", conf={"csv.partition_bytes": "4096"}) as s:
        for mode in ("PERMISSIVE", "FAILFAST"):
            ds = s.read_csv(d, header=True, mode=mode)
            assert ds.num_partitions > 2
            assert ds.count() == ds.to_arrow().num_rows == want, mode


def test_count_permissive_counts_malformed_records(tmp_path: Path) -> None:
    # Malformed records are rows in PERMISSIVE: counted without a parse,
    # as the parse gives them (nulls, and their text in the corrupt column).
    text = b'a,b\n1,2\n3,oops\n4\n5,6,7\n"8",9\n'
    (tmp_path / "m.csv").write_bytes(text)
    with pt.Session("local[1]") as s:
        ds = s.read_csv(tmp_path / "m.csv", header=True, schema="a long, b long",
                        mode="PERMISSIVE", corrupt_column="_corrupt_record")
        got = ds.to_arrow()
        assert ds.count() == got.num_rows == 5
        assert got.column("_corrupt_record").null_count == 2


def test_failfast_count_checks_structure(tmp_path: Path) -> None:
    # A record with too many or too few fields, or an unclosed quote, fails
    # a FAILFAST count with the file and the line, in whichever range it
    # lies (here far past the first of many, and past the bytes near a cut
    # that the driver looks at: the executor counts the lines before it).
    good = records(2000, 7, crlf=False, blank=False, header=True, final_newline=True)
    line = good.count(b"\n") + 1  # the line the appended record starts on
    cases = {
        "few.csv": (b"500,only-two-fields\n", r"2 fields, the schema has 3"),
        "many.csv": (b'500,"a\nb",c,d\n', r"4 fields, the schema has 3"),
        "after.csv": (b'500,"a"b,c\n', r"unterminated quote or text after a closing quote"),
        "open.csv": (b'500,"a\nb,c\n501,d,e\n', r"unterminated quote or text after a closing quote"),
    }
    with pt.Session("local[2]", conf={"csv.partition_bytes": "4096"}) as s:
        for name, (tail, why) in cases.items():
            (tmp_path / name).write_bytes(good + tail + b"600,x,y\n")
            ds = s.read_csv(tmp_path / name, header=True)
            assert ds.num_partitions > 5
            for action in (ds.count, ds.to_arrow):
                with pytest.raises(pt.TaskError, match=rf"{name}: line {line}: malformed record: {why}"):
                    action()


def test_failfast_count_converts_no_value(tmp_path: Path) -> None:
    # A value that does not convert to its column's type is no structural
    # fault: count() does not look at it (as Spark's count under column
    # pruning), to_arrow() converts it and fails; DROPMALFORMED drops the
    # record, so its count parses; PERMISSIVE keeps it as a row.
    (tmp_path / "v.csv").write_bytes(b"a,b\n1,2\n3,abc\n4,5\n")
    with pt.Session("local[1]") as s:
        ds = s.read_csv(tmp_path / "v.csv", header=True, schema="a long, b long")
        assert ds.count() == 3
        with pytest.raises(pt.TaskError, match=r"v.csv: line 3: malformed record: column 1 \(b\): "
                                               r"cannot read 'abc' as int64"):
            ds.to_arrow()
        ds = s.read_csv(tmp_path / "v.csv", header=True, schema="a long, b long",
                        mode="DROPMALFORMED")
        assert ds.count() == ds.to_arrow().num_rows == 2
        ds = s.read_csv(tmp_path / "v.csv", header=True, schema="a long, b long",
                        mode="PERMISSIVE")
        assert ds.count() == ds.to_arrow().num_rows == 3


@pytest.mark.parametrize("quote,escape", [('"', "\\"), (None, None), ("'", "'")])
def test_count_with_other_quoting(tmp_path: Path, quote, escape) -> None:
    # Backslash escapes (an escaped quote or newline inside quotes), no
    # quoting at all, another quote byte: the count follows the same rule
    # as the parse.
    rng = random.Random(9)
    pieces = ['"a\\"b"', '"x\\\ny"', "'c\n''d'", '"p,q"', "plain", "'", '"', ""]
    lines = ["a,b"] + [",".join(rng.choice(pieces) for _ in range(2)) for _ in range(4000)]
    (tmp_path / "e.csv").write_text("\n".join(lines) + "\n")
    with pt.Session("local[2]", conf={"csv.partition_bytes": "3001"}) as s:
        ds = s.read_csv(tmp_path / "e.csv", header=True, quote=quote, escape=escape,
                        mode="PERMISSIVE")
        assert ds.num_partitions > 5
        parsed = ds.to_arrow().num_rows
        assert parsed > 3000  # no unclosed quote swallowed the file
        assert ds.count() == parsed
        # FAILFAST into text columns: only structure can fail, so the
        # count fails exactly when the parse does.
        ds = s.read_csv(tmp_path / "e.csv", header=True, quote=quote, escape=escape,
                        schema="a string, b string")
        try:
            rows = ds.to_arrow().num_rows
        except pt.TaskError:
            with pytest.raises(pt.TaskError, match=r"e.csv: line \d+: malformed record"):
                ds.count()
        else:
            assert ds.count() == rows


# Blank lines at the start (before the header), in the middle, several in a
# row, CRLF ones, at the end, and inside quoted fields (data there).
BLANKS = {
    "start.csv": b"\n\r\n\n\nid,s,t\n1,a,b\n2,c,d\n",
    "middle.csv": b"id,s,t\n1,a,b\n\n\n\n2,c,d\r\n\r\n3,e,f\n",
    "end.csv": b"id,s,t\n1,a,b\n2,c,d\n\n\n\r\n\n",
    "quoted.csv": b'id,s,t\n\n1,"\n\n",x\n\n2,"a\r\n\r\nb",y\n\n\n',
    "one.csv": b"id,s,t\n1,a,b\n\n",
}


def test_count_skips_blank_lines(tmp_path: Path) -> None:
    # count() == to_arrow().num_rows == pyarrow.csv's on each file, in each
    # mode, whole and in ranges of a few bytes (so that ranges start and end
    # on blank lines, and one may hold only the blank lines before the
    # header).
    for name, text in BLANKS.items():
        (tmp_path / name).write_bytes(text)
    for part in ("1", "7", str(1 << 30)):
        with pt.Session("local[2]", conf={"csv.partition_bytes": part,
                                          "csv.cut_span_bytes": "1"}) as s:
            for name in BLANKS:
                for header in (True, False):
                    want = pyarrow_rows(tmp_path / name, header)
                    for mode in ("FAILFAST", "PERMISSIVE", "DROPMALFORMED"):
                        ds = s.read_csv(tmp_path / name, header=header, mode=mode,
                                        schema=None if header else "a string, b string, c string")
                        got = ds.to_arrow()
                        assert ds.count() == got.num_rows == want, (name, part, header, mode)
                        if header:
                            assert got.column_names == ["id", "s", "t"]
                            assert got.column("id").to_pylist() == list(range(1, want + 1))


def test_failfast_line_after_blank_lines(tmp_path: Path) -> None:
    # The lines named still count the blank ones, in count() and the parse.
    (tmp_path / "b.csv").write_bytes(b"\n\nid,s,t\n\n1,a,b\r\n\r\n\n2,c\n3,d,e\n")
    with pt.Session("local[1]") as s:
        ds = s.read_csv(tmp_path / "b.csv", header=True)
        for action in (ds.count, ds.to_arrow):
            with pytest.raises(pt.TaskError, match=r"b.csv: line 8: malformed record: 2 fields, "
                                                   r"the schema has 3"):
                action()


def test_one_column_empty_strings_round_trip(tmp_path: Path) -> None:
    # A one-column table's empty string is written quoted ("" is not a
    # blank line) and reads back as the empty string, in whatever range.
    import pyarrow as pa

    values = ["x", "", "y", "", "", "z"]
    with pt.Session("local[2]") as s:
        s.from_arrow(pa.table({"v": values}), partitions=2).write_csv(tmp_path / "out")
        text = b"".join(p.read_bytes() for p in sorted((tmp_path / "out").glob("part-*.csv")))
        assert b'\n""\n' in text and b"\n\n" not in text
        back = s.read_csv(tmp_path / "out", header=True)
        assert back.count() == 6
        assert back.to_arrow().column("v").to_pylist() == values
        # A null there is the empty unquoted field, a blank line: with one
        # column a blank line is a record of one empty field (a null), as
        # DuckDB reads it (pyarrow.csv skips it and loses the row).
        s.from_arrow(pa.table({"v": ["x", None, "", None, "y"]})).write_csv(tmp_path / "nulls")
        (part,) = sorted((tmp_path / "nulls").glob("part-*.csv"))
        assert part.read_bytes() == b'v\nx\n\n""\n\ny\n'
        back = s.read_csv(tmp_path / "nulls", header=True)
        assert back.count() == back.to_arrow().num_rows == 5
        assert back.to_arrow().column("v").to_pylist() == ["x", None, "", None, "y"]
        assert pyarrow_rows(part, True) == 3


@pytest.mark.parametrize("header", [True, False])
def test_one_column_nulls_round_trip(tmp_path: Path, header: bool) -> None:
    # write_csv then read_csv of a one-column table with nulls (blank lines)
    # and empty strings gives it back exactly: whole, and with files cut into
    # ranges of a few bytes, so that ranges start and end at blank lines.
    import pyarrow as pa

    rng = random.Random(3)
    values = [rng.choice([None, None, "", "x", "yy", "a b"]) for _ in range(400)]
    values[:3] = [None, None, "x"]  # the first lines of the first file blank
    values[-2:] = [None, None]      # and its last ones
    with pt.Session("local[2]") as s:
        s.from_arrow(pa.table({"v": values}), partitions=3).write_csv(tmp_path / "out",
                                                                       header=header)
    parts = sorted((tmp_path / "out").glob("part-*.csv"))
    assert b"\n\n" in b"".join(p.read_bytes() for p in parts)
    for part in ("1", "7", str(1 << 30)):
        with pt.Session("local[2]", conf={"csv.partition_bytes": part,
                                          "csv.cut_span_bytes": "1"}) as s:
            for mode in ("FAILFAST", "PERMISSIVE", "DROPMALFORMED"):
                ds = s.read_csv(tmp_path / "out", header=header, mode=mode,
                                schema=None if header else "v string")
                if part == "7":
                    assert ds.num_partitions > 10
                got = ds.to_arrow()
                assert got.column(0).to_pylist() == values, (part, mode)
                assert ds.count() == got.num_rows == len(values), (part, mode)


# One-column files with blank lines before the header, between records,
# several in a row, CRLF ones, at the end; a file of blank lines only.
ONE_COLUMN = {
    "start.csv": (b"\n\r\n\nv\n1\n\n2\n", [1, None, 2]),
    "middle.csv": (b"v\n1\n\n\n\n2\r\n\r\n3\n", [1, None, None, None, 2, None, 3]),
    "end.csv": (b"v\n1\n2\n\n\n\r\n\n", [1, 2, None, None, None, None]),
    "quoted.csv": (b'v\n\n"\n\n"\n\n"a\r\n\r\nb"\n\n', [None, "\n\n", None, "a\r\n\r\nb", None]),
    "none.csv": (b"v\n1\n2", [1, 2]),
}


def test_one_column_count_counts_blank_lines(tmp_path: Path) -> None:
    # count() == to_arrow().num_rows in every mode, whole and in ranges of a
    # few bytes; two-column files keep skipping them (test above).
    for name, (text, _) in ONE_COLUMN.items():
        (tmp_path / name).write_bytes(text)
    (tmp_path / "blank.csv").write_bytes(b"\n\r\n\n")
    for part in ("1", "5", str(1 << 30)):
        with pt.Session("local[2]", conf={"csv.partition_bytes": part,
                                          "csv.cut_span_bytes": "1"}) as s:
            for name, (_, want) in ONE_COLUMN.items():
                for mode in ("FAILFAST", "PERMISSIVE", "DROPMALFORMED"):
                    ds = s.read_csv(tmp_path / name, header=True, mode=mode)
                    got = ds.to_arrow()
                    assert got.column("v").to_pylist() == want, (name, part, mode)
                    assert ds.count() == got.num_rows, (name, part, mode)
            # A file of blank lines only: one column (as DuckDB), each line a
            # null; with a header, the first line is the header.
            for header, rows in ((False, 3), (True, 2)):
                for mode in ("FAILFAST", "PERMISSIVE"):
                    ds = s.read_csv(tmp_path / "blank.csv", header=header, mode=mode)
                    got = ds.to_arrow()
                    assert got.num_columns == 1 and got.column(0).null_count == rows
                    assert ds.count() == got.num_rows == rows, (part, header, mode)
