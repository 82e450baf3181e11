"""The HTTP layer against a real server on a free port: metrics, health check, webhooks."""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from gristmill.errors import ConfigError
from gristmill.server.app import MAX_HOOK_BODY, HookResult, create_app
from gristmill.server.http import BackgroundServer
from gristmill.server.metrics import MetricsSnapshot

TOKEN = "s3cr3t-hook-token"

SNAPSHOT = MetricsSnapshot(
    runs={"success": 7, "failed": 2, "cancelled": 1, "running": 1},
    run_seconds_sum=123.5,
    run_seconds_count=10,
    run_seconds_buckets={1.0: 2, 10.0: 5, 60.0: 9, 300.0: 10},
    steps={"success": 40, "failed": 3, "retried": 2},
    last_success={"orders": 1_700_000_000.0, "customers": 1_700_000_100.0},
    freshness_lag={"orders": 3600.0},
    freshness_limit={"orders": 7200.0},
    schedule_lag={"nightly": 1.5},
    next_tick={"nightly": 1_700_086_400.0},
    scheduler_up=True,
)


class Hooks:
    """Records webhook calls; knows the schedules ``nightly`` and ``boom`` (which fails)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, schedule: str, payload: dict[str, Any]) -> HookResult:
        self.calls.append((schedule, payload))
        if schedule == "boom":
            raise RuntimeError("database password is hunter2")
        if schedule != "nightly":
            return HookResult(accepted=False, message=f"no schedule named {schedule!r}")
        return HookResult(accepted=True, run=f"run-{len(self.calls)}")


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


@pytest.fixture
def serve(hooks: Hooks) -> Iterator[Callable[..., httpx.Client]]:
    """Start a server on a free port and return a client for it; everything stops at teardown."""
    servers: list[BackgroundServer] = []
    clients: list[httpx.Client] = []

    def start(
        *, snapshot: Callable[[], MetricsSnapshot] = lambda: SNAPSHOT, token: str | None = None
    ) -> httpx.Client:
        app = create_app(snapshot=snapshot, on_hook=hooks, token=token, project="shop")
        server = BackgroundServer(app, port=0)
        server.start()
        servers.append(server)
        client = httpx.Client(base_url=server.url, timeout=10)
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


def _samples(text: str) -> dict[str, list[Sample]]:
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def _by_label(samples: list[Sample], label: str) -> dict[str, float]:
    return {sample.labels[label]: sample.value for sample in samples}


def test_metrics_reports_the_snapshot(serve: Callable[..., httpx.Client]) -> None:
    response = serve().get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert families["gristmill_runs"].type == "counter"
    assert families["gristmill_run_duration_seconds"].type == "histogram"
    assert all(family.documentation for family in families.values())

    samples = _samples(response.text)
    assert _by_label(samples["gristmill_runs_total"], "status") == {
        "success": 7,
        "failed": 2,
        "cancelled": 1,
        "running": 1,
    }
    assert _by_label(samples["gristmill_step_attempts_total"], "status") == {
        "success": 40,
        "failed": 3,
        "retried": 2,
    }
    assert _by_label(samples["gristmill_asset_last_success_timestamp_seconds"], "asset") == {
        "orders": 1_700_000_000.0,
        "customers": 1_700_000_100.0,
    }
    assert _by_label(samples["gristmill_asset_freshness_lag_seconds"], "asset") == {"orders": 3600.0}
    assert _by_label(samples["gristmill_asset_freshness_limit_seconds"], "asset") == {"orders": 7200.0}
    assert _by_label(samples["gristmill_schedule_lag_seconds"], "schedule") == {"nightly": 1.5}
    assert _by_label(samples["gristmill_schedule_next_tick_timestamp_seconds"], "schedule") == {
        "nightly": 1_700_086_400.0
    }
    assert [sample.value for sample in samples["gristmill_scheduler_up"]] == [1]


def test_run_duration_histogram_is_cumulative(serve: Callable[..., httpx.Client]) -> None:
    samples = _samples(serve().get("/metrics").text)
    buckets = [(float(s.labels["le"]), s.value) for s in samples["gristmill_run_duration_seconds_bucket"]]
    assert buckets == [(1.0, 2), (10.0, 5), (60.0, 9), (300.0, 10), (math.inf, 10)]
    counts = [count for _, count in buckets]
    assert counts == sorted(counts)
    assert [s.value for s in samples["gristmill_run_duration_seconds_count"]] == [10]
    assert [s.value for s in samples["gristmill_run_duration_seconds_sum"]] == [123.5]


def test_histogram_without_finished_runs(serve: Callable[..., httpx.Client]) -> None:
    empty = MetricsSnapshot(
        runs={"running": 1},
        run_seconds_sum=0.0,
        run_seconds_count=0,
        run_seconds_buckets={},
        steps={},
        last_success={},
        freshness_lag={},
        freshness_limit={},
        schedule_lag={},
        next_tick={},
        scheduler_up=False,
    )
    samples = _samples(serve(snapshot=lambda: empty).get("/metrics").text)
    assert [(s.labels["le"], s.value) for s in samples["gristmill_run_duration_seconds_bucket"]] == [
        ("+Inf", 0)
    ]
    assert [s.value for s in samples["gristmill_run_duration_seconds_count"]] == [0]
    assert [s.value for s in samples["gristmill_scheduler_up"]] == [0]


def test_a_process_without_a_scheduler_leaves_scheduler_up_out(serve: Callable[..., httpx.Client]) -> None:
    from dataclasses import replace

    samples = _samples(serve(snapshot=lambda: replace(SNAPSHOT, scheduler_up=None)).get("/metrics").text)
    assert "gristmill_scheduler_up" not in samples and "gristmill_runs_total" in samples


def test_failing_snapshot_reports_scheduler_down(
    serve: Callable[..., httpx.Client], caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> MetricsSnapshot:
        raise RuntimeError("state store is locked")

    with caplog.at_level(logging.WARNING, logger="gristmill.server"):
        response = serve(snapshot=broken).get("/metrics")
    assert response.status_code == 200
    samples = _samples(response.text)
    assert list(samples) == ["gristmill_scheduler_up"]
    assert [s.value for s in samples["gristmill_scheduler_up"]] == [0]
    assert any("gristmill_scheduler_up 0" in record.getMessage() for record in caplog.records)


def test_healthz(serve: Callable[..., httpx.Client]) -> None:
    response = serve().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "project": "shop"}


def test_hook_without_token(serve: Callable[..., httpx.Client], hooks: Hooks) -> None:
    client = serve()
    empty = client.post("/hooks/nightly")
    assert empty.status_code == 202
    assert empty.json() == {"accepted": True, "run": "run-1"}
    with_payload = client.post("/hooks/nightly", json={"ref": "main", "n": 3})
    assert with_payload.status_code == 202
    assert hooks.calls == [("nightly", {}), ("nightly", {"ref": "main", "n": 3})]


def test_hook_unknown_schedule_is_404(serve: Callable[..., httpx.Client]) -> None:
    response = serve().post("/hooks/weekly", json={})
    assert response.status_code == 404
    assert response.json() == {"accepted": False, "error": "no schedule named 'weekly'"}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "request body is not valid JSON: Expecting property name"),
        (b"\xff\xfe\xfa", "request body is not valid JSON"),
        (b"[1, 2]", "request body must be a JSON object, not an array"),
        (b'"text"', "request body must be a JSON object, not a string"),
        (b"[" * 100_000 + b"]" * 100_000, "request body is not valid JSON"),
    ],
)
def test_hook_bad_json_is_400(
    serve: Callable[..., httpx.Client], hooks: Hooks, body: bytes, error: str
) -> None:
    response = serve().post("/hooks/nightly", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"].startswith(error)
    assert hooks.calls == []


def test_hook_body_over_limit_is_413(serve: Callable[..., httpx.Client], hooks: Hooks) -> None:
    client = serve()
    big = b'{"pad": "' + b"x" * MAX_HOOK_BODY + b'"}'
    assert client.post("/hooks/nightly", content=big).status_code == 413

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        yield b'{"pad": "'
        for _ in range(MAX_HOOK_BODY // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'

    assert client.post("/hooks/nightly", content=chunked()).status_code == 413
    assert hooks.calls == []


def test_hook_with_token(serve: Callable[..., httpx.Client], hooks: Hooks) -> None:
    client = serve(token=TOKEN)
    responses = [
        client.post("/hooks/nightly"),
        client.post("/hooks/nightly", headers={"Authorization": f"Bearer {TOKEN}x"}),
        client.post("/hooks/nightly", headers={"Authorization": f"Bearer {TOKEN[:-1]}"}),
        client.post("/hooks/nightly", headers={"Authorization": f"Basic {TOKEN}"}),
        client.post("/hooks/nightly", headers={"Authorization": "Bearer"}),
        client.post("/hooks/nightly", headers={b"Authorization": "Bearer s3cr3t-hook-tökén".encode()}),
    ]
    assert [r.status_code for r in responses] == [401] * len(responses)
    assert responses[0].headers["www-authenticate"] == "Bearer"
    assert hooks.calls == []

    good = {"Authorization": f"Bearer {TOKEN}"}
    accepted = client.post("/hooks/nightly", headers=good, json={"a": 1})
    assert accepted.status_code == 202
    assert accepted.json() == {"accepted": True, "run": "run-1"}
    lowercase = client.post("/hooks/nightly", headers={"authorization": f"bearer {TOKEN}"})
    assert lowercase.status_code == 202
    responses += [
        accepted,
        lowercase,
        client.post("/hooks/weekly", headers=good),
        client.post("/hooks/nightly", headers=good, content=b"{"),
        client.post("/hooks/boom", headers=good),
        client.get("/metrics"),
        client.get("/healthz"),
    ]
    assert [r.status_code for r in responses[-5:]] == [404, 400, 500, 200, 200]
    for response in responses:
        assert TOKEN not in response.text
        assert TOKEN not in str(response.headers)


def test_hook_token_may_be_non_ascii(serve: Callable[..., httpx.Client]) -> None:
    client = serve(token="tökén")
    header = "Bearer tökén".encode()
    assert client.post("/hooks/nightly", headers={b"Authorization": header}).status_code == 202
    assert client.post("/hooks/nightly", headers={"Authorization": "Bearer token"}).status_code == 401


def test_empty_token_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\[server\] token is empty"):
        create_app(snapshot=lambda: SNAPSHOT, on_hook=Hooks(), token="")


def test_failing_hook_is_500_without_details(
    serve: Callable[..., httpx.Client], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="gristmill.server"):
        response = serve().post("/hooks/boom")
    assert response.status_code == 500
    assert response.json() == {"error": "the webhook failed; see the server log"}
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert any(record.exc_info for record in caplog.records)


def test_port_in_use_names_the_setting() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = BackgroundServer(create_app(snapshot=lambda: SNAPSHOT, on_hook=Hooks()), port=port)
        with pytest.raises(ConfigError) as caught:
            server.start()
    message = str(caught.value)
    assert f"cannot listen on 127.0.0.1:{port}: port {port} is already in use" in message
    assert "[server]" in message and "gristmill.toml" in message


def test_stop_frees_the_port() -> None:
    app = create_app(snapshot=lambda: SNAPSHOT, on_hook=Hooks())
    server = BackgroundServer(app, port=0)
    assert server.port == 0
    server.start()
    port = server.port
    assert port != 0
    assert server.url == f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/healthz").status_code == 200  # keep-alive connection stays open
        server.stop()
        with pytest.raises(httpx.TransportError):
            client.get("/healthz", headers={"connection": "close"})
    with socket.create_server(("127.0.0.1", port)):
        pass
    with BackgroundServer(app, port=port) as again, httpx.Client(base_url=again.url) as client:
        assert client.get("/healthz").status_code == 200
    server.stop()  # stopping twice is harmless
