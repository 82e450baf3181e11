"""PostgreSQL columns as Arrow types, and their text values as typed Arrow arrays.

pgoutput (protocol 1) and ``COPY … (FORMAT csv)`` both send values in PostgreSQL's text output
format, so snapshots and changes share one conversion: strings in, one vectorised cast per column.
The sessions run with ``TimeZone=UTC``, ``DateStyle=ISO`` and ``bytea_output=hex`` so the text is
predictable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

BOOL, BYTEA, INT8, INT2, INT4, OID = 16, 17, 20, 21, 23, 26
FLOAT4, FLOAT8 = 700, 701
DATE, TIME, TIMESTAMP, TIMESTAMPTZ, NUMERIC = 1082, 1083, 1114, 1184, 1700

_FIXED: dict[int, pa.DataType] = {
    BOOL: pa.bool_(),
    BYTEA: pa.binary(),
    INT2: pa.int16(),
    INT4: pa.int32(),
    INT8: pa.int64(),
    OID: pa.int64(),
    FLOAT4: pa.float32(),
    FLOAT8: pa.float64(),
    DATE: pa.date32(),
    TIME: pa.time64("us"),
    TIMESTAMP: pa.timestamp("us"),
    TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
}

# The three columns every change carries, after the table's own.
OP, LSN, SEQ = "_gm_op", "_gm_lsn", "_gm_seq"
CHANGE_FIELDS = (pa.field(OP, pa.string()), pa.field(LSN, pa.int64()), pa.field(SEQ, pa.int64()))


@dataclass(frozen=True)
class Column:
    name: str
    """As spelled in PostgreSQL."""
    landed: str
    type_oid: int
    """The base type for a domain."""
    typmod: int

    @property
    def arrow_type(self) -> pa.DataType:
        return arrow_type(self.type_oid, self.typmod)


def arrow_type(type_oid: int, typmod: int) -> pa.DataType:
    """Arrow type of a PostgreSQL type; anything without a faithful mapping lands as text."""
    if type_oid == NUMERIC:
        # typmod = ((precision << 16) | scale) + 4, the scale an 11-bit signed number since PG 15;
        # unconstrained numeric (-1) has no fixed scale, so it stays text rather than be rounded.
        if typmod < 4:
            return pa.string()
        precision = ((typmod - 4) >> 16) & 0xFFFF
        scale = (((typmod - 4) & 0x7FF) ^ 0x400) - 0x400
        if 0 <= scale <= precision <= 38:
            return pa.decimal128(precision, scale)
        return pa.string()
    return _FIXED.get(type_oid, pa.string())


def schema(columns: Sequence[Column]) -> pa.Schema:
    return pa.schema([*(pa.field(c.landed, c.arrow_type) for c in columns), *CHANGE_FIELDS])


def typed(text: pa.Array, column: Column) -> pa.Array:
    """Cast one column of text values; raises pa.ArrowInvalid on a value that does not convert."""
    target = column.arrow_type
    if pa.types.is_string(target):
        return text
    if column.type_oid == BOOL:
        return pc.equal(text, "t")
    if column.type_oid == BYTEA:
        # hex output ("\x0a0b"); Arrow has no vectorised hex decoding and bytea columns are rare
        return pa.array([None if v is None else bytes.fromhex(v[2:]) for v in text.to_pylist()], pa.binary())
    if column.type_oid == TIME:
        # Arrow casts text to timestamps but not to times: parse as a time on the epoch day
        stamped = pc.binary_join_element_wise("1970-01-01 ", text, "")
        return stamped.cast(pa.timestamp("us")).cast(target)
    return text.cast(target)
