"""Read MongoDB collections with pymongo, one server batch at a time, each batch converted to Arrow."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote

import bson
import pyarrow as pa
import pyarrow.compute as pc
import pymongo
import pymongo.errors
from bson import json_util
from bson.binary import Binary, UuidRepresentation
from bson.codec_options import CodecOptions, TypeDecoder, TypeRegistry
from pymongo.collection import Collection
from pymongo.database import Database

from gristmill._util.naming import snake_case
from gristmill._util.suggest import did_you_mean
from gristmill.config.secrets import redact, resolve
from gristmill.connectors.arrowbatches import (
    ARROW_ERRORS,
    extra_fields,
    fails,
    field_values,
    first_failure,
    landed_names,
    widen,
)
from gristmill.connectors.base import parse_options
from gristmill.connectors.mongodb.config import MongoSourceOptions, MongoTableOptions
from gristmill.errors import ConfigError, SourceError, TransientSourceError
from gristmill.project.specs import SourceSpec, SourceTable

_SELECTION_TIMEOUT_MS = 10_000  # pymongo waits 30 s for an unreachable server by default
_EXTENDED_JSON = {"$oid", "$date", "$numberDecimal", "$numberLong", "$numberInt", "$numberDouble", "$uuid"}
_JSON = json_util.JSONOptions(tz_aware=True, tzinfo=dt.UTC)
_USERINFO = re.compile(r"^(mongodb(?:\+srv)?://)([^@/]*)@")


class _Decode(TypeDecoder):
    """A BSON value Arrow cannot infer, made plain inside pymongo's C decoder (no Python walk)."""

    def __init__(self, bson_type: type, convert: Callable[[Any], Any]) -> None:
        self._type = bson_type
        self._convert = convert

    @property
    def bson_type(self) -> type:
        return self._type

    def transform_bson(self, value: Any) -> Any:
        return self._convert(value)


def _dbref(ref: bson.DBRef) -> dict[str, Any]:
    return {"collection": ref.collection, "id": str(ref.id), "database": ref.database}


CODEC: CodecOptions[dict[str, Any]] = CodecOptions(
    tz_aware=True,  # BSON dates are UTC instants: they land as timestamp[us, tz=UTC]
    tzinfo=dt.UTC,
    uuid_representation=UuidRepresentation.STANDARD,
    type_registry=TypeRegistry(
        [
            _Decode(bson.ObjectId, str),
            _Decode(bson.Decimal128, bson.Decimal128.to_decimal),
            _Decode(bson.Timestamp, bson.Timestamp.as_datetime),
            _Decode(bson.Regex, lambda regex: regex.pattern),
            _Decode(bson.Code, str),
            _Decode(bson.DBRef, _dbref),
            _Decode(uuid.UUID, str),  # Arrow infers no UUID inside a struct
            _Decode(Binary, bytes),  # other subtypes than 0 (which decodes to bytes already)
        ]
    ),
)


