"""Read REST API endpoints page by page and stream each page out as an Arrow record batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

from gristmill._util.suggest import did_you_mean
from gristmill.config.secrets import resolve
from gristmill.connectors.rest.auth import build_auth, credentials
from gristmill.connectors.rest.batches import Landing, at_or_after, to_struct
from gristmill.connectors.rest.config import RestSourceOptions, RestTableOptions
from gristmill.connectors.rest.pagination import Page, PageRequest, lookup, paginator
from gristmill.connectors.rest.transport import Http, join_url, query_value, scrub, snippet
from gristmill.connectors.rest.validation import parse
from gristmill.errors import ConfigError, Missing, SourceError
from gristmill.project.specs import SourceSpec, SourceTable

Chunk = tuple[pa.StructArray | None, str]
"""One page's records (None when the page is empty) and its description for error messages."""


class Source:
    def __init__(self, spec: SourceSpec, root: Path) -> None:
        self.spec = spec
        self.root = root
        self.options = parse(RestSourceOptions, spec.options, spec.file, key_lines=spec.key_lines)
        self.tables = {
            key: parse(
                RestTableOptions,
                table.options,
                table.location,
                key_lines=getattr(table.options, "key_lines", {}),
            )
            for key, table in spec.tables.items()
        }
        self._http: Http | None = None
        self._base_url = ""

    def __repr__(self) -> str:
        return f"rest.Source({self.spec.file})"

    # -- connection --------------------------------------------------------------------------------

    def _connect(self) -> Http:
        """Resolve secret references and open the client, on first use only."""
        if self._http is None:
            where = self.spec.where
            # Only auth values are secret as written; elsewhere resolve() hides what references give.
            self._base_url = resolve(self.options.base_url, base=self.root, where=where("base_url"))
            headers = {
                k: resolve(v, base=self.root, where=where("headers")) for k, v in self.options.headers.items()
            }
            http = Http(
                headers=headers,
                auth=None,
                timeout=self.options.timeout,
                retries=self.options.retries,
                rate_limit=self.options.rate_limit,
                credentials=credentials(self.options.auth),
            )
            auth = build_auth(
                self.options.auth, self.root, where("auth"), base_url=self._base_url, send=http.send
            )
            if auth is not None:
                http.client.auth = auth
            self._http = http
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    # -- pages -------------------------------------------------------------------------------------

    def _pages(self, table: SourceTable, since: Any) -> Iterator[tuple[list[Any], str]]:
        """The records of every page in order, each with a description for error messages."""
        http = self._connect()
        options = self.tables[table.key]
        what = self._what(table)
        params = {
            k: query_value(resolve(v, base=self.root, where=table.location) if isinstance(v, str) else v)
            for k, v in {**self.options.params, **options.params}.items()
        }
        if since is not None and options.incremental_param is not None:
            params[options.incremental_param.name] = _bound(since, options.incremental_param.format)
        url = join_url(self._base_url, options.path if options.path is not None else f"/{table.key}")
        pages = paginator(options.paginate or self.options.paginate, url, params)
        records_path = options.records if options.records is not None else self.options.records
        request: PageRequest | None = pages.first()
        origin = httpx.URL(url)
        seen: set[httpx.URL] = set()
        number = 0
        while request is not None:
            number += 1
            # Merged into the URL, not replacing its query: a next-page URL carries its own.
            target = httpx.URL(request.url).copy_merge_params(dict(request.params))
            if target in seen:
                raise SourceError(
                    f"{what}: page {number} would fetch {scrub(str(target))} again: "
                    "pagination does not advance",
                    hint="check the paginate settings against the API's documentation",
                )
            seen.add(target)
            if (target.scheme, target.host, target.port) != (origin.scheme, origin.host, origin.port):
                raise SourceError(
                    f"{what}: page {number} is on {scrub(str(target.copy_with(query=None)))}, another "
                    f"server than {scrub(str(origin))}; the source's credentials are not sent there",
                    hint="check the paginate settings; the next page must be on the same server",
                )
            response = http.send("GET", str(target), what)
            where = f"{what}: page {number} ({scrub(str(response.url))})"
            body = _json(response, where)
            try:
                records = _records(body, records_path)
                yield records, where
                request = pages.after(Page(response, body, len(records)))
            except Missing as err:
                raise SourceError(
                    f"{where}: {err.message}", hint=err.hint or _path_hint(records_path)
                ) from None

    def _open(self, table: SourceTable, since: Any) -> tuple[Landing, Iterator[Chunk], bool]:
        """The landing fixed by the first page, every page as a struct array (None when empty),
        and whether the first page was empty."""
        chunks = ((to_struct(records, where), where) for records, where in self._pages(table, since))
        first = next(chunks, None)
        records = first[0] if first is not None else None
        landing = Landing(records, dict(self.tables[table.key].types), self._what(table))
        return landing, chain([first] if first is not None else [], chunks), records is None

    def _what(self, table: SourceTable) -> str:
        return f"{self.spec.file} ({table.key})"

    # -- the Source protocol -------------------------------------------------------------------------

    def schema(self, table: SourceTable) -> pa.Schema:
        """The landed schema, from the first page only."""
        return self._open(table, None)[0].schema

    def read(self, table: SourceTable, since: Any = None) -> pa.RecordBatchReader:
        landing, chunks, empty = self._open(table, since)
        if since is not None and empty:
            # Nothing new since the bound: the schema still comes from the API's first page.
            landing = self._open(table, None)[0]
        cursor = self._cursor(table, landing.schema) if since is not None else None

        def batches() -> Iterator[pa.RecordBatch]:
            for records, where in chunks:
                if records is None:
                    continue
                batch = landing.batch(records, where)
                if cursor is not None:
                    batch = at_or_after(batch, cursor, since, where)
                if batch.num_rows:
                    yield batch

        return pa.RecordBatchReader.from_batches(landing.schema, batches())

    def change_marker(self, table: SourceTable) -> str | None:
        return None  # an API cannot tell cheaply whether its data changed

    # -- helpers -------------------------------------------------------------------------------------

    def _cursor(self, table: SourceTable, schema: pa.Schema) -> str | None:
        incremental = table.load.incremental
        if incremental is None:
            return None
        if incremental.cursor not in schema.names:
            raise ConfigError(
                f'incremental cursor "{incremental.cursor}" is not a column of {table.asset}',
                location=table.location,
                hint=did_you_mean(incremental.cursor, schema.names) or "columns: " + ", ".join(schema.names),
            )
        return incremental.cursor


def _json(response: httpx.Response, where: str) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        kind = response.headers.get("content-type", "no content type")
        raise SourceError(
            f"{where} did not return JSON (HTTP {response.status_code}, {kind}): {snippet(response)}",
            hint="an HTML page often means the wrong base_url or path, a login page or a proxy error",
        ) from None


def _records(body: Any, path: str | None) -> list[Any]:
    found = lookup(body, path or "")
    if isinstance(found, list):
        return found
    if path is None and isinstance(found, dict):
        raise Missing(f"the response is an object, not a list (keys: {', '.join(map(str, found))})")
    raise Missing(f'"{path or "the body"}" is {type(found).__name__}, not a list of records')


def _path_hint(records_path: str | None) -> str:
    if records_path is None:
        return 'set "records" to the dotted path of the list, e.g. records: data.items'
    return 'check "records" and the paginate paths against a response of the API'


def _bound(since: Any, format: str | None) -> str:
    """The cursor's lower bound as a query parameter value."""
    if isinstance(since, datetime | date):
        return since.strftime(format) if format else since.isoformat()
    return query_value(since)
