"""``GET /api/v1/tables`` (the catalog) and ``GET /api/v1/tables/{schema}/{name}`` (the rows).

Each request pins one published state of the lake (a cursor pins the state of the first page);
the query is a sqlglot AST built from the validated parameters (``grammar``), read as Arrow. JSON
pages are cached by the data version of the table they read and the request: a run publishing
another table leaves them cached, a run publishing this one makes a new key. The same key is the
``ETag``, so ``If-None-Match`` answers 304 without reading a row.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from sqlglot import exp

from gristmill.server.reading import PinnedRead, ReadError, ServedRelation, TableReader
from gristmill.server.tables import formats, grammar, paging
from gristmill.server.tables.grammar import BadParameter


@dataclass(frozen=True)
class TableLimits:
    default_limit: int = 100
    max_limit: int = 1000
    """JSON pages hold at most this many rows, whatever ``limit`` asks."""
    max_bulk_page: int = 100_000
    """A CSV/Parquet/Arrow request with ``limit`` (a page with a cursor) is capped here; without
    ``limit`` the whole result streams."""
    count_cap: int = 10_000
    cache_bytes: int = 64 * 1024 * 1024
    """The JSON page cache's size; 0 turns it off."""


class _PageCache:
    """JSON bodies by ETag, least recently used out first, bounded in bytes."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._size = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: str, body: bytes) -> None:
        if not self._capacity or len(body) > self._capacity // 4:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = body
            self._size += len(body)
            while self._size > self._capacity:
                _, old = self._items.popitem(last=False)
                self._size -= len(old)


def tables_router(reader: TableReader, *, secret: bytes, limits: TableLimits | None = None) -> APIRouter:
    limits = limits or TableLimits()
    codec = paging.CursorCodec(secret)
    cache = _PageCache(limits.cache_bytes)
    router = APIRouter(prefix="/api/v1/tables", tags=["tables"])

    @router.get("", summary="The catalog: every served table with its columns, types and freshness")
    def catalog(request: Request, as_of: str | None = None) -> Response:
        with _pinned(reader, as_of) as pinned:
            relations = pinned.relations()
            etag = f'"{pinned.version(relations)}"'
            if _matches(request, etag):
                return Response(status_code=304, headers={"ETag": etag})
            body = {
                "snapshot": pinned.snapshot,
                "env": reader.env,
                "tables": [_describe(r, request) for r in relations.values()],
            }
        return Response(formats.dumps(body), media_type="application/json", headers={"ETag": etag})

    @router.get("/{schema}/{name}", summary="Rows of one table: filters, select, order, pages")
    def rows(schema: str, name: str, request: Request) -> Response:
        name, fmt = _format(name, request.headers.get("accept"))
        params = list(request.query_params.multi_items())
        full = f"{schema}.{name}"
        fingerprint = paging.fingerprint(full, params)
        given = request.query_params.get("cursor")
        cursor = codec.decode(given, fingerprint) if given else None
        as_of = cursor.snapshot if cursor else request.query_params.get("as_of")
        pinned = _pinned(reader, as_of)
        try:
            relation = pinned.relations().get(full)
            if relation is None:
                return JSONResponse(
                    {"error": f"no served table {full}", "hint": "GET /api/v1/tables lists them"},
                    status_code=404,
                )
            request_key = f"{fingerprint}|{fmt}|{sorted(params)}"
            etag = (
                '"'
                + hashlib.sha256(f"{pinned.version([full])}|{request_key}".encode()).hexdigest()[:32]
                + '"'
            )
            if _matches(request, etag):
                return Response(status_code=304, headers={"ETag": etag})
            if fmt == "json":
                cached = cache.get(etag)
                if cached is None:
                    cached = formats.dumps(_page(pinned, relation, params, cursor, request, codec, limits))
                    cache.put(etag, cached)
                return Response(cached, media_type=formats.MEDIA_TYPES["json"], headers={"ETag": etag})
            response = _bulk(pinned, relation, params, cursor, request, codec, limits, fmt)
            response.headers["ETag"] = etag
            if isinstance(response, StreamingResponse):
                pinned = None  # type: ignore[assignment]  # the stream releases it
            return response
        finally:
            if pinned is not None:
                pinned.close()

    return router


def _pinned(reader: TableReader, as_of: str | None) -> PinnedRead:
    return reader.pin(as_of)


def _matches(request: Request, etag: str) -> bool:
    given = request.headers.get("if-none-match")
    return given is not None and etag in {t.strip() for t in given.split(",")} | (
        {etag} if given.strip() == "*" else set()
    )


def _format(name: str, accept: str | None) -> tuple[str, str]:
    stem, dot, suffix = name.rpartition(".")
    if dot and suffix in formats.MEDIA_TYPES:
        return stem, suffix
    return name, formats.negotiate(accept)


def _describe(relation: ServedRelation, request: Request) -> dict[str, Any]:
    return {
        "schema": relation.schema,
        "name": relation.name,
        "kind": relation.kind,
        "description": relation.description,
        "owner": relation.owner,
        "tags": list(relation.tags),
        "rows": relation.rows,
        "built_at": relation.built_at,
        "key": list(relation.key),
        "url": str(request.url_for("rows", schema=relation.schema, name=relation.name)),
        "columns": [
            {"name": c.name, "type": c.type, "description": c.description, "json": formats.json_schema(c)}
            for c in relation.columns
        ],
    }


@dataclass(frozen=True)
class _Query:
    select: list[grammar.ServedColumn]
    key: list[tuple[grammar.ServedColumn, bool]]
    where: exp.Expr | None


def _plan(relation: ServedRelation, params: list[tuple[str, str]]) -> _Query:
    lookup = dict(params)
    select = grammar.selection(relation, lookup.get("select"))
    key = paging.sort_key(relation, grammar.ordering(relation, lookup.get("order")))
    return _Query(select, key, grammar.where(relation, params))


def _limit(text: str | None, default: int | None, cap: int) -> int | None:
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise BadParameter("limit", f"limit is a whole number of rows from 1, not {text!r}")
    return min(int(text), cap)


def _select(
    relation: ServedRelation,
    plan: _Query,
    cursor: paging.Cursor | None,
    limit: int | None,
    nullable: frozenset[str] | None = None,
) -> exp.Select:
    names = list(dict.fromkeys([c.name for c in plan.select] + [c.name for c, _ in plan.key]))
    query = exp.select(*(exp.column(n, quoted=True) for n in names)).from_(
        exp.table_(relation.name, db=relation.schema, quoted=True)
    )
    conditions = [plan.where] if plan.where is not None else []
    if cursor is not None:
        conditions.append(paging.after(plan.key, cursor.values, nullable))
    if conditions:
        query = query.where(exp.and_(*conditions))
    query = query.order_by(*paging.order_by(plan.key))
    if limit is not None:
        query = query.limit(limit + 1)
    if cursor is not None and cursor.sent:
        query = query.offset(cursor.sent)
    return query


def _page(
    pinned: PinnedRead,
    relation: ServedRelation,
    params: list[tuple[str, str]],
    cursor: paging.Cursor | None,
    request: Request,
    codec: paging.CursorCodec,
    limits: TableLimits,
) -> dict[str, Any]:
    plan = _plan(relation, params)
    limit = _limit(request.query_params.get("limit"), limits.default_limit, limits.max_limit)
    assert limit is not None
    nullable = _NULLABLE.of(pinned, relation, plan) if cursor is not None else None
    table = pinned.read(_select(relation, plan, cursor, limit, nullable)).read_all()
    more = table.num_rows > limit
    page = table.slice(0, limit)
    next_cursor = (
        _next(page, plan, cursor, pinned.snapshot, paging.fingerprint(relation.full_name, params))
        if more
        else None
    )
    body: dict[str, Any] = {
        "table": relation.full_name,
        "snapshot": pinned.snapshot,
        "schema": {c.name: formats.json_schema(c) for c in plan.select},
        "rows": formats.json_rows(page.select([c.name for c in plan.select]), plan.select),
        "limit": limit,
        "truncated": more,
        "next": str(request.url.include_query_params(cursor=codec.encode(next_cursor)))
        if next_cursor
        else None,
    }
    if "count" in request.query_params:
        body["count"] = _count(pinned, relation, plan, request.query_params["count"], limits.count_cap)
    return body


class _Nullability:
    """Which sort-key columns of a table hold a NULL, per lake snapshot (a snapshot never changes,
    so this is asked once per table and snapshot: one cheap query, the engine answers ``IS NULL``
    from its files' statistics). Live reads (storage without snapshots) get None: any may."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str, tuple[str, ...]], frozenset[str]] = {}
        self._lock = threading.Lock()

    def of(self, pinned: PinnedRead, relation: ServedRelation, plan: _Query) -> frozenset[str] | None:
        if not pinned.snapshot.isdigit():
            return None
        names = tuple(c.name for c, _ in plan.key)
        entry = (pinned.snapshot, relation.full_name, names)
        found = self._known.get(entry)
        if found is not None:
            return found
        table = exp.table_(relation.name, db=relation.schema, quoted=True)
        probes = [
            exp.Exists(
                this=exp.select(exp.Literal.number(1))
                .from_(table.copy())
                .where(exp.Is(this=exp.column(n, quoted=True), expression=exp.null()))
            ).as_(f"c{i}")
            for i, n in enumerate(names)
        ]
        row = pinned.read(exp.select(*probes)).read_all().to_pylist()[0]
        found = frozenset(n for i, n in enumerate(names) if row[f"c{i}"])
        with self._lock:
            if len(self._known) > 1024:
                self._known.clear()
            self._known[entry] = found
        return found


_NULLABLE = _Nullability()


def _next(
    page: Any, plan: _Query, cursor: paging.Cursor | None, snapshot: str, fingerprint: str
) -> paging.Cursor | None:
    if page.num_rows == 0:
        return None
    names = [c.name for c, _ in plan.key]
    keys = page.select(names).to_pylist()
    last = tuple(paging.key_text(keys[-1][n]) for n in names)
    ties = 0
    for row in reversed(keys):
        if tuple(paging.key_text(row[n]) for n in names) != last:
            break
        ties += 1
    if cursor is not None and cursor.values == last:
        ties += cursor.sent
    return paging.Cursor(snapshot, fingerprint, last, ties)


def _count(pinned: PinnedRead, relation: ServedRelation, plan: _Query, how: str, cap: int) -> int | str:
    if how not in {"exact", "estimated"}:
        raise BadParameter("count", f"count is exact or estimated, not {how!r}")
    if how == "estimated" and plan.where is None and relation.rows is not None:
        return relation.rows if relation.rows <= cap else f"{cap}+"
    inner = exp.select(exp.Literal.number(1)).from_(
        exp.table_(relation.name, db=relation.schema, quoted=True)
    )
    if plan.where is not None:
        inner = inner.where(plan.where.copy())
    counted = exp.select(exp.Count(this=exp.Star()).as_("n")).from_(inner.limit(cap + 1).subquery("counted"))
    n = int(pinned.read(counted).read_all().column("n")[0].as_py())
    return n if n <= cap else f"{cap}+"


def _bulk(
    pinned: PinnedRead,
    relation: ServedRelation,
    params: list[tuple[str, str]],
    cursor: paging.Cursor | None,
    request: Request,
    codec: paging.CursorCodec,
    limits: TableLimits,
    fmt: str,
) -> Response:
    """CSV, Parquet or Arrow: the whole result streamed, or a page when ``limit`` is given."""
    import pyarrow as pa

    plan = _plan(relation, params)
    names = [c.name for c in plan.select]
    limit = _limit(request.query_params.get("limit"), None, limits.max_bulk_page)
    media = formats.MEDIA_TYPES[fmt]
    disposition = {"Content-Disposition": f'attachment; filename="{relation.name}.{fmt}"'}
    if limit is None:
        query = _select(relation, plan, None, None)
        if not request.query_params.get("order"):
            query.set("order", None)  # the whole table: any order, no sort
        batches = pinned.read(query)
        projected = _project(batches, names)
        headers = {**disposition, "Gristmill-Truncated": "false", "Gristmill-Snapshot": pinned.snapshot}
        compress = (
            formats.compression(request.headers.get(formats.ARROW_COMPRESSION)) if fmt == "arrow" else None
        )
        if compress:
            headers[formats.ARROW_COMPRESSION] = compress
        return StreamingResponse(
            formats.stream(projected, fmt, pinned.close, compress), media_type=media, headers=headers
        )
    nullable = _NULLABLE.of(pinned, relation, plan) if cursor is not None else None
    table = pinned.read(_select(relation, plan, cursor, limit, nullable)).read_all()
    more = table.num_rows > limit
    page = table.slice(0, limit)
    fingerprint = paging.fingerprint(relation.full_name, params)
    following = _next(page, plan, cursor, pinned.snapshot, fingerprint) if more else None
    headers = {
        **disposition,
        "Gristmill-Truncated": "true" if more else "false",
        "Gristmill-Snapshot": pinned.snapshot,
    }
    if following is not None:
        url = str(request.url.include_query_params(cursor=codec.encode(following)))
        headers["Gristmill-Next"] = url
        headers["Link"] = f'<{url}>; rel="next"'
    body = b"".join(
        formats.stream(
            pa.RecordBatchReader.from_batches(page.select(names).schema, page.select(names).to_batches()),
            fmt,
            lambda: None,
        )
    )
    return Response(body, media_type=media, headers=headers)


def _project(batches: Any, names: list[str]) -> Any:
    """Only the selected columns of a stream (the sort key may have added others)."""
    import pyarrow as pa

    if batches.schema.names == names:
        return batches  # nothing to leave out: no Python step per batch
    schema = pa.schema([batches.schema.field(n) for n in names])
    return pa.RecordBatchReader.from_batches(schema, (b.select(names) for b in batches))


def read_error(error: ReadError) -> JSONResponse:
    return JSONResponse({"error": error.message, "hint": error.hint}, status_code=400)


def bad_parameter(error: BadParameter) -> JSONResponse:
    return JSONResponse({"error": error.message, "parameter": error.parameter}, status_code=400)
