"""Keys on the data API against a real uvicorn on loopback: 401 without a live key, 403 out of
scope, 429 past the rate, a revocation refused at the next request, every request logged with
the key's id and never the key."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request

from gristmill.errors import ConfigError
from gristmill.server.auth import check_no_auth, grant_of, install_auth, report_rows, scoped_schema
from gristmill.server.http import BackgroundServer
from gristmill.workspace.keys import ApiKeys


def tiny_app() -> FastAPI:
    """A stand-in for the data API: one table route that honours the key's scope and reports rows."""
    app = FastAPI()
    router = APIRouter(prefix="/api/v1")

    @router.get("/tables/{schema}/{name}")
    def table(name: str, request: Request, schema: str = Depends(scoped_schema)) -> dict[str, object]:
        report_rows(request, 2)
        return {"table": f"{schema}.{name}", "key": grant_of(request).key_id, "rows": [[1], [2]]}

    app.include_router(router)

    @app.get("/healthz")
    def health() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[ApiKeys]:
    store = ApiKeys(tmp_path / "state" / "history.sqlite")
    yield store
    store.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., httpx.Client]]:
    servers: list[BackgroundServer] = []
    clients: list[httpx.Client] = []

    def start(keys: ApiKeys | None, *, no_auth: bool = False) -> httpx.Client:
        app = tiny_app()
        install_auth(app, keys, no_auth=no_auth)
        server = BackgroundServer(app, "127.0.0.1", 0)
        server.start()
        servers.append(server)
        clients.append(httpx.Client(base_url=server.url, timeout=10))
        return clients[-1]

    yield start
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


