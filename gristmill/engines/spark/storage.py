"""Names and types at the spark engine's boundary: the Hive metastore's databases and tables,
Arrow batches as Spark takes them, and Spark's types as sqlglot ``DataType``.

The Hive metastore lowercases names and takes only letters, digits and ``_``: a schema or table
name with other characters is spelled with those replaced and a short hash of the original (the
ledger keeps the original, so listings give it back)."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from gristmill.sql import types

if TYPE_CHECKING:
    import pyarrow as pa

_PLAIN = re.compile(r"^[a-z0-9_]+$")
_LONGEST = 100
"""Longest spelled name: storage names add ``_gm_`` and 13 characters, within Hive's 128."""
STORAGE_PREFIX = "_gm_"


def spelled(name: str) -> str:
    """``name`` as the metastore can hold it: lowercased when that is all it needs, else its
    letters and digits with a hash of the original (two names never meet)."""
    lowered = name.lower()
    if _PLAIN.match(lowered) and len(lowered) <= _LONGEST:
        return lowered
    plain = re.sub(r"[^a-z0-9_]+", "_", lowered.encode("ascii", "ignore").decode()).strip("_")
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{plain[: _LONGEST - 10]}_{digest}".lstrip("_") or digest


def storage_name(name: str) -> str:
    """A new storage table's name for relation ``name`` (random: another process may write
    beside it)."""
    return f"{STORAGE_PREFIX}{spelled(name)[:80]}_{uuid.uuid4().hex[:12]}"


def ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="spark")


def qualified(db: str, name: str) -> str:
    return f"{ident(db)}.{ident(name)}"


# -- Arrow into Spark -------------------------------------------------------------------------------


def sparkable(schema: pa.Schema) -> tuple[pa.Schema, dict[str, str]]:
    """The Arrow schema Spark's ``createDataFrame`` takes for ``schema``, and the Spark type each
    column is cast to once landed (a timestamp without time zone arrives as Spark's TIMESTAMP
    and is cast back to TIMESTAMP_NTZ). Unsigned integers widen to the next signed type (UINT64 to
    DECIMAL(20,0)); dictionary columns are decoded; DATE64 is DATE."""
    import pyarrow as pa

    fields = []
    casts: dict[str, str] = {}
    for field in schema:
        new, cast = _sparkable(field.type)
        fields.append(pa.field(field.name, new, field.nullable))
        if cast is not None:
            casts[field.name] = cast
    return pa.schema(fields), casts


def _sparkable(dtype: pa.DataType) -> tuple[pa.DataType, str | None]:
    import pyarrow as pa

    if pa.types.is_dictionary(dtype):
        return _sparkable(dtype.value_type)
    widened = {
        pa.uint8(): pa.int16(),
        pa.uint16(): pa.int32(),
        pa.uint32(): pa.int64(),
        pa.uint64(): pa.decimal128(20, 0),
        pa.date64(): pa.date32(),
        pa.large_string(): pa.string(),
        pa.large_binary(): pa.binary(),
    }
    if dtype in widened:
        return widened[dtype], None
    if pa.types.is_timestamp(dtype):
        if dtype.tz is None:
            return pa.timestamp("us"), "TIMESTAMP_NTZ"
        return pa.timestamp("us", "UTC"), None
    if pa.types.is_time(dtype):
        return pa.time64("us"), None
    if pa.types.is_large_list(dtype) or pa.types.is_list(dtype):
        inner, _ = _sparkable(dtype.value_type)
        # A list of naive timestamps stays TIMESTAMP: a nested cast is not worth its cost here.
        return pa.list_(inner), None
    if pa.types.is_struct(dtype):
        return pa.struct([pa.field(f.name, _sparkable(f.type)[0], f.nullable) for f in dtype]), None
    if pa.types.is_map(dtype):
        return pa.map_(_sparkable(dtype.key_type)[0], _sparkable(dtype.item_type)[0]), None
    return dtype, None


# -- Spark types as sqlglot -------------------------------------------------------------------------


def spark_type_text(dtype: Any) -> str:
    """A pyspark ``DataType`` as Spark SQL spells it, struct field names quoted (simpleString
    leaves them bare)."""
    from pyspark.sql import types as st

    if isinstance(dtype, st.StructType):
        inner = ",".join(f"{ident(f.name)}:{spark_type_text(f.dataType)}" for f in dtype.fields)
        return f"struct<{inner}>"
    if isinstance(dtype, st.ArrayType):
        return f"array<{spark_type_text(dtype.elementType)}>"
    if isinstance(dtype, st.MapType):
        return f"map<{spark_type_text(dtype.keyType)},{spark_type_text(dtype.valueType)}>"
    return str(dtype.simpleString())


def data_type(text: str) -> exp.DataType:
    """A Spark type name as a sqlglot ``DataType`` (void, Spark's type of NULL, as NULL)."""
    if text == "void":
        return exp.DataType.build("NULL")
    return types.parse(text, "spark")
