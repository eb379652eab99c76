"""A small Parquet file builder for tests: the forms pyarrow does not write
(legacy two-level lists, converted types without a LogicalType, BYTE_ARRAY
decimals, Hadoop-framed LZ4, BIT_PACKED levels) and hostile ones (LZO,
file_path, encrypted columns, decimals past 76 digits).

It holds a Thrift compact-protocol encoder for the structs of
parquet-format's parquet.thrift that a file needs (FileMetaData,
SchemaElement, LogicalType, RowGroup, ColumnChunk, ColumnMetaData,
PageHeader, DataPageHeader), and writes one row group of data pages v1,
PLAIN values and RLE levels, so that every byte of the file is known.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Optional, Sequence

import pyarrow as pa

# parquet.thrift enums.
BOOLEAN, INT32, INT64, INT96, FLOAT, DOUBLE, BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY = range(8)
REQUIRED, OPTIONAL, REPEATED = range(3)
UNCOMPRESSED, SNAPPY, GZIP, LZO, BROTLI, LZ4, ZSTD, LZ4_RAW = range(8)
PLAIN, RLE, BIT_PACKED = 0, 3, 4
# ConvertedType
UTF8, MAP, MAP_KEY_VALUE, LIST, ENUM, DECIMAL, DATE = range(7)
TIME_MILLIS, TIME_MICROS, TIMESTAMP_MILLIS, TIMESTAMP_MICROS = 7, 8, 9, 10
UINT_8, UINT_16, UINT_32, UINT_64, INT_8, INT_16, INT_32, INT_64 = range(11, 19)
JSON, BSON = 19, 20

# Thrift compact-protocol type ids.
T_TRUE, T_FALSE, T_BYTE, T_I16, T_I32, T_I64, T_DOUBLE, T_BINARY = range(1, 9)
T_LIST, T_SET, T_MAP, T_STRUCT = 9, 10, 11, 12


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


class Struct:
    """A Thrift struct being encoded: fields must be added in increasing id
    order (the compact protocol stores the id as a delta when it can)."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.last = 0

    def _head(self, fid: int, ttype: int) -> None:
        delta = fid - self.last
        if 0 < delta <= 15:
            self.out.append(delta << 4 | ttype)
        else:
            self.out.append(ttype)
            self.out += varint(zigzag(fid))
        self.last = fid

    def boolean(self, fid: int, v: bool) -> "Struct":
        self._head(fid, T_TRUE if v else T_FALSE)  # the value is the type
        return self

    def i32(self, fid: int, v: int) -> "Struct":
        self._head(fid, T_I32)
        self.out += varint(zigzag(v))
        return self

    def i64(self, fid: int, v: int) -> "Struct":
        self._head(fid, T_I64)
        self.out += varint(zigzag(v))
        return self

    def binary(self, fid: int, v: bytes | str) -> "Struct":
        if isinstance(v, str):
            v = v.encode()
        self._head(fid, T_BINARY)
        self.out += varint(len(v)) + v
        return self

    def struct(self, fid: int, s: "Struct") -> "Struct":
        self._head(fid, T_STRUCT)
        self.out += s.done()
        return self

    def list(self, fid: int, etype: int, items: Sequence[bytes]) -> "Struct":
        """items: each element already encoded for etype."""
        self._head(fid, T_LIST)
        n = len(items)
        self.out += bytes([n << 4 | etype]) if n < 15 else bytes([0xF0 | etype]) + varint(n)
        for it in items:
            self.out += it
        return self

    def done(self) -> bytes:
        return bytes(self.out) + b"\x00"


def _i32_item(v: int) -> bytes:
    return varint(zigzag(v))


def _bin_item(v: bytes | str) -> bytes:
    if isinstance(v, str):
        v = v.encode()
    return varint(len(v)) + v


# LogicalType union members (field ids of parquet.thrift's LogicalType).
LT_STRING, LT_MAP, LT_LIST, LT_ENUM, LT_DECIMAL, LT_DATE = 1, 2, 3, 4, 5, 6
LT_TIME, LT_UNKNOWN, LT_JSON, LT_BSON, LT_UUID, LT_FLOAT16 = 7, 11, 12, 13, 14, 15