def to_arrow(documents: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
    """Documents as one record batch, names as in the documents.

    ObjectId and UUID → string, date → timestamp (UTC), Decimal128 → decimal128, embedded
    documents → struct, arrays → list; a field missing from a document is null."""
    return _batch(
        bson.decode_all(b"".join(bson.encode(d, codec_options=CODEC) for d in documents), CODEC),
        "documents",
        0,
    )


def build_query(
    options: MongoTableOptions, cursor_field: str | None, since: Any
) -> tuple[dict[str, Any], dict[str, Any] | None, list[tuple[str, int]] | None]:
    """The filter, projection and sort for a table; with ``since``, only documents at or past it."""
    query = _extended(options.filter)
    projection = options.projection
    if isinstance(projection, list):
        projection = {field: 1 for field in projection} | ({} if "_id" in projection else {"_id": 0})
    if cursor_field is None:
        return query, projection, None
    if since is not None:
        bound: dict[str, Any] = {cursor_field: {"$gte": _bson_value(since)}}
        if isinstance(since, str) and len(since) == 24 and bson.ObjectId.is_valid(since):
            # _id lands as its hex string; BSON compares within a type, so ask for both spellings
            bound = {"$or": [bound, {cursor_field: {"$gte": bson.ObjectId(since)}}]}
        query = {"$and": [query, bound]} if query else bound
    return query, projection, [(cursor_field, pymongo.ASCENDING)]


class Source:
    def __init__(self, spec: SourceSpec, root: Path) -> None:
        self.spec = spec
        self.root = root
        self.options = parse_options(MongoSourceOptions, spec.options, spec.where())
        self.tables = {key: _table_options(table) for key, table in spec.tables.items()}
        self._client: pymongo.MongoClient[dict[str, Any]] | None = None
        self._db: Database[dict[str, Any]] | None = None
        self._url = ""
        self._collections: list[str] | None = None
        self._cursor_fields: dict[str, str] = {}

    # -- the protocol ------------------------------------------------------------------------------

    def schema(self, table: SourceTable) -> pa.Schema:
        """The schema of the first batch: one query limited to ``batch_size`` documents.

        The cursor is not kept for read(): a server drops idle cursors after ten minutes, and a
        run may well build other steps for longer than that before this one."""
        stream = self._open(table, None, limit=True)
        stream.close()
        return stream.schema

    def read(self, table: SourceTable, since: Any = None) -> pa.RecordBatchReader:
        stream = self._open(table, since if table.load.incremental is not None else None)
        return pa.RecordBatchReader.from_batches(stream.schema, stream.batches())

    def change_marker(self, table: SourceTable) -> str | None:
        return None  # a collection has no cheap version stamp: always reload

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = self._db = None

    # -- the server --------------------------------------------------------------------------------

    @property
    def database(self) -> Database[dict[str, Any]]:
        if self._db is None:
            self._db = self._connect()
        return self._db

    def _connect(self) -> Database[dict[str, Any]]:
        where = self.spec.where("connection")
        self._url = resolve(self.options.connection, base=self.root, where=where)
        extra: dict[str, Any] = {}
        if "serverselectiontimeoutms" not in self._url.lower():
            extra["serverSelectionTimeoutMS"] = _SELECTION_TIMEOUT_MS
        try:
            self._client = pymongo.MongoClient(self._url, appname="gristmill", **extra)
        except (pymongo.errors.ConfigurationError, pymongo.errors.InvalidURI) as err:
            raise ConfigError(
                f"connection {self._shown()}: {self._clean(str(err))}", location=where
            ) from None
        if self.options.database is not None:
            return self._client.get_database(self.options.database, codec_options=CODEC)
        try:
            return self._client.get_default_database(codec_options=CODEC)
        except pymongo.errors.ConfigurationError:
            raise ConfigError(
                "no database named",
                location=self.spec.where(),
                hint="set database: or put it in the connection's path (mongodb://host/shop)",
            ) from None

    def _collection(self, table: SourceTable) -> Collection[dict[str, Any]]:
        name = self.tables[table.key].collection or table.key
        if self._collections is None:
            try:
                with self._guard(self.spec.file):
                    self._collections = self.database.list_collection_names()
            except SourceError as err:
                if isinstance(err, TransientSourceError):
                    raise
                self._collections = []  # not allowed to list: the read itself will tell
        if self._collections and name not in self._collections:
            raise ConfigError(
                f'database "{self.database.name}" has no collection "{name}"',
                location=self._where(table, "collection"),
                hint=did_you_mean(name, self._collections)
                or "collections: " + ", ".join(sorted(self._collections)),
            )
        return self.database[name]

    def _cursor_field(self, table: SourceTable) -> str | None:
        """The source field behind the incremental cursor (a landed, snake_case name)."""
        incremental = table.load.incremental
        if incremental is None:
            return None
        options = self.tables[table.key]
        if options.cursor_field is not None:
            return options.cursor_field
        if table.key not in self._cursor_fields:
            if isinstance(options.projection, list):
                fields = options.projection
            else:
                with self._guard(self._what(table)):
                    sample = self._collection(table).find_one(_extended(options.filter), options.projection)
                fields = list(sample or {})
            found = [f for f in fields if f == incremental.cursor] or [
                f for f in fields if snake_case(f) == incremental.cursor
            ]
            if not found and isinstance(options.projection, list):
                raise ConfigError(
                    f'incremental cursor "{incremental.cursor}" is not in projection',
                    location=self._where(table, "projection"),
                    hint="add the field to projection, or name it with cursor_field:",
                )
            self._cursor_fields[table.key] = found[0] if found else incremental.cursor
        return self._cursor_fields[table.key]

    def _open(self, table: SourceTable, since: Any, *, limit: bool = False) -> _Stream:
        options = self.tables[table.key]
        try:
            query = build_query(options, self._cursor_field(table), since)
        except (ValueError, TypeError, bson.errors.BSONError) as err:
            raise ConfigError(f"filter: {err}", location=self._where(table, "filter")) from None
        size = options.batch_size or self.options.batch_size
        what = self._what(table)
        return _Stream(what, self._batches(table, query, size, what, size if limit else 0), since)

    def _batches(
        self, table: SourceTable, query: tuple[Any, Any, Any], size: int, what: str, limit: int
    ) -> Iterator[pa.RecordBatch]:
        collection = self._collection(table)
        where, projection, sort = query
        # Raw batches: one server reply at a time, decoded by pymongo's C decoder with CODEC.
        cursor = collection.find_raw_batches(
            where,
            projection,
            sort=sort,
            batch_size=size,
            limit=limit,
            **({"allow_disk_use": True} if sort else {}),
        )
        with self._guard(what), cursor:  # closing the stream early closes the server cursor too
            for index, raw in enumerate(cursor):
                documents = bson.decode_all(cast(bytes, raw), CODEC)
                if documents:
                    yield _batch(documents, what, index)

    # -- messages ----------------------------------------------------------------------------------

    def _what(self, table: SourceTable) -> str:
        options = self.tables[table.key]
        return f"{self.spec.file} ({table.key}): {options.collection or table.key}"

    def _where(self, table: SourceTable, key: str) -> str:
        line = getattr(table.options, "key_lines", {}).get(key)
        return f"{self.spec.file}:{line}" if line else table.location

    def _shown(self) -> str:
        """Where the source connects, fit to show: the URI without password or options, else its hosts."""
        match = _USERINFO.match(self._url)
        rest = self._url[match.end() :] if match else self._url.partition("://")[2]
        hosts, _, database = rest.split("?", 1)[0].partition("/")
        if match is None or ":" not in match.group(2):
            return hosts  # with no password the whole URI may be the secret: its hosts are not
        user = match.group(2).split(":", 1)[0]
        return self._clean(f"{match.group(1)}{user}:***@{hosts}/{database}".rstrip("/"))

    def _clean(self, text: str) -> str:
        match = _USERINFO.match(self._url)
        if match is not None and ":" in match.group(2):
            password = match.group(2).split(":", 1)[1]
            for spelling in {password, unquote(password)} - {""}:
                text = text.replace(spelling, "***")
        return redact(text)

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except pymongo.errors.ConnectionFailure as err:
            reason = str(err).split(", Timeout:")[0]  # drop pymongo's topology dump
            raise TransientSourceError(
                f"{what}: cannot reach MongoDB at {self._shown()}: {self._clean(reason)}",
                hint="check that the server runs and that host and port in connection are right",
            ) from None
        except pymongo.errors.OperationFailure as err:
            message = (err.details or {}).get("errmsg") or str(err)
            hint = "check the user and password in connection" if err.code in (13, 18) else None
            raise SourceError(f"{what}: {self._clean(str(message))}", hint=hint) from None
        except (pymongo.errors.PyMongoError, bson.errors.BSONError) as err:
            raise SourceError(f"{what}: {self._clean(str(err))}") from None


class _Stream:
    """One query: its batches under one schema, fixed by the first batch; later batches are cast to it."""

    def __init__(self, what: str, batches: Iterator[pa.RecordBatch], since: Any) -> None:
        self.what = what
        self._batches = batches
        self._index = 0
        self._first: pa.RecordBatch | None = None
        first = next(batches, None)
        if first is None:
            if since is None:
                raise SourceError(
                    f"{what}: no documents match, so the columns are unknown",
                    hint="check collection, filter and database",
                )
            self.schema = pa.schema([])  # nothing new since the cursor
            return
        first = _landed(first, what)
        self.schema = pa.schema([f.with_type(widen(f.type)) for f in first.schema])
        self._first = self._conform(first)

    def batches(self) -> Iterator[pa.RecordBatch]:
        first, self._first = self._first, None
        if first is not None:
            yield first
        for batch in self._batches:
            self._index += 1
            yield self._conform(_landed(batch, self.what))

    def close(self) -> None:
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()

    def _conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Cast a batch to the schema: missing fields become nulls, new fields are errors."""
        if batch.schema.equals(self.schema):
            return batch
        target = pa.struct(list(self.schema))
        extra = next(extra_fields(pa.struct(list(batch.schema)), target, ""), None)
        if extra is not None:
            raise SourceError(
                f'{self.what}: batch {self._index} has a field the first batch lacked: "{extra}"',
                hint="the first batch fixes the columns: raise batch_size, or leave the field out "
                "with projection",
            )
        array = pa.StructArray.from_arrays(batch.columns, fields=list(batch.schema))
        try:
            return pa.RecordBatch.from_struct_array(pc.cast(array, target))
        except ARROW_ERRORS as err:
            row = first_failure(len(batch), lambda n: pc.cast(array.slice(0, n), target))
            names = [n for n in batch.schema.names if n in self.schema.names]
            field = next(
                (
                    n
                    for n in names
                    if fails(pc.cast, batch.column(n).slice(row, 1), self.schema.field(n).type)
                ),
                names[0] if names else "?",
            )
            raise SourceError(
                f'{self.what}: batch {self._index}, document {row}, field "{field}": {err}',
                hint=f'the first batch made "{field}" {self.schema.field(field).type}; '
                "a field's values must share a type",
            ) from None


# -- helpers ---------------------------------------------------------------------------------------


def _table_options(table: SourceTable) -> MongoTableOptions:
    options = table.options
    # `tables: [orders]` arrives as {table: orders}: a list names the collections themselves.
    if set(options) == {"table"} and snake_case(str(options["table"])) == table.key:
        return MongoTableOptions(collection=str(options["table"]))
    return parse_options(MongoTableOptions, options, table.location)


def _bson_value(value: Any) -> Any:
    """A YAML or Arrow value as BSON stores it: dates are datetimes, decimals Decimal128."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, Decimal):
        return bson.Decimal128(value)
    return value


def _extended(value: Any) -> Any:
    """A filter from YAML, with extended JSON (``{$oid: …}``, ``{$date: …}``) turned into BSON values."""
    if isinstance(value, Mapping):
        plain = {key: _extended(item) for key, item in value.items()}
        if len(plain) == 1 and "$date" in plain and isinstance(plain["$date"], dt.datetime):
            return plain["$date"]
        if len(plain) == 1 and next(iter(plain)) in _EXTENDED_JSON:
            return json_util.object_hook(plain, _JSON)
        return plain
    if isinstance(value, list):
        return [_extended(item) for item in value]
    return _bson_value(value)


def _batch(documents: list[dict[str, Any]], what: str, index: int) -> pa.RecordBatch:
    try:
        array = pa.array(documents)  # one C++ pass; infers a struct with the union of the fields
    except ARROW_ERRORS as err:
        row = first_failure(len(documents), lambda n: pa.array(documents[:n]))
        prefix = documents[: row + 1]
        field = next((key for key in documents[row] if fails(field_values, prefix, key)), None)
        named = f', field "{field}"' if field is not None else ""
        raise SourceError(
            f"{what}: batch {index}, document {row}{named}: {err}",
            hint="a field's values must share a type (numbers may mix); leave it out with projection",
        ) from None
    return pa.RecordBatch.from_struct_array(array)


def _landed(batch: pa.RecordBatch, what: str) -> pa.RecordBatch:
    """Top-level fields in snake_case, refusing two that land under one name."""
    return batch.rename_columns(landed_names(batch.schema.names, what, "leave one out with projection"))
