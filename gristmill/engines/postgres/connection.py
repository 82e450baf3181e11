"""The PostgreSQL engine's server: its URL (secret references resolved, the password registered
for redaction), one psycopg connection, and psycopg's errors as Gristmill's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.string import TextLoader

from gristmill.config.secrets import redact, register, resolve
from gristmill.errors import ConfigError, EngineError

_CONNECT_TIMEOUT_S = 10  # libpq waits forever by default on a host that does not answer
_URL_SETTING = "gristmill.toml [engine] url"


@dataclass(frozen=True)
class Server:
    """Where the engine connects: the resolved URL (holding the password, never shown) and how
    to name the server in messages."""

    url: str
    where: str
    """``host:port/dbname``, without user or password."""


def server(url: str, *, base: Path | None = None) -> Server:
    """The server ``url`` names (``${env:…}``/``${file:…}`` references resolved); its password is
    registered so that :func:`~gristmill.config.secrets.redact` blanks it everywhere."""
    resolved = resolve(url, base=base, where=_URL_SETTING)
    try:
        parts = conninfo_to_dict(resolved)
    except psycopg.ProgrammingError as err:
        raise ConfigError(
            f"the engine url is not a PostgreSQL URL: {redact(first_line(err))}",
            location=_URL_SETTING,
            hint='write it as url = "postgresql://user@host:5432/dbname"',
        ) from None
    register(str(parts.get("password") or ""))
    host = str(parts.get("host") or "localhost")
    where = f"{host}:{parts.get('port') or 5432}/{parts.get('dbname') or parts.get('user') or ''}"
    return Server(resolved, where)


def first_line(err: BaseException) -> str:
    """The server's message (its first line: libpq adds context and a caret on the next ones)."""
    diag = getattr(err, "diag", None)
    primary = diag.message_primary if diag is not None else None
    text = primary or str(err).strip() or type(err).__name__
    return text.splitlines()[0]


def engine_error(err: BaseException, *, doing: str | None = None) -> EngineError:
    message = redact(first_line(err))
    return EngineError(f"{doing}: {message}" if doing else message)


def connect(where: Server, *, application: str = "gristmill") -> psycopg.Connection:
    """One autocommit connection (the engine opens its transactions itself), json and jsonb read
    as their text (as the DuckDB engine reads JSON), or a clear error naming the server."""
    try:
        con = psycopg.connect(
            where.url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S, application_name=application
        )
    except psycopg.Error as err:
        reason = redact(str(err).strip().splitlines()[0]).removeprefix("connection failed: ")
        raise EngineError(
            f"cannot connect to PostgreSQL at {where.where}: {reason}",
            hint="start the server, or fix [engine] url in gristmill.toml (a password goes in a"
            ' secret reference: url = "${env:WAREHOUSE_URL}")',
        ) from None
    for name in ("json", "jsonb"):
        con.adapters.register_loader(name, TextLoader)
    return con