def logical(kind: int, scale: int = 0, precision: int = 0, unit: str = "ms") -> Struct:
    s = Struct()
    if kind == LT_TIME:
        member = {"ms": 1, "us": 2, "ns": 3}[unit]  # TimeUnit's members
        s.struct(kind, Struct().boolean(1, False).struct(2, Struct().struct(member, Struct())))
    elif kind == LT_DECIMAL:
        s.struct(kind, Struct().i32(1, scale).i32(2, precision))
    else:
        s.struct(kind, Struct())
    return s


@dataclass
class Elem:
    """A SchemaElement."""

    name: str
    type: Optional[int] = None  # physical type; None for a group
    repetition: Optional[int] = None
    num_children: Optional[int] = None
    converted: Optional[int] = None
    type_length: Optional[int] = None
    scale: Optional[int] = None
    precision: Optional[int] = None
    logical: Optional[Struct] = None

    def encode(self) -> bytes:
        s = Struct()
        if self.type is not None:
            s.i32(1, self.type)
        if self.type_length is not None:
            s.i32(2, self.type_length)
        if self.repetition is not None:
            s.i32(3, self.repetition)
        s.binary(4, self.name)
        if self.num_children is not None:
            s.i32(5, self.num_children)
        if self.converted is not None:
            s.i32(6, self.converted)
        if self.scale is not None:
            s.i32(7, self.scale)
        if self.precision is not None:
            s.i32(8, self.precision)
        if self.logical is not None:
            s.struct(10, self.logical)
        return s.done()


def rle_levels(levels: Sequence[int], bit_width: int) -> bytes:
    """The RLE/bit-packed hybrid with RLE runs only (one per stretch of equal
    values), without the length prefix."""
    out = bytearray()
    nbytes = (bit_width + 7) // 8
    i = 0
    while i < len(levels):
        j = i
        while j < len(levels) and levels[j] == levels[i]:
            j += 1
        out += varint((j - i) << 1) + levels[i].to_bytes(nbytes, "little")
        i = j
    return bytes(out)


def bit_packed_levels(levels: Sequence[int], bit_width: int) -> bytes:
    """The deprecated BIT_PACKED encoding: values packed from the most
    significant bit of each byte down."""
    bits = "".join(format(v, f"0{bit_width}b") for v in levels)
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[k : k + 8], 2) for k in range(0, len(bits), 8))


def plain(ptype: int, values: Sequence, type_length: int = 0) -> bytes:
    """PLAIN values (non-null ones only)."""
    if ptype == INT32:
        return struct.pack(f"<{len(values)}i", *values)
    if ptype == INT64:
        return struct.pack(f"<{len(values)}q", *values)
    if ptype == DOUBLE:
        return struct.pack(f"<{len(values)}d", *values)
    if ptype == BYTE_ARRAY:
        return b"".join(struct.pack("<I", len(v)) + v for v in values)
    if ptype == FIXED_LEN_BYTE_ARRAY:
        assert all(len(v) == type_length for v in values)
        return b"".join(values)
    raise ValueError(f"plain: physical type {ptype}")


def hadoop_lz4(data: bytes) -> bytes:
    """Hadoop's LZ4 framing: per block, the uncompressed and compressed
    lengths as big-endian 32-bit integers, then an LZ4 block. Two blocks,
    so that the loop over them is exercised."""
    codec = pa.Codec("lz4_raw")
    half = len(data) // 2
    out = bytearray()
    for part in (data[:half], data[half:]):
        block = bytes(codec.compress(part))
        out += struct.pack(">II", len(part), len(block)) + block
    return bytes(out)


@dataclass
class Column:
    """One leaf column's chunk: its path, physical type, levels and values,
    and how the page is to be written."""

    path: list[str]
    ptype: int
    values: list  # the non-null values, in order
    def_levels: Optional[list[int]] = None
    rep_levels: Optional[list[int]] = None
    max_def: int = 0
    max_rep: int = 0
    type_length: int = 0
    codec: int = UNCOMPRESSED
    def_encoding: int = RLE
    rep_encoding: int = RLE
    encoding: int = PLAIN  # what the page header says of the values (PLAIN bytes)
    file_path: Optional[str] = None
    encrypted: bool = False

    def num_values(self) -> int:
        return len(self.def_levels) if self.def_levels is not None else len(self.values)

    def page_body(self) -> bytes:
        body = bytearray()
        width = lambda m: max(m, 1).bit_length()  # noqa: E731
        if self.max_rep > 0:
            if self.rep_encoding == BIT_PACKED:
                body += bit_packed_levels(self.rep_levels, width(self.max_rep))
            else:
                lv = rle_levels(self.rep_levels, width(self.max_rep))
                body += struct.pack("<I", len(lv)) + lv
        if self.max_def > 0:
            if self.def_encoding == BIT_PACKED:
                body += bit_packed_levels(self.def_levels, width(self.max_def))
            else:
                lv = rle_levels(self.def_levels, width(self.max_def))
                body += struct.pack("<I", len(lv)) + lv
        body += plain(self.ptype, self.values, self.type_length)
        return bytes(body)


