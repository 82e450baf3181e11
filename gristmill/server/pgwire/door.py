"""The PostgreSQL wire door of ``gristmill serve --pg-port``: psql, psycopg and BI tools connect
and read the served tables through the same ``SqlReading`` as ``POST /api/v1/sql`` (the guard,
the row cap, the statement timeout).

The protocol is buenavista's (a maintained pure-Python implementation; docs/serving-sql.md says
why); this module only answers its sessions: data statements go to ``reader.select`` (PostgreSQL
dialect), catalog probes to ``reader.catalog``, and the session chatter clients send on connect
(``SET``, ``SHOW``, ``BEGIN``/``COMMIT``) is answered without touching the engine.

Usage (the serve composition)::

    door = start_pg_door(reader, "127.0.0.1", 5433)   # listening when it returns
    ...
    door.stop()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from buenavista import core, postgres
from buenavista.backends.duckdb import to_bvtype
from sqlglot.tokens import Tokenizer, TokenType

from gristmill.errors import GristmillError, SqlRefused, StatementTimeout
from gristmill.server.sql_api import SqlReading

log = logging.getLogger(__name__)

SERVER_VERSION = "16.0 (gristmill)"
_SHOW = {
    "server_version": SERVER_VERSION,
    "transaction_isolation": "read committed",
    "transaction isolation level": "read committed",
    "standard_conforming_strings": "on",
    "client_encoding": "UTF8",
    "server_encoding": "UTF8",
    "datestyle": "ISO, MDY",
    "timezone": "UTC",
    "search_path": '"$user", public',
    "max_identifier_length": "63",
    "integer_datetimes": "on",
}
_NO_OPS = {TokenType.SET: "SET", TokenType.COMMAND: ""}


class ArrowResult(core.QueryResult):
    """An Arrow table as buenavista sends it (one page at a time, as text or binary)."""

    def __init__(self, table: pa.Table) -> None:
        super().__init__()
        self._table = table

    def has_results(self) -> bool:
        return True

    def column_count(self) -> int:
        return self._table.num_columns

    def column(self, index: int) -> tuple[str, core.BVType]:
        field = self._table.schema.field(index)
        if pa.types.is_interval(field.type) or pa.types.is_union(field.type) or pa.types.is_map(field.type):
            return field.name, core.BVType.TEXT  # sent as their text; buenavista has no encoder for them
        try:
            return field.name, to_bvtype(field.type)
        except Exception:  # a type buenavista has no PostgreSQL name for: sent as text
            return field.name, core.BVType.TEXT

    def rows(self) -> Iterator[list[Any]]:
        for batch in self._table.to_batches(max_chunksize=1024):
            yield from (list(row.values()) for row in batch.to_pylist())

    def status(self) -> str:
        return f"SELECT {self._table.num_rows}"


class StatusResult(core.QueryResult):
    """A command without rows (``BEGIN``, ``SET`` ...): only its tag."""

    def __init__(self, tag: str) -> None:
        super().__init__()
        self._tag = tag

    def has_results(self) -> bool:
        return False

    def status(self) -> str:
        return self._tag


class DoorSession(core.Session):
    def __init__(self, reader: SqlReading) -> None:
        super().__init__()
        self._reader = reader
        self._in_transaction = False

    def in_transaction(self) -> bool:
        return self._in_transaction

    def close(self) -> None:
        self._in_transaction = False

    def execute_sql(self, sql: str, params: Sequence[object] | None = None) -> core.QueryResult:
        tokens = Tokenizer().tokenize(sql) if sql.strip() else []
        if not tokens:
            return StatusResult("")
        first = tokens[0]
        word = first.text.upper()
        if first.token_type in (TokenType.BEGIN,) or word == "START":
            self._in_transaction = True
            return StatusResult("BEGIN")
        if word in ("SAVEPOINT", "RELEASE") or (
            word == "ROLLBACK" and len(tokens) > 1 and tokens[1].text.upper() == "TO"
        ):
            return StatusResult(word)  # nothing is written, so there is nothing to roll back to
        if word in ("COMMIT", "END", "ROLLBACK", "ABORT"):
            self._in_transaction = False
            return StatusResult("ROLLBACK" if word in ("ROLLBACK", "ABORT") else "COMMIT")
        if word == "SET" or word in ("DISCARD", "DEALLOCATE", "RESET", "CLOSE", "UNLISTEN"):
            return StatusResult(word)  # session settings are accepted and ignored: the door is read-only
        if word == "SHOW":
            name = " ".join(t.text for t in tokens[1:]).strip().lower().rstrip(";").strip()
            return ArrowResult(pa.table({name: [_SHOW.get(name, "")]}))
        return self._query(sql, list(params or ()))

    def _query(self, sql: str, params: list[object]) -> core.QueryResult:
        catalog = self._reader.catalog(sql, params=params)
        if catalog is not None:
            return ArrowResult(catalog)
        result = self._reader.select(sql, dialect="postgres", params=params)
        if result.truncated:  # the wire has no way to say "cut": an error, never a silent short answer
            raise SqlRefused(
                f"the result has more than {self._reader.row_cap} rows, the server's cap",
                hint="add a LIMIT, filter or aggregate",
            )
        return ArrowResult(result.table)


class DoorConnection(core.Connection):
    def __init__(self, reader: SqlReading) -> None:
        super().__init__()
        self._reader = reader

    def new_session(self) -> core.Session:
        return DoorSession(self._reader)

    def parameters(self) -> dict[str, str]:
        return {
            "server_version": SERVER_VERSION,
            "client_encoding": "UTF8",
            "server_encoding": "UTF8",
            "DateStyle": "ISO, MDY",
            "TimeZone": "UTC",
            "integer_datetimes": "on",
            "standard_conforming_strings": "on",
        }


class DoorHandler(postgres.BuenaVistaHandler):
    """buenavista's handler, with errors that carry a severity and an SQLSTATE (clients need both
    to show them and to raise the right exception class)."""

    def handle_parse(self, ctx: postgres.BVContext, payload: bytes) -> None:
        """As buenavista's, but a parameter of unspecified type (OID 0, what psycopg sends for a
        Python ``str``) is kept as text: buenavista would parse it as a date."""
        super().handle_parse(ctx, payload)
        for name, (sql, oids) in list(ctx.stmts.items()):
            if 0 in oids:
                ctx.stmts[name] = (sql, [25 if oid == 0 else oid for oid in oids])

    def send_error(self, exception: object, ctx: postgres.BVContext | None = None) -> None:
        if isinstance(exception, GristmillError):
            code = "57014" if isinstance(exception, StatementTimeout) else "42501"  # query_canceled
            text = exception.message + (f" (hint: {exception.hint})" if exception.hint else "")
        else:
            code, text = "XX000", str(exception).splitlines()[0] if str(exception) else "internal error"
        fields = b"".join(
            key + value.encode() + b"\x00"
            for key, value in ((b"S", "ERROR"), (b"V", "ERROR"), (b"C", code), (b"M", text))
        )
        body = fields + b"\x00"
        self.wfile.write(postgres.ServerResponse.ERROR_RESPONSE + (len(body) + 4).to_bytes(4, "big") + body)
        if ctx is not None:
            ctx.mark_error()


class _Server(postgres.BuenaVistaServer):
    daemon_threads = True

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return True  # the address it binds decides who reaches it (loopback by default)


@dataclass
class PgDoor:
    """A running door; ``stop()`` closes the socket and waits for the serving thread."""

    host: str
    port: int
    _server: _Server
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def start_pg_door(reader: SqlReading, host: str = "127.0.0.1", port: int = 5433) -> PgDoor:
    """Listen for PostgreSQL clients on ``host:port`` (``port`` 0: a free one) in a background
    thread; every statement goes through ``reader``."""
    server = _Server((host, port), DoorConnection(reader))
    server.RequestHandlerClass = DoorHandler
    thread = threading.Thread(target=server.serve_forever, name="gristmill-pg-door", daemon=True)
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    log.info("PostgreSQL wire door listening on %s:%s", bound_host, bound_port)
    return PgDoor(str(bound_host), int(bound_port), server, thread)
