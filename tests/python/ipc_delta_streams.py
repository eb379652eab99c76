"""ipc_delta_streams.py — IPC streams whose dictionary deltas join parts of
unions, string/binary views, list views and run-end encoded arrays: the
dictionary values are lists (or maps) of such arrays, and the list offsets of
both dictionary batches are rewritten to start past 0 (and, in the first, to
end before the child does), so that a reader must join a range of each child
rather than whole arrays. pyarrow (or protium) writes the streams, pyarrow
reads them back as the reference; no writer makes such offsets on its own,
the format allows them.

Run as a script, it writes the fuzz seeds of tests/fuzz/corpus/ipc/ made from
them: python tests/python/ipc_delta_streams.py tests/fuzz/corpus/ipc
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pyarrow as pa

# union_dict: a sparse union of int64 and dictionary-encoded strings (one
# dictionary whatever n), which pyarrow writes as replacements, not deltas.
KINDS = ["sparse_union", "dense_union", "string_view", "binary_view", "list_view",
         "large_list_view", "ree16", "ree32", "ree64"]
CONTAINERS = ["list", "large_list", "map"]
# The fuzz seeds: every kind in a list, and a map and a large list.
SEEDS = [(k, "list") for k in KINDS] + [("dense_union", "map"), ("string_view", "large_list")]


def inner(kind: str, n: int) -> pa.Array:
    """n values of kind, with nulls; value k is the same whatever n, so that
    a longer dictionary extends a shorter one (what makes a delta)."""
    if kind == "sparse_union":
        return pa.UnionArray.from_sparse(
            pa.array([k % 3 % 2 for k in range(n)], pa.int8()),
            [pa.array([None if k % 5 == 4 else k for k in range(n)], pa.int64()),
             pa.array([f"w{k}" if k % 4 else None for k in range(n)])],
            ["i", "s"], [0, 1])
    if kind == "union_dict":
        words = pa.array([f"x{k}" for k in range(8)])
        codes = pa.array([k % 8 if k % 3 else None for k in range(n)], pa.int16())
        return pa.UnionArray.from_sparse(
            pa.array([k % 2 for k in range(n)], pa.int8()),
            [pa.array(range(n), pa.int64()), pa.DictionaryArray.from_arrays(codes, words)],
            ["i", "d"], [0, 1])
    if kind == "dense_union":
        ids = [k % 3 % 2 for k in range(n)]
        offsets, used = [], [0, 0]
        for t in ids:
            offsets.append(used[t])
            used[t] += 1
        return pa.UnionArray.from_dense(
            pa.array(ids, pa.int8()), pa.array(offsets, pa.int32()),
            [pa.array([None if k % 4 == 3 else 10 * k for k in range(used[0])], pa.int64()),
             pa.array([f"a string longer than twelve {k}" for k in range(used[1])])],
            ["i", "s"], [0, 1])
    if kind in ("string_view", "binary_view"):
        words = [None if k % 6 == 5 else (f"short{k}" if k % 2 else f"out of line value {k}")
                 for k in range(n)]
        if kind == "binary_view":
            return pa.array([w.encode() if w else None for w in words], pa.binary_view())
        return pa.array(words, pa.string_view())
    if kind in ("list_view", "large_list_view"):
        cls = pa.ListViewArray if kind == "list_view" else pa.LargeListViewArray
        index = pa.int32() if kind == "list_view" else pa.int64()
        # Ranges out of order and overlapping, empty ones, null rows.
        offsets = [(4 - k) % 5 for k in range(n)]
        sizes = [0 if k % 4 == 1 else k % 3 for k in range(n)]
        return cls.from_arrays(pa.array(offsets, index), pa.array(sizes, index),
                               pa.array([7, None, 9, 10, 11, 12], pa.int16()),
                               mask=pa.array([k % 4 == 3 for k in range(n)]))
    width = {"ree16": pa.int16(), "ree32": pa.int32(), "ree64": pa.int64()}[kind]
    ends = list(range(2, n, 2)) + [n]
    return pa.RunEndEncodedArray.from_arrays(
        pa.array(ends, width),
        pa.array([None if r % 3 == 2 else f"run{r}" for r in range(len(ends))]))


def container(kind: str, cont: str, counts: list[int]) -> pa.Array:
    """A list (or map with int32 keys) per count, over values of kind."""
    offsets = [0]
    for c in counts:
        offsets.append(offsets[-1] + c)
    values = inner(kind, offsets[-1])
    if cont == "list":
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)
    if cont == "large_list":
        return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), values)
    keys = pa.array(range(offsets[-1]), pa.int32())
    return pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), keys, values)


def batches(kind: str, cont: str) -> list[pa.RecordBatch]:
    """Two batches of a column "d", dictionary-encoded with values
    container(kind, cont, ...): the second batch's dictionary has one list
    more, which a writer sends as a delta."""
    d1 = container(kind, cont, [3, 4])
    d2 = container(kind, cont, [3, 4, 4])
    return [
        pa.record_batch([pa.DictionaryArray.from_arrays(pa.array(idx, pa.int8()), d)], ["d"])
        for idx, d in (([0, 1, None], d1), ([2, 0, 1, 2], d2))
    ]


def patch_offsets(data: bytes, cont: str) -> bytes:
    """The stream of batches() with the first dictionary's offsets 0 3 7
    (over 7 child values) made 1 3 6 and the delta's 0 4 made 1 4: the
    children's first values, and the first dictionary's last, belong to no
    list."""
    messages = list(pa.ipc.MessageReader.open_stream(data))
    types = [m.type for m in messages]
    # Each batch's outer dictionary comes right before it (inner ones first).
    first, second = [i - 1 for i, t in enumerate(types) if t == "record batch"]
    assert types[first] == types[second] == "dictionary", types
    raw = [bytearray(m.serialize()) for m in messages]
    fmt = "<%dq" if cont == "large_list" else "<%di"

    def patch(k: int, old: list[int], new: list[int]) -> None:
        # The lists have no nulls, so their offsets are the body's first buffer.
        start = len(raw[k]) - messages[k].body.size
        o, n = struct.pack(fmt % len(old), *old), struct.pack(fmt % len(new), *new)
        assert raw[k][start:start + len(o)] == o, (cont, old)
        raw[k][start:start + len(o)] = n

    patch(first, [0, 3, 7], [1, 3, 6])
    patch(second, [0, 4], [1, 4])
    return b"".join(raw) + b"\xff\xff\xff\xff\x00\x00\x00\x00"


def stream(kind: str, cont: str) -> bytes:
    """pyarrow's stream of batches(kind, cont), through patch_offsets."""
    bs = batches(kind, cont)
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(emit_dictionary_deltas=True)
    with pa.ipc.new_stream(sink, bs[0].schema, options=options) as writer:
        for b in bs:
            writer.write_batch(b)
    return patch_offsets(sink.getvalue().to_pybytes(), cont)


def expected_dictionaries(kind: str, cont: str) -> tuple[list, list]:
    """The values of the patched stream's two dictionaries, built apart from
    any reader: the first 2 lists, then those and the delta's 1."""
    def lists(offsets: list[int], values: pa.Array) -> pa.Array:
        if cont == "large_list":
            return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), values)
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)

    assert cont != "map"
    first = lists([1, 3, 6], inner(kind, 7)).to_pylist()
    return first, first + lists([1, 4], inner(kind, 11).slice(7)).to_pylist()


def seed_name(kind: str, cont: str) -> str:
    return f"dict_delta_parts_{cont}_{kind}_stream.arrow"


if __name__ == "__main__":
    out = Path(sys.argv[1])
    for kind, cont in SEEDS:
        (out / seed_name(kind, cont)).write_bytes(stream(kind, cont))
