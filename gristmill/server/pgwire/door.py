"""The PostgreSQL wire door of ``gristmill serve --pg-port``: psql, psycopg and BI tools connect
and read the served tables through the same ``SqlReading`` as ``POST /api/v1/sql`` (the guard,
the row cap, the statement timeout).

The protocol is buenavista's (a maintained pure-Python implementation; docs/serving-sql.md says
why); this module only answers its sessions: data statements go to ``reader.select`` (PostgreSQL
dialect), catalog probes to ``reader.catalog``, and the session chatter clients send on connect
(``SET``, ``SHOW``, ``BEGIN``/``COMMIT``) is answered without touching the engine.

Logging in: with the project's API keys (``keys``), a client sends the key as its password (any
user name); the door asks for it in clear text (the key store keeps salted HMAC digests, so
neither MD5 nor SCRAM, which need the password or a verifier derived from it, can check it), so
off loopback it runs only with TLS. The key's schemas scope what the guard admits and what the
catalog lists; its rate applies per statement; every statement is logged like an HTTP request.

Usage (the serve composition)::

    check_door(host, port, no_auth=False, tls=None)   # before binding: who could reach it
    door = start_pg_door(reader, "127.0.0.1", 5433, keys=api_keys)   # listening when it returns
    ...
    door.stop()
"""

from __future__ import annotations

import logging
import socketserver
import ssl
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from buenavista import core, postgres
from buenavista.backends.duckdb import to_bvtype
from sqlglot.tokens import Tokenizer, TokenType

from gristmill.errors import (
    ConfigError,
    GristmillError,
    KeyRefused,
    RateLimited,
    SqlRefused,
    StatementTimeout,
)
from gristmill.server.auth import OPEN, CheckedKey, Grant, KeyChecker, KeyRates, is_loopback, key_grant
from gristmill.server.sql_api import SqlReading

log = logging.getLogger(__name__)
requests_log = logging.getLogger("gristmill.server.requests")
logging.getLogger("buenavista").setLevel(logging.WARNING)  # it logs every statement's text at INFO

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

    @property
    def row_count(self) -> int:
        return self._table.num_rows

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
    """One client connection: its grant (set once the key is checked) and its statements."""

    def __init__(self, door: DoorConnection) -> None:
        super().__init__()
        self._door = door
        self._reader = door.reader
        self._in_transaction = False
        self.key: CheckedKey | None = None
        self.grant: Grant = OPEN

    def admit(self, key: CheckedKey) -> None:
        self.key, self.grant = key, key_grant(key)

    def in_transaction(self) -> bool:
        return self._in_transaction

    def close(self) -> None:
        self._in_transaction = False

    def execute_sql(self, sql: str, params: Sequence[object] | None = None) -> core.QueryResult:
        started, rows, status = time.perf_counter(), None, "OK"
        try:
            result = self._execute(sql, params)
            if isinstance(result, ArrowResult):
                rows = result.row_count
            return result
        except Exception as error:
            status = sqlstate(error)
            raise
        finally:
            log_statement(self.grant, status, rows, time.perf_counter() - started)

    def _execute(self, sql: str, params: Sequence[object] | None) -> core.QueryResult:
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
        self._take_token()
        return self._query(sql, list(params or ()))

    def _take_token(self) -> None:
        if self.key is None:
            return
        wait, rate = self._door.rates.wait(self.key)
        if wait:
            raise RateLimited(
                f"rate limit of API key gmk_{self.key.key_id} reached ({rate:g} statements/s)",
                hint=f"retry after {wait:.1f} s",
            )

    def _query(self, sql: str, params: list[object]) -> core.QueryResult:
        schemas = self.grant.schemas
        catalog = self._reader.catalog(sql, params=params, schemas=schemas)
        if catalog is not None:
            return ArrowResult(catalog)
        result = self._reader.select(sql, dialect="postgres", params=params, schemas=schemas)
        if result.truncated:  # the wire has no way to say "cut": an error, never a silent short answer
            raise SqlRefused(
                f"the result has more than {self._reader.row_cap} rows, the server's cap",
                hint="add a LIMIT, filter or aggregate",
            )
        return ArrowResult(result.table)


