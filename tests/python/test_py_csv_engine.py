"""Session.read_csv and Dataset.write_csv on real executors, with pyarrow.csv
and pandas as the references: a file cut into many partitions at record
starts (quoted newlines, doubled quotes, commas in fields) gives the same
table as pyarrow.csv reading it whole; what write_csv commits reads back in
pyarrow and pandas as the same rows; a malformed record names its line."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import protium as pt
from test_csv_read import reference, sample


@pytest.fixture(scope="module")
def session():
    # Partitions of 16 KB: the 2,000-record sample (~250 KB) becomes about 16.
    with pt.Session("local[2]", conf={"csv.partition_bytes": "16384"}) as s:
        yield s


def with_row_ids(text: bytes) -> bytes:
    """The sample with an id column first, so rows can be matched."""
    head, _, body = text.partition(b"\n")
    out, rid, quoted = [b"id," + head + b"\n", b"0,"], 1, False
    for i, c in enumerate(body):
        out.append(bytes([c]))
        if c == ord('"'):
            quoted = not quoted
        elif c == ord("\n") and not quoted and i + 1 < len(body):
            out.append(b"%d," % rid)
            rid += 1
    return b"".join(out)


def test_read_matches_pyarrow_whole(session, tmp_path: Path) -> None:
    text = with_row_ids(sample(2000, 7))
    path = tmp_path / "events.csv"
    path.write_bytes(text)
    ds = session.read_csv(path, header=True)
    assert ds.num_partitions >= 10
    got = ds.to_arrow().sort_by("id")
    want = reference(text)
    want = want.set_column(5, "ts", want.column("ts").cast(pa.timestamp("us")))
    assert got.schema == want.schema
    assert got.num_rows == 2000
    assert got.equals(want)


def test_read_matches_pandas_with_schema(session, tmp_path: Path) -> None:
    rng = random.Random(5)
    df = pd.DataFrame({
        "id": range(3000),
        "x": [rng.uniform(-1e3, 1e3) for _ in range(3000)],
        "s": [rng.choice(["a", "b,c", 'say "hi"', "two\nlines"]) for _ in range(3000)],
    })
    for k in range(3):
        df.iloc[k * 1000:(k + 1) * 1000].to_csv(tmp_path / f"part-{k}.csv", index=False)
    ds = session.read_csv(tmp_path, header=True, schema="id long, x double, s string")
    got = ds.to_pandas().sort_values("id").reset_index(drop=True)
    want = pd.concat([pd.read_csv(tmp_path / f"part-{k}.csv") for k in range(3)],
                     ignore_index=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_failfast_names_the_line(session, tmp_path: Path) -> None:
    lines = ["a,b"] + [f"{i},{i}" for i in range(2000)]
    lines[1500] = "1499,oops"
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    ds = session.read_csv(tmp_path / "bad.csv", header=True, schema="a long, b long")
    with pytest.raises(pt.TaskError, match=r"bad.csv: line 1501: malformed record: column 1 "
                                           r"\(b\): cannot read 'oops' as int64"):
        ds.to_arrow()
    # count() checks each record's structure only, converting no value.
    assert ds.count() == 2000
    ok = session.read_csv(tmp_path / "bad.csv", header=True, schema="a long, b long",
                          mode="PERMISSIVE", corrupt_column="_corrupt")
    t = ok.to_arrow()
    assert t.num_rows == 2000
    assert t.column("_corrupt").drop_null().to_pylist() == ["1499,oops"]
    with pytest.raises(ValueError, match="mode must be one of"):
        session.read_csv(tmp_path / "bad.csv", mode="LENIENT")


def test_write_reads_back_in_pyarrow_and_pandas(session, tmp_path: Path) -> None:
    text = with_row_ids(sample(1500, 11))
    (tmp_path / "in.csv").write_bytes(text)
    ds = session.read_csv(tmp_path / "in.csv", header=True)
    out = tmp_path / "out"
    ds.write_csv(out)
    parts = sorted(p for p in os.listdir(out) if p.startswith("part-"))
    assert len(parts) == ds.num_partitions
    assert (out / "_SUCCESS").exists()
    want = ds.to_arrow().sort_by("id")
    got = pa.concat_tables([reference((out / p).read_bytes()).select(want.schema.names)
                            for p in parts if (out / p).stat().st_size > 0])
    got = got.set_column(5, "ts", got.column("ts").cast(pa.timestamp("us")))
    got = got.cast(want.schema).sort_by("id")
    assert got.equals(want)
    frames = [pd.read_csv(out / p, keep_default_na=False, na_values=[""]) for p in parts]
    assert sorted(pd.concat(frames)["id"]) == list(range(1500))
    with pytest.raises(pt.ProtiumError, match="is not empty"):
        ds.write_csv(out)


def test_write_options(session, tmp_path: Path) -> None:
    ds = session.from_arrow(pa.table({"a": [1, 2], "b": ["x", "y;z"]}), partitions=1)
    ds.write_csv(tmp_path / "o", header=False, delimiter=";")
    assert (tmp_path / "o" / "part-00000.csv").read_text() == '1;x\n2;"y;z"\n'
    back = pacsv.read_csv(io.BytesIO(b"a;b\n" + (tmp_path / "o" / "part-00000.csv").read_bytes()),
                          parse_options=pacsv.ParseOptions(delimiter=";"))
    assert back.to_pylist() == [{"a": 1, "b": "x"}, {"a": 2, "b": "y;z"}]


def test_default_split_gives_every_slot_a_partition(tmp_path: Path) -> None:
    # Without csv.partition_bytes set, a file of ~10 MB on local[2] is cut in
    # two (Spark's rule: the bytes over the slots, not under 4 MiB), and a
    # small one stays whole; so does one of ~6 MB, whose halves would be
    # under 4 MiB.
    text = sample(2000, 9)
    big, mid, small = tmp_path / "big.csv", tmp_path / "mid.csv", tmp_path / "small.csv"
    head, _, body = text.partition(b"\n")
    big.write_bytes(head + b"\n" + body * 65)
    mid.write_bytes(head + b"\n" + body * 40)
    small.write_bytes(text)
    assert big.stat().st_size > 8 << 20 and 4 << 20 < mid.stat().st_size < 8 << 20
    with pt.Session("local[2]") as s:
        ds = s.read_csv(big, header=True)
        assert ds.num_partitions == 2
        assert ds.count() == 2000 * 65
        assert s.read_csv(mid, header=True).num_partitions == 1
        assert s.read_csv(small, header=True).num_partitions == 1


def test_failfast_line_in_a_later_chunk(tmp_path: Path) -> None:
    # One partition of ~14 MB is parsed 4 MiB at a time; each chunk carries
    # on the line count of the one before, quoted newlines included.
    lines = ["a,b,c"] + [f'{i},{i},"x\ny"' if i % 7 == 0 else f"{i},{i},z"
                         for i in range(1_200_000)]
    lines[1_100_001] = "1100000,oops,z"
    text = "\n".join(lines) + "\n"
    line = text[: text.index("1100000,oops")].count("\n") + 1
    (tmp_path / "bad.csv").write_text(text)
    with pt.Session("local[1]", conf={"csv.partition_bytes": str(1 << 30)}) as s:
        ds = s.read_csv(tmp_path / "bad.csv", header=True, schema="a long, b string, c string")
        assert ds.num_partitions == 1
        assert ds.count() == 1_200_000
        ds = s.read_csv(tmp_path / "bad.csv", header=True, schema="a long, b long, c string")
        with pytest.raises(pt.TaskError, match=rf"bad.csv: line {line}: malformed record: "
                                               r"column 1 \(b\): cannot read 'oops'"):
            ds.to_arrow()


def quoted_text(n: int, seed: int, crlf: bool) -> bytes:
    """Records whose quoted fields hold newlines, CRLF, doubled quotes and
    delimiters, some long enough to cross a 64-byte block, with \\n or (crlf)
    mixed line ends."""
    rng = random.Random(seed)
    out = [b"id,s,t\r\n" if crlf else b"id,s,t\n"]
    for i in range(n):
        parts = []
        for _ in range(2):
            k = rng.randrange(6)
            v = ["w%d" % i, "a\nb", "x\r\ny", 'q""q', "c,d\n\ne", "L" + "z\n," * rng.randrange(20, 60)][k]
            parts.append(b'"' + v.encode() + b'"')
        end = b"\r\n" if crlf and rng.random() < 0.5 else b"\n"
        out.append(b"%d," % i + b",".join(parts) + end)
    return b"".join(out)


@pytest.mark.parametrize("crlf", [False, True])
def test_cuts_on_many_spans_match_pyarrow(tmp_path: Path, crlf: bool) -> None:
    # The driver finds the record start at each cut by one scan shared by
    # threads over spans of csv.cut_span_bytes; with spans of a few KB and
    # ranges of a few KB, cuts and span edges fall inside quoted newlines,
    # on quotes and between \r and \n, in many places.
    text = quoted_text(6000, 11, crlf)
    path = tmp_path / "q.csv"
    path.write_bytes(text)
    want = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True))
    for part, span in [(3001, 1), (7919, 4096), (65536, 333), (1 << 30, 1)]:
        conf = {"csv.partition_bytes": str(part), "csv.cut_span_bytes": str(span)}
        with pt.Session("local[2]", conf=conf) as s:
            ds = s.read_csv(path, header=True)
            assert ds.num_partitions >= min(len(text) // part, 8)
            got = ds.to_arrow()
            assert got.equals(want), (part, span)


def test_file_smaller_than_a_range(tmp_path: Path) -> None:
    text = b'a,b\n1,"x\ny"\n2,"z"'
    (tmp_path / "s.csv").write_bytes(text)
    with pt.Session("local[2]", conf={"csv.partition_bytes": "5",
                                      "csv.cut_span_bytes": "1"}) as s:
        got = s.read_csv(tmp_path / "s.csv", header=True).to_arrow()
    want = pacsv.read_csv(io.BytesIO(text),
                          parse_options=pacsv.ParseOptions(newlines_in_values=True))
    assert got.equals(want)


def test_failfast_line_past_many_spans(tmp_path: Path) -> None:
    # The line a range starts on comes from the shared scan's newline counts.
    text = quoted_text(3000, 5, True)
    bad = text.index(b"\n2500,") + 1
    text = text[:bad] + b"oops" + text[bad + 4:]
    line = text[:bad].count(b"\n") + 1
    (tmp_path / "bad.csv").write_bytes(text)
    with pt.Session("local[2]", conf={"csv.partition_bytes": "4096",
                                      "csv.cut_span_bytes": "1000"}) as s:
        ds = s.read_csv(tmp_path / "bad.csv", header=True, schema="id long, s string, t string")
        assert ds.num_partitions > 8
        with pytest.raises(pt.TaskError, match=rf"bad.csv: line {line}: malformed record: "
                                               r"column 0 \(id\): cannot read 'oops'"):
            ds.to_arrow()