def test_a_request_without_a_live_key_is_refused_with_401(
    keys: ApiKeys, serve: Callable[..., httpx.Client]
) -> None:
    client = serve(keys)
    missing = client.get("/api/v1/tables/marts/orders")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"] == "missing API key"
    assert "gristmill keys create" in missing.json()["hint"]
    assert client.get("/api/v1/tables/marts/orders", headers={"x-api-key": "hunter2"}).status_code == 401
    forged = "gmk_0123456789ab_" + "A" * 43
    wrong = client.get("/api/v1/tables/marts/orders", headers={"authorization": f"Bearer {forged}"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "unknown API key gmk_0123456789ab"
    expired = keys.create("old", expires=timedelta(milliseconds=1)).token
    answer = client.get("/api/v1/tables/marts/orders", headers={"x-api-key": expired})
    assert answer.status_code == 401 and answer.json()["error"].endswith("is expired")
    assert client.get("/healthz").status_code == 200  # outside the API: no key needed


def test_a_live_key_reads_by_either_header_and_its_id_reaches_the_handler(
    keys: ApiKeys, serve: Callable[..., httpx.Client]
) -> None:
    created = keys.create("ci")
    client = serve(keys)
    by_bearer = client.get(
        "/api/v1/tables/marts/orders", headers={"authorization": f"Bearer {created.token}"}
    )
    by_header = client.get("/api/v1/tables/marts/orders", headers={"x-api-key": created.token})
    assert by_bearer.status_code == by_header.status_code == 200
    assert by_bearer.json()["key"] == created.record.key_id


def test_a_schema_outside_the_keys_scope_is_403(keys: ApiKeys, serve: Callable[..., httpx.Client]) -> None:
    created = keys.create("sales only", schemas=("sales",))
    token = created.token
    client = serve(keys)
    assert client.get("/api/v1/tables/sales/orders", headers={"x-api-key": token}).status_code == 200
    refused = client.get("/api/v1/tables/hr/salaries", headers={"x-api-key": token})
    assert refused.status_code == 403
    assert refused.json()["error"] == f"API key gmk_{created.record.key_id} may not read schema 'hr'"
    assert "it may read: sales" in refused.json()["hint"]


def test_past_its_rate_a_key_gets_429_with_retry_after(
    keys: ApiKeys, serve: Callable[..., httpx.Client]
) -> None:
    slow = keys.create("slow", rate="3/min").token  # a bucket of one request, refilled every 20 s
    other = keys.create("other").token
    client = serve(keys)
    assert client.get("/api/v1/tables/marts/a", headers={"x-api-key": slow}).status_code == 200
    limited = client.get("/api/v1/tables/marts/a", headers={"x-api-key": slow})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 20
    assert "rate limit" in limited.json()["error"]
    assert (
        client.get("/api/v1/tables/marts/a", headers={"x-api-key": other}).status_code == 200
    )  # its own bucket


def test_a_revoked_key_is_refused_at_its_next_request(
    keys: ApiKeys, serve: Callable[..., httpx.Client]
) -> None:
    created = keys.create("leaked")
    client = serve(keys)
    assert client.get("/api/v1/tables/marts/a", headers={"x-api-key": created.token}).status_code == 200
    keys.revoke(f"gmk_{created.record.key_id}")
    refused = client.get("/api/v1/tables/marts/a", headers={"x-api-key": created.token})
    assert refused.status_code == 401 and refused.json()["error"].endswith("is revoked")


def test_requests_are_logged_with_the_key_id_and_the_key_appears_nowhere(
    keys: ApiKeys, serve: Callable[..., httpx.Client], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    created = keys.create("ci", schemas=("marts",))
    secret = created.token.rsplit("_", 1)[1]
    client = serve(keys)
    seen: list[str] = []
    with caplog.at_level(logging.INFO, logger="gristmill.server.requests"):
        for path in ("/api/v1/tables/marts/orders", "/api/v1/tables/hr/pay"):
            seen.append(client.get(path, headers={"x-api-key": created.token}).text)
        keys.revoke(created.record.key_id)
        seen.append(client.get("/api/v1/tables/marts/orders", headers={"x-api-key": created.token}).text)
        seen.append(
            client.get("/api/v1/tables/marts/orders", headers={"x-api-key": created.token + "x"}).text
        )
        lines = _request_lines(caplog, 4)  # inside: the last line is written after its response
    first = lines[0]
    assert f"key=gmk_{created.record.key_id}" in first and "route=/api/v1/tables/{schema}/{name}" in first
    assert "status=200" in first and "rows=2" in first and "ms=" in first
    assert "status=403" in lines[1] and "status=401" in lines[2]
    # a refused key is named by its public id too (revoked, then a wrong secret), never "-"
    assert all(f"key=gmk_{created.record.key_id}" in line for line in lines[1:])
    stored = b"".join(p.read_bytes() for p in (tmp_path / "state").iterdir())
    everything = caplog.text + "".join(seen) + "".join(lines)
    assert secret not in everything and secret.encode() not in stored
    assert created.record.key_id.encode() in stored  # the row is there, by its id


def test_no_auth_serves_without_keys_and_only_on_loopback(serve: Callable[..., httpx.Client]) -> None:
    for host in ("127.0.0.1", "localhost", "::1"):
        check_no_auth(host, True)
    check_no_auth("0.0.0.0", False)
    with pytest.raises(ConfigError, match="only on loopback"):
        check_no_auth("0.0.0.0", True)
    with pytest.raises(ConfigError, match="only on loopback"):
        check_no_auth("192.168.1.20", True)
    client = serve(None, no_auth=True)
    assert client.get("/api/v1/tables/hr/pay").json()["key"] is None


def test_a_refused_token_without_the_key_shape_is_logged_without_an_id(
    keys: ApiKeys, serve: Callable[..., httpx.Client], caplog: pytest.LogCaptureFixture
) -> None:
    client = serve(keys)
    with caplog.at_level(logging.INFO, logger="gristmill.server.requests"):
        assert client.get("/api/v1/tables/marts/a", headers={"x-api-key": "hunter2"}).status_code == 401
        lines = _request_lines(caplog, 1)  # inside: the line is written after the response
    assert "key=- " in lines[0] and "hunter2" not in caplog.text


def _request_lines(caplog: pytest.LogCaptureFixture, count: int) -> list[str]:
    """The request log's lines once ``count`` are there: a request is logged after its response
    is sent, so the client can read the answer a moment before the line is written."""
    deadline = time.monotonic() + 5
    while True:
        lines = [r.getMessage() for r in caplog.records if r.name == "gristmill.server.requests"]
        if len(lines) >= count or time.monotonic() > deadline:
            assert len(lines) == count, lines
            return lines
        time.sleep(0.01)