def log_statement(grant: Grant, status: str, rows: int | None, seconds: float) -> None:
    """One line per statement, as the HTTP request log writes one per request (never the key,
    nor the statement's text, which may hold the values a user filtered on)."""
    key = f"gmk_{grant.key_id}" if grant.key_id else "-"
    requests_log.info(
        "key=%s method=SQL route=pgwire status=%s rows=%s ms=%.2f",
        key,
        status,
        "-" if rows is None else rows,
        seconds * 1000,
        extra={
            "key_id": key,
            "route": "pgwire",
            "status": status,
            "rows": rows,
            "duration_ms": seconds * 1000,
        },
    )


def sqlstate(error: object) -> str:
    """The SQLSTATE a client maps to its exception class."""
    if isinstance(error, StatementTimeout):
        return "57014"  # query_canceled
    if isinstance(error, RateLimited):
        return "53400"  # configuration_limit_exceeded
    if isinstance(error, KeyRefused):
        return "28P01"  # invalid_password
    if isinstance(error, GristmillError):
        return "42501"  # insufficient_privilege: the guard refused, or the engine did
    return "XX000"


class DoorConnection(core.Connection):
    def __init__(self, reader: SqlReading, keys: KeyChecker | None, rates: KeyRates) -> None:
        super().__init__()
        self.reader = reader
        self.keys = keys
        self.rates = rates

    def new_session(self) -> core.Session:
        return DoorSession(self)

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


_SSL_REQUEST, _GSSENC_REQUEST, _PROTOCOL_3, _CANCEL = 80877103, 80877104, 196608, 80877102


class DoorHandler(postgres.BuenaVistaHandler):
    """buenavista's handler, with TLS, API keys as passwords, and errors that carry a severity
    and an SQLSTATE (clients need both to show them and to raise the right exception class)."""

    server: _Server
    request: Any
    rfile: Any
    wfile: Any
    r: Any
    _tls = False

    def handle_startup(self, conn: core.Connection) -> postgres.BVContext | None:
        length, code = self.r.read_uint32() - 4, self.r.read_uint32()
        if code == _SSL_REQUEST:
            if self.server.tls is None:
                self.wfile.write(b"N")
            else:
                self.wfile.write(b"S")
                self.request = self.server.tls.wrap_socket(self.request, server_side=True)
                self.rfile = self.request.makefile("rb")
                self.wfile = socketserver._SocketWriter(self.request)  # type: ignore[attr-defined]
                self.r = postgres.BVBuffer(self.rfile)
                self._tls = True
            return self.handle_startup(conn)
        if code == _GSSENC_REQUEST:  # libpq asks first when it holds a Kerberos ticket: no
            self.wfile.write(b"N")
            return self.handle_startup(conn)
        if code == _CANCEL:
            self.r.read_uint32(), self.r.read_uint32()
            return None  # statements are bounded by the timeout; a cancel is not honoured early
        if code != _PROTOCOL_3:
            raise ValueError(f"unsupported startup message: {code}")
        words = [x.decode("utf-8") for x in self.r.read_bytes(length - 4).split(b"\x00")]
        params = dict(zip(words[::2], words[1::2], strict=False))
        if self.server.tls is not None and self.server.tls_required and not self._tls:
            self._fatal("28000", "this door accepts only TLS connections", "connect with sslmode=require")
            return None
        ctx = postgres.BVContext(conn.create_session(), self.server.rewriter, params)
        if isinstance(conn, DoorConnection) and conn.keys is not None:
            self.wfile.write(struct.pack("!cii", postgres.ServerResponse.AUTHENTICATION_REQUEST, 8, 3))
        else:
            self.send_authentication_ok()
            self.handle_post_auth(ctx)
        return ctx

    def handle_md5_password(self, ctx: postgres.BVContext, payload: bytes) -> None:
        """The password message: here, the API key in clear text (over TLS off loopback)."""
        connection = self.server.conn
        assert isinstance(connection, DoorConnection) and connection.keys is not None
        token = payload.rstrip(b"\x00").decode("utf-8", "replace").strip()
        started = time.perf_counter()
        try:
            if not token:
                raise KeyRefused("missing API key")
            key = connection.keys.check(token)
        except KeyRefused as refused:
            log_statement(OPEN, "28P01", None, time.perf_counter() - started)
            self._fatal(
                "28P01", refused.message, "send a live key from `gristmill keys create` as the password"
            )
            return
        except GristmillError as error:
            log.error("key store unavailable: %s", error.message)
            self._fatal("58000", "the key store cannot be read", "retry shortly; see the server's log")
            return
        assert isinstance(ctx.session, DoorSession)
        ctx.session.admit(key)
        self.send_authentication_ok()
        self.handle_post_auth(ctx)

    def handle_parse(self, ctx: postgres.BVContext, payload: bytes) -> None:
        """As buenavista's, but a parameter of unspecified type (OID 0, what psycopg sends for a
        Python ``str``) is kept as text: buenavista would parse it as a date."""
        super().handle_parse(ctx, payload)
        for name, (sql, oids) in list(ctx.stmts.items()):
            if 0 in oids:
                ctx.stmts[name] = (sql, [25 if oid == 0 else oid for oid in oids])

    def send_error(self, exception: object, ctx: postgres.BVContext | None = None) -> None:
        if isinstance(exception, GristmillError):
            text = exception.message + (f" (hint: {exception.hint})" if exception.hint else "")
        else:
            text = str(exception).splitlines()[0] if str(exception) else "internal error"
        self._error("ERROR", sqlstate(exception), text)
        if ctx is not None:
            ctx.mark_error()

    def _fatal(self, code: str, message: str, hint: str) -> None:
        self._error("FATAL", code, message, hint)

    def _error(self, severity: str, code: str, text: str, hint: str | None = None) -> None:
        parts = [(b"S", severity), (b"V", severity), (b"C", code), (b"M", text)]
        parts += [(b"H", hint)] if hint else []
        body = b"".join(key + value.encode() + b"\x00" for key, value in parts) + b"\x00"
        self.wfile.write(postgres.ServerResponse.ERROR_RESPONSE + (len(body) + 4).to_bytes(4, "big") + body)


