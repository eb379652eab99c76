"""schema.py — schemas given as pyarrow objects or as DDL strings in Spark's
spelling ("id long, y double, tags array<string>"), so that code moving from
PySpark keeps its schema strings.
"""

from __future__ import annotations

import re
from typing import Union

import pyarrow as pa

SchemaLike = Union[pa.Schema, str]

_SIMPLE: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "bool": pa.bool_(),
    "tinyint": pa.int8(),
    "byte": pa.int8(),
    "smallint": pa.int16(),
    "short": pa.int16(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "long": pa.int64(),
    "float": pa.float32(),
    "real": pa.float32(),
    "double": pa.float64(),
    "string": pa.utf8(),
    "binary": pa.binary(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "timestamp_ntz": pa.timestamp("us"),
}

_TOKEN = re.compile(r"\s*(`[^`]*`|[A-Za-z_][A-Za-z0-9_]*|\d+|[<>(),:])")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[str] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m:
                raise ValueError(f"schema {text!r}: unexpected {text[pos:].strip()[:10]!r}")
            self.tokens.append(m.group(1))
            pos = m.end()
        self.i = 0

    def peek(self) -> str:
        return self.tokens[self.i] if self.i < len(self.tokens) else ""

    def take(self, expected: str = "") -> str:
        tok = self.peek()
        if not tok or (expected and tok.lower() != expected):
            want = f"{expected!r}" if expected else "more"
            raise ValueError(f"schema {self.text!r}: expected {want}, found {tok or 'the end'!r}")
        self.i += 1
        return tok

    def name(self) -> str:
        tok = self.take()
        return tok[1:-1] if tok.startswith("`") else tok

    def type(self) -> pa.DataType:
        word = self.take().lower()
        if word in _SIMPLE:
            return _SIMPLE[word]
        if word in ("decimal", "numeric"):
            precision, scale = 10, 0
            if self.peek() == "(":
                self.take("(")
                precision = int(self.take())
                if self.peek() == ",":
                    self.take(",")
                    scale = int(self.take())
                self.take(")")
            return pa.decimal128(precision, scale)
        if word == "array":
            self.take("<")
            inner = self.type()
            self.take(">")
            return pa.list_(inner)
        if word == "struct":
            self.take("<")
            fields = []
            while self.peek() != ">":
                name = self.name()
                if self.peek() == ":":
                    self.take(":")
                fields.append(self.field_rest(name))
                if self.peek() == ",":
                    self.take(",")
            self.take(">")
            return pa.struct(fields)
        known = ", ".join(sorted(_SIMPLE)) + ", decimal(p,s), array<T>, struct<name: T, ...>"
        raise ValueError(f"schema {self.text!r}: unknown type {word!r}; known: {known}")

    def field_rest(self, name: str) -> pa.Field:
        typ = self.type()
        nullable = True
        if self.peek().lower() == "not":
            self.take("not")
            self.take("null")
            nullable = False
        return pa.field(name, typ, nullable=nullable)

    def schema(self) -> pa.Schema:
        fields = []
        while self.peek():
            fields.append(self.field_rest(self.name()))
            if self.peek():
                self.take(",")
        if not fields:
            raise ValueError("schema '': a schema needs at least one column")
        return pa.schema(fields)


def parse_ddl(text: str) -> pa.Schema:
    """The pyarrow schema of a DDL string: "name type[ not null], ...",
    with Spark's type names (long, double, string, timestamp = timestamp[us,
    UTC], decimal(p,s), array<T>, struct<a: T, ...>). ValueError says where
    the text went wrong."""
    return _Parser(text).schema()


def as_schema(schema: object) -> pa.Schema:
    """A pyarrow schema from a pyarrow schema, a DDL string, or anything
    with __arrow_c_schema__."""
    if isinstance(schema, pa.Schema):
        return schema
    if isinstance(schema, str):
        return parse_ddl(schema)
    if hasattr(schema, "__arrow_c_schema__"):
        return pa.schema(schema)
    raise TypeError(
        f"a schema must be a pyarrow.Schema or a DDL string such as 'id long, y double', "
        f"not {type(schema).__name__}"
    )