def compress(codec: int, data: bytes) -> bytes:
    if codec == UNCOMPRESSED:
        return data
    if codec == LZ4:
        return hadoop_lz4(data)
    if codec == LZO:
        # No LZO library at hand; the reader must refuse the codec before
        # looking at the bytes.
        return data
    raise ValueError(f"compress: codec {codec}")


def build(schema: list[Elem], columns: list[Column], num_rows: int,
          kv: Optional[dict[str, str]] = None, encrypted_plaintext_footer: bool = False) -> bytes:
    """A whole file: PAR1, one row group of one data page per column, the
    footer, its length and PAR1. schema[0] is the root.
    encrypted_plaintext_footer: FileMetaData's encryption_algorithm set (an
    encrypted file whose footer is left readable)."""
    out = bytearray(b"PAR1")
    chunks = []
    for c in columns:
        raw = c.page_body()
        comp = compress(c.codec, raw)
        dph = (Struct().i32(1, c.num_values()).i32(2, c.encoding).i32(3, c.def_encoding).i32(4, c.rep_encoding))
        header = (Struct().i32(1, 0).i32(2, len(raw)).i32(3, len(comp)).struct(5, dph)).done()
        offset = len(out)
        out += header + comp
        meta = (
            Struct()
            .i32(1, c.ptype)
            .list(2, T_I32, [_i32_item(PLAIN), _i32_item(RLE)])
            .list(3, T_BINARY, [_bin_item(p) for p in c.path])
            .i32(4, c.codec)
            .i64(5, c.num_values())
            .i64(6, len(header) + len(raw))
            .i64(7, len(header) + len(comp))
            .i64(9, offset)
        )
        cc = Struct()
        if c.file_path is not None:
            cc.binary(1, c.file_path)
        cc.i64(2, offset).struct(3, meta)
        if c.encrypted:
            # ColumnCryptoMetaData: the union member ENCRYPTION_WITH_FOOTER_KEY.
            cc.struct(8, Struct().struct(1, Struct()))
        chunks.append(cc.done())
        del raw
    rg = Struct().list(1, T_STRUCT, chunks).i64(2, len(out) - 4).i64(3, num_rows)
    fm = (
        Struct()
        .i32(1, 1)
        .list(2, T_STRUCT, [e.encode() for e in schema])
        .i64(3, num_rows)
        .list(4, T_STRUCT, [rg.done()])
    )
    if kv:
        fm.list(5, T_STRUCT, [Struct().binary(1, k).binary(2, v).done() for k, v in kv.items()])
    fm.binary(6, "protium tests pq_builder")
    if encrypted_plaintext_footer:
        # EncryptionAlgorithm: the union member AES_GCM_V1, its fields left out.
        fm.struct(8, Struct().struct(1, Struct()))
    footer = fm.done()
    out += footer + struct.pack("<I", len(footer)) + b"PAR1"
    return bytes(out)


def root(n: int) -> Elem:
    return Elem("schema", num_children=n)


def levels_of(rows: list[Optional[list]], *, optional_list: bool) -> tuple[list, list, list]:
    """Levels and values of one list column whose elements are required:
    rows are lists, or None (only when optional_list). Returns (def, rep,
    values) with max_def = 1 + optional_list."""
    d, r, vals = [], [], []
    full = 1 + int(optional_list)
    for row in rows:
        if row is None:
            d.append(0)
            r.append(0)
        elif not row:
            d.append(full - 1)
            r.append(0)
        else:
            for k, v in enumerate(row):
                d.append(full)
                r.append(0 if k == 0 else 1)
                vals.append(v)
    return d, r, vals