class _Server(postgres.BuenaVistaServer):
    daemon_threads = True
    tls: ssl.SSLContext | None = None
    tls_required = False

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return True  # who may connect is decided by check_door (the bind address, keys, TLS)


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


def check_door(host: str, port: int | None, *, no_auth: bool, tls: tuple[str, str] | None) -> None:
    """What ``serve`` calls before opening the door: without keys it binds loopback only; off
    loopback, keys travel as passwords, so TLS is required."""
    if port is None or is_loopback(host):
        return
    if no_auth:
        raise ConfigError(
            f"--no-auth would open the PostgreSQL wire door on {host} to anyone: allowed only on loopback",
            hint="bind 127.0.0.1 (the default), or drop --no-auth: clients log in with an API key",
        )
    if tls is None:
        raise ConfigError(
            f"the PostgreSQL wire door on {host} would receive API keys in clear text",
            hint="give it a certificate: --pg-tls-cert FILE --pg-tls-key FILE (or serve on 127.0.0.1)",
        )


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server context for the door (TLS 1.2 at least); a ConfigError when the files do not load."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(
            f"the PostgreSQL wire door's certificate cannot be loaded: {error}",
            hint="--pg-tls-cert takes a PEM certificate (chain), --pg-tls-key its PEM private key",
        ) from None
    return context


def start_pg_door(
    reader: SqlReading,
    host: str = "127.0.0.1",
    port: int = 5433,
    *,
    keys: KeyChecker | None = None,
    tls: tuple[str, str] | None = None,
    default_rate: tuple[float, float] | None = None,
) -> PgDoor:
    """Listen for PostgreSQL clients on ``host:port`` (``port`` 0: a free one) in a background
    thread; every statement goes through ``reader``. ``keys``: clients log in with an API key as
    their password (None: no login, for loopback); ``tls``: (certificate, key) PEM files, then
    required of every client off loopback."""
    context = tls_context(*tls) if tls is not None else None
    server = _Server((host, port), DoorConnection(reader, keys, KeyRates(default_rate)))
    server.RequestHandlerClass = DoorHandler
    server.tls, server.tls_required = context, context is not None and not is_loopback(host)
    thread = threading.Thread(target=server.serve_forever, name="gristmill-pg-door", daemon=True)
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    log.info(
        "PostgreSQL wire door listening on %s:%s (%s%s)",
        bound_host,
        bound_port,
        "API keys as passwords" if keys is not None else "no login",
        ", TLS" if context is not None else "",
    )
    return PgDoor(str(bound_host), int(bound_port), server, thread)
