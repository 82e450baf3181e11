"""The HTTP application: the data API, Prometheus metrics, a health check and schedule webhooks.

The app knows nothing about projects, runs or the scheduler. It is handed two callables, one
that reads a metrics snapshot and one that handles a webhook, and optionally a ``TableReader``
(``server/reading.py``) for the data API, so it can be tested without a project on disk.

Plugging in: ``routers`` are mounted as they are (a metrics or SQL router builds on the same
``reader``); ``api_dependencies`` (e.g. an API-key check, ``fastapi.Depends(check_key)``) guard
every route under ``/api/v1`` (the tables API and every router whose prefix starts there), never
``/healthz``, ``/metrics`` or the webhooks, which keep their own token.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.params import Depends
from fastapi.responses import JSONResponse
from prometheus_client import generate_latest
from starlette.concurrency import run_in_threadpool

from gristmill.errors import ConfigError
from gristmill.server.metrics import MetricsSnapshot, registry
from gristmill.server.openapi import per_table_openapi
from gristmill.server.reading import ReadError, TableReader
from gristmill.server.tables import TableLimits, tables_router
from gristmill.server.tables.grammar import BadParameter

log = logging.getLogger(__name__)

MAX_HOOK_BODY = 1024 * 1024
"""Webhook payloads are small; a cap keeps a misbehaving sender from filling memory."""

# The classic text format, which is what generate_latest writes.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class HookResult:
    """What the webhook handler did: ``accepted`` with the run it started, or why not."""

    accepted: bool
    run: str | None = None
    message: str = ""


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def create_app(
    *,
    snapshot: Callable[[], MetricsSnapshot],
    on_hook: Callable[[str, dict[str, Any]], HookResult],
    token: str | None = None,
    project: str = "",
    reader: TableReader | None = None,
    routers: Sequence[APIRouter] = (),
    api_dependencies: Sequence[Depends] = (),
    limits: TableLimits | None = None,
    cursor_secret: bytes | None = None,
) -> FastAPI:
    """The app. ``token``, when set, is required as ``Authorization: Bearer <token>`` on webhooks.
    ``reader``: serve the tables API over it (``/api/v1/tables``); ``routers``: more routers;
    ``api_dependencies``: run before every ``/api/v1`` route (authentication). ``cursor_secret``
    signs page cursors (``gristmill serve`` passes the project's, kept in its state folder; random
    per process when not given, and then cursors end with the process).

    ``snapshot`` and ``on_hook`` are blocking calls (they read the state store, start runs), so
    they run in the worker thread pool and never stall the event loop.
    """
    if token is not None and not token:
        # An empty token would accept "Bearer " from anyone; most likely a secret that resolved empty.
        raise ConfigError("[server] token is empty", hint="set it to a secret, or remove it to disable auth")
    metrics = registry(snapshot)
    # Interactive docs load their scripts from a CDN; the OpenAPI schema stays available.
    app = FastAPI(title=f"Gristmill {project}".strip(), docs_url="/docs", redoc_url=None)

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        # The server logs the traceback; the client only learns that something went wrong.
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "internal server error; see the server log"}, status_code=500)

    @app.exception_handler(ReadError)
    async def _read_error(request: Request, exc: ReadError) -> JSONResponse:
        return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=400)

    @app.exception_handler(BadParameter)
    async def _bad_parameter(request: Request, exc: BadParameter) -> JSONResponse:
        return JSONResponse({"error": exc.message, "parameter": exc.parameter}, status_code=400)

    guards = list(api_dependencies)
    if reader is not None:
        secret = cursor_secret or secrets.token_bytes(32)
        app.include_router(tables_router(reader, secret=secret, limits=limits), dependencies=guards)
        per_table_openapi(app, reader)
    for extra in routers:
        guarded = (extra.prefix or "").startswith("/api/v1")
        app.include_router(extra, dependencies=guards if guarded else None)

    @app.get("/metrics")
    def get_metrics() -> Response:
        return Response(content=generate_latest(metrics), media_type=METRICS_CONTENT_TYPE)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "project": project}

    @app.post("/hooks/{schedule}", status_code=202)
    async def hook(schedule: str, request: Request) -> JSONResponse:
        if token is not None and not _authorized(request.headers.get("authorization"), token):
            return JSONResponse(
                {"error": "missing or wrong bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            payload = _parse_payload(await _read_body(request))
        except _BadRequest as err:
            return JSONResponse({"error": err.message}, status_code=err.status)
        try:
            result = await run_in_threadpool(on_hook, schedule, payload)
        except Exception:
            log.exception("webhook for schedule %r failed", schedule)
            return JSONResponse({"error": "the webhook failed; see the server log"}, status_code=500)
        if not result.accepted:
            message = result.message or f"no schedule named {schedule!r}"
            return JSONResponse({"accepted": False, "error": message}, status_code=404)
        return JSONResponse({"accepted": True, "run": result.run}, status_code=202)

    return app


def _authorized(header: str | None, token: str) -> bool:
    """Constant-time check of ``Authorization: Bearer <token>`` (scheme case-insensitive)."""
    if header is None:
        return False
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Header values arrive decoded as latin-1; compare the raw bytes the client sent.
    return hmac.compare_digest(credentials.strip().encode("latin-1"), token.encode("utf-8"))


async def _read_body(request: Request) -> bytes:
    """The body, refused past ``MAX_HOOK_BODY`` without buffering it (chunked bodies included)."""
    too_large = _BadRequest(413, f"request body is larger than {MAX_HOOK_BODY // (1024 * 1024)} MiB")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_HOOK_BODY:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_HOOK_BODY:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_payload(body: bytes) -> dict[str, Any]:
    """An empty body is an empty payload; anything else must be a JSON object."""
    if not body.strip():
        return {}
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as err:
        raise _BadRequest(400, f"request body is not valid JSON: {err}") from None
    except UnicodeDecodeError:
        raise _BadRequest(400, "request body is not valid JSON: it is not UTF-8 text") from None
    except RecursionError:
        raise _BadRequest(400, "request body is not valid JSON: it is nested too deeply") from None
    if not isinstance(payload, dict):
        raise _BadRequest(400, f"request body must be a JSON object, not {_json_type(payload)}")
    return payload


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"
