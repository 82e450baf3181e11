"""Who may call the data API, how often, and what each call did.

``install_auth(app, keys, no_auth=...)`` puts one ASGI middleware in front of the app. On
``/api/v1/*`` it requires ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (401 without a
live key, 429 past the key's rate, with ``Retry-After``) and leaves the key's grant in the
request's state, where a router reads it (``require_schema``, 403 for a schema out of scope).
Every request, on any path, is logged once it ends: key id, method, route, status, rows (when
the handler reports them with ``report_rows``) and milliseconds. The key itself is never logged,
echoed or stored: errors name the key's public id at most.

The key store is the workspace's (``ApiKeys``), handed in; it is read on every request, so a key
revoked by ``gristmill keys revoke`` is refused from the next request of a running server. The
buckets live in this process: a server run as several processes gives each its own."""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gristmill.errors import ConfigError, GristmillError, KeyRefused

log = logging.getLogger("gristmill.server.requests")

_KEY_ID = re.compile(r"gmk_([0-9a-f]{12})_")
"""The public id at the head of a key of the right shape (``gmk_<id>_<secret>``)."""

API_PREFIX = "/api/v1"
"""The paths that require a key; /healthz, /metrics and the hooks keep their own rules."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class CheckedKey(Protocol):
    """What the server needs of a live key (the workspace's ``KeyRecord``)."""

    @property
    def key_id(self) -> str: ...

    @property
    def schemas(self) -> tuple[str, ...]: ...

    @property
    def rate(self) -> float | None: ...

    @property
    def burst(self) -> float | None: ...


class KeyChecker(Protocol):
    def check(self, token: str) -> CheckedKey:
        """The key if live, else ``KeyRefused`` saying why (never repeating the key)."""
        ...


@dataclass(frozen=True)
class Grant:
    """What a request may read: ``key_id`` None under ``--no-auth``; ``schemas`` empty: all."""

    key_id: str | None
    schemas: frozenset[str] = frozenset()

    def allows(self, schema: str) -> bool:
        return not self.schemas or schema in self.schemas


OPEN = Grant(None)
"""The grant of every request under ``--no-auth`` (and of paths outside the API)."""


def grant_of(request: Request) -> Grant:
    """The calling key's grant (``OPEN`` when the app runs without keys)."""
    grant = request.scope.get("state", {}).get("grant")
    return grant if isinstance(grant, Grant) else OPEN


class OutOfScope(Exception):
    """A request for a schema its key may not read; ``install_auth`` answers it with 403."""

    def __init__(self, grant: Grant, schema: str) -> None:
        super().__init__(f"API key gmk_{grant.key_id} may not read schema {schema!r}")
        self.error = str(self)
        self.hint = f"it may read: {', '.join(sorted(grant.schemas))}; ask for a key scoped to {schema}"


def require_schema(request: Request, schema: str) -> None:
    """Refuse (403) a schema outside the calling key's scope; a router calls it before reading."""
    grant = grant_of(request)
    if not grant.allows(schema):
        raise OutOfScope(grant, schema)


def scoped_schema(schema: str, request: Request) -> str:
    """A FastAPI dependency for routes with a ``{schema}`` path parameter: the schema, once the
    key may read it (``Depends(scoped_schema)``)."""
    require_schema(request, schema)
    return schema


def report_rows(request: Request, rows: int) -> None:
    """Tell the request log how many rows this response holds."""
    request.scope.setdefault("state", {})["rows"] = rows


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_no_auth(host: str, no_auth: bool) -> None:
    """``serve`` calls this before binding: ``--no-auth`` only on a loopback address, where
    only this machine can connect. Anywhere else a ConfigError says what to do instead."""
    if no_auth and not is_loopback(host):
        raise ConfigError(
            f"--no-auth serves the data to anyone who can reach {host}: allowed only on loopback",
            hint="bind 127.0.0.1 (the default), or drop --no-auth and hand out `gristmill keys create` keys",
        )


@dataclass
class _Bucket:
    tokens: float
    at: float = field(default_factory=time.monotonic)

    def take(self, rate: float, burst: float) -> float:
        """0 when a request may go now (one token taken), else seconds until one is there."""
        now = time.monotonic()
        self.tokens = min(burst, self.tokens + (now - self.at) * rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / rate


class ApiGuard:
    """The middleware ``install_auth`` adds (pure ASGI: no per-request task or body copy)."""

    def __init__(
        self,
        app: ASGIApp,
        keys: KeyChecker | None,
        no_auth: bool = False,
        default_rate: tuple[float, float] | None = None,
    ) -> None:
        self.app, self.keys, self.no_auth, self.default_rate = app, keys, no_auth, default_rate
        self._buckets: dict[str, _Bucket] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status = {"code": 0}

        async def send_noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            refusal = self._admit(scope, state)
            if refusal is None:
                await self.app(scope, receive, send_noting)
            else:
                await refusal(send_noting)
        finally:
            # No response started: the app raised, and the error middleware outside answers 500.
            _log_request(scope, state, status["code"] or 500, time.perf_counter() - started)

    def _admit(self, scope: Scope, state: dict[str, Any]) -> Callable[[Send], Awaitable[None]] | None:
        """None when the request may go on (its grant in ``state``), else the refusal to send."""
        path: str = scope["path"]
        if not (path == API_PREFIX or path.startswith(API_PREFIX + "/")) or self.no_auth or self.keys is None:
            state["grant"] = OPEN
            return None
        token = _presented_key(scope)
        if token is None:
            return _refusal(
                401,
                "missing API key",
                "send `Authorization: Bearer <key>` or `X-API-Key: <key>`; "
                "create one with `gristmill keys create`",
                {"www-authenticate": "Bearer"},
            )
        shaped = _KEY_ID.match(token)
        if shaped is not None:  # the public id only: a refused key is named in the log by it
            state["key_id"] = shaped[1]
        try:
            key = self.keys.check(token)
        except KeyRefused as err:
            return _refusal(
                401, err.message, "`gristmill keys list` shows the live keys", {"www-authenticate": "Bearer"}
            )
        except GristmillError as err:  # the key store cannot be read: no answer rather than a wrong one
            log.error("key store unavailable: %s", err.message)
            return _refusal(503, "the key store cannot be read", "retry shortly; see the server's log", {})
        state["grant"] = Grant(key.key_id, frozenset(key.schemas))
        rate, burst = (
            (key.rate, key.burst or max(1.0, key.rate)) if key.rate else (self.default_rate or (0, 0))
        )
        if rate:
            bucket = self._buckets.setdefault(key.key_id, _Bucket(burst))
            wait = bucket.take(rate, burst)
            if wait:
                retry = str(max(1, math.ceil(wait)))
                return _refusal(
                    429,
                    f"rate limit of API key gmk_{key.key_id} reached ({rate:g} requests/s)",
                    f"retry after {retry} s",
                    {"retry-after": retry},
                )
        return None


def _presented_key(scope: Scope) -> str | None:
    bearer = key = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            bearer = credentials.strip() if scheme.lower() == "bearer" else bearer
        elif name == b"x-api-key":
            key = value.decode("latin-1").strip()
    return bearer or key or None


def _refusal(
    status: int, error: str, hint: str, headers: dict[str, str]
) -> Callable[[Send], Awaitable[None]]:
    body = json.dumps({"error": error, "hint": hint}).encode()

    async def respond(send: Send) -> None:
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        raw += [(k.encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    return respond


def _log_request(scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
    grant = state.get("grant")
    key_id = grant.key_id if isinstance(grant, Grant) and grant.key_id else state.get("key_id")
    key = f"gmk_{key_id}" if key_id else "-"
    route = getattr(scope.get("route"), "path", None) or scope["path"]
    rows = state.get("rows")
    log.info(
        "key=%s method=%s route=%s path=%s status=%d rows=%s ms=%.2f",
        key,
        scope["method"],
        route,
        scope["path"],
        status,
        "-" if rows is None else rows,
        seconds * 1000,
        extra={"key_id": key, "route": route, "status": status, "rows": rows, "duration_ms": seconds * 1000},
    )


def install_auth(
    app: FastAPI,
    keys: KeyChecker | None,
    *,
    no_auth: bool = False,
    default_rate: tuple[float, float] | None = None,
) -> None:
    """Require keys on ``/api/v1/*`` (unless ``no_auth``: the caller has checked the host with
    ``check_no_auth``), rate-limit them and log every request. ``default_rate``: (requests per
    second, burst) for keys created without ``--rate``; None leaves them unlimited."""
    if keys is None and not no_auth:
        raise ConfigError("the data API needs its key store, or --no-auth on loopback")
    app.add_middleware(ApiGuard, keys=keys, no_auth=no_auth, default_rate=default_rate)
    app.add_exception_handler(OutOfScope, _out_of_scope)


async def _out_of_scope(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OutOfScope)
    return JSONResponse({"error": exc.error, "hint": exc.hint}, status_code=403)


# -- shared with the PostgreSQL wire door (server/pgwire), which checks keys per connection -------


def key_grant(key: CheckedKey) -> Grant:
    """What a live key may read."""
    return Grant(key.key_id, frozenset(key.schemas))


class KeyRates:
    """Per-key token buckets for callers outside the HTTP middleware (the wire door: one token
    per statement). Thread-safe enough: a bucket is touched under the lock."""

    def __init__(self, default_rate: tuple[float, float] | None = None) -> None:
        import threading

        self._default = default_rate
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def wait(self, key: CheckedKey) -> tuple[float, float]:
        """(0, rate) when one more statement may go now, else (seconds to wait, rate)."""
        rate, burst = (key.rate, key.burst or max(1.0, key.rate)) if key.rate else (self._default or (0, 0))
        if not rate:
            return 0.0, 0.0
        with self._lock:
            return self._buckets.setdefault(key.key_id, _Bucket(burst)).take(rate, burst), rate
