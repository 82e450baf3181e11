"""Alerts: what a run's failures and recoveries say, and that they reach real webhook and SMTP
receivers on loopback, retry what may pass, and report problems without leaking secrets."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from gristmill.config import secrets
from gristmill.config.settings import AlertSettings
from gristmill.runtime.notify.alerts import Alert, Notifier, freshness_alert, run_alerts
from gristmill.runtime.run.executor import RunResult, StepResult


def _step(asset: str, status: str, reason: str = "", error: str | None = None) -> StepResult:
    return StepResult(asset, "table", "build", status, reason, error=error)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- what alerts say --------------------------------------------------------------------------------


def test_one_failure_alert_lists_every_failed_step_its_error_and_what_it_held_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GM_TEST_DB_PASSWORD", "hunter2-db-password")
    password = secrets.resolve("${env:GM_TEST_DB_PASSWORD}")
    result = RunResult(
        7,
        [
            _step("raw.orders", "success"),
            _step(
                "staging.orders", "failed", error=f"Binder Error: no column x\n  hint: password {password}"
            ),
            _step("marts.sales", "upstream_failed", "not run: upstream staging.orders failed"),
            _step("marts.report", "upstream_failed", "not run: upstream marts.sales failed"),
            _step("staging.customers", "failed", error="connection refused"),
            _step("marts.customers", "skipped", "current"),
        ],
    )
    alerts = run_alerts("shop", result, {"staging.orders": "success"})
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.kind == "failure" and alert.run_id == 7 and alert.env == "prod"
    assert alert.title == "shop: run 7 failed: 2 steps failed, 2 not run"
    assert alert.lines == (
        "staging.orders: Binder Error: no column x hint: password *** (2 downstream assets not run)",
        "staging.customers: connection refused",
    )
    assert alert.assets == ("staging.orders", "staging.customers", "marts.sales", "marts.report")
    assert password not in alert.text


def test_an_asset_held_back_by_two_failures_counts_under_both_and_unexplained_ones_get_a_line() -> None:
    result = RunResult(
        3,
        [
            _step("a", "failed", error="boom"),
            _step("b", "failed", error="bang"),
            _step("c", "upstream_failed", "not run: upstream a, b failed"),
            _step("d", "upstream_failed", "held back"),
        ],
    )
    (alert,) = run_alerts("shop", result, {}, env="dev")
    assert alert.title == "shop (dev): run 3 failed: 2 steps failed, 2 not run"
    assert alert.lines == (
        "a: boom (1 downstream asset not run)",
        "b: bang (1 downstream asset not run)",
        "1 other asset not run",
    )


def test_recovery_lists_assets_that_succeed_after_failing_last_time_and_a_clean_run_says_nothing() -> None:
    result = RunResult(
        9, [_step("a", "success"), _step("b", "switched"), _step("c", "success"), _step("d", "skipped")]
    )
    previous = {"a": "failed", "b": "failed", "c": "success", "d": "failed"}
    (alert,) = run_alerts("shop", result, previous)
    assert alert.kind == "recovery" and alert.assets == ("a", "b")
    assert alert.title == "shop: run 9 recovered 2 assets that failed last time"
    assert alert.lines == ("a: built again", "b: switched again")
    assert run_alerts("shop", result, {"a": "success"}) == []
    assert run_alerts("shop", RunResult(10), {}) == []


def test_freshness_alert_says_how_old_and_the_limit_or_that_it_was_never_built() -> None:
    stale = freshness_alert("shop", "marts.sales", timedelta(hours=26, minutes=5), timedelta(days=1))
    assert stale.kind == "freshness" and stale.assets == ("marts.sales",) and stale.run_id is None
    assert stale.title == "shop: marts.sales is stale"
    assert stale.lines == ("last built 1d 2h ago; it must be no older than 1d",)
    never = freshness_alert("shop", "marts.sales", None, timedelta(minutes=30), env="staging")
    assert never.title == "shop (staging): marts.sales is stale"
    assert never.lines == ("never built; it must be no older than 30m",)


# -- webhooks ---------------------------------------------------------------------------------------


class Receiver:
    """A webhook receiver on loopback answering each POST with the next status (200 when none left)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(json.loads(body))
                receiver.paths.append(self.path)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                reply = b"ok" if status == 200 else b"invalid_token" if status == 404 else b"busy"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver([])
    thread = threading.Thread(target=found.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


def _alert(kind: str = "failure") -> Alert:
    return Alert(kind, "shop", "shop: run 4 failed: 1 step failed", ("a: boom",), 4, ("a",), "prod")  # type: ignore[arg-type]


def test_a_webhook_receives_slack_and_teams_compatible_json(receiver: Receiver) -> None:
    notifier = Notifier({"team": AlertSettings(webhook=receiver.url())})
    assert notifier.send([_alert()]) == []
    assert receiver.received == [
        {
            "text": "shop: run 4 failed: 1 step failed\na: boom",
            "gristmill": {"kind": "failure", "project": "shop", "run_id": 4, "assets": ["a"], "env": "prod"},
        }
    ]


def test_each_route_gets_only_the_kinds_it_is_on_for(receiver: Receiver) -> None:
    notifier = Notifier(
        {
            "failures": AlertSettings(webhook=receiver.url("/failures"), on=("failure",)),
            "all": AlertSettings(webhook=receiver.url("/all")),
        }
    )
    assert notifier.send([_alert("failure"), _alert("recovery")]) == []
    assert sorted(receiver.paths) == ["/all", "/all", "/failures"]


def test_a_webhook_is_retried_after_a_server_error(receiver: Receiver) -> None:
    receiver.statuses[:] = [500]
    notifier = Notifier({"team": AlertSettings(webhook=receiver.url())})
    notifier.backoff = 0.01
    assert notifier.send([_alert()]) == []
    assert len(receiver.received) == 2


def test_a_rejected_webhook_is_not_retried_and_the_problem_hides_the_url(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.statuses[:] = [404]
    monkeypatch.setenv("GM_TEST_HOOK", receiver.url("/services/T0/B0/revoked-hook-token"))
    problems = Notifier({"team": AlertSettings(webhook="${env:GM_TEST_HOOK}")}).send([_alert()])
    assert len(receiver.received) == 1
    (problem,) = problems
    assert problem.startswith("alerts.team.webhook: failure alert not delivered")
    assert "404 Not Found (invalid_token)" in problem
    assert "hint: the webhook URL is wrong or was revoked" in problem
    assert "revoked-hook-token" not in problem and "/services" not in problem


def test_an_unreachable_webhook_is_a_problem_without_its_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GM_TEST_HOOK_TOKEN", "xoxb-very-secret-token-42")
    dead = _free_port()
    notifier = Notifier(
        {
            "team": AlertSettings(webhook=f"http://127.0.0.1:{dead}/services/${{env:GM_TEST_HOOK_TOKEN}}"),
            "literal": AlertSettings(webhook=f"http://127.0.0.1:{dead}/services/literal-token-in-config"),
        }
    )
    notifier.backoff = 0.01
    problems = notifier.send([_alert()])
    assert len(problems) == 2
    assert problems[0].startswith(
        f"alerts.team.webhook: failure alert not delivered to http://127.0.0.1:{dead}"
    )
    assert "cannot reach it (ConnectError" in problems[0] and "hint: tried 3 times" in problems[0]
    assert all("xoxb-very-secret-token-42" not in p and "literal-token-in-config" not in p for p in problems)


def test_a_missing_secret_is_a_problem_with_a_hint_not_an_exception() -> None:
    problems = Notifier({"team": AlertSettings(webhook="${env:GM_TEST_UNSET_HOOK}")}).send([_alert()])
    (problem,) = problems
    assert problem.startswith("alerts.team.webhook: environment variable GM_TEST_UNSET_HOOK is not set\n")
    assert "hint: export GM_TEST_UNSET_HOOK=" in problem


def test_alert_text_is_redacted_when_sent(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    alert = Alert("failure", "shop", "shop: run 1 failed", ("a: login as admin:late-secret-99 failed",), 1)
    monkeypatch.setenv("GM_TEST_LATE_SECRET", "late-secret-99")
    secrets.resolve("${env:GM_TEST_LATE_SECRET}")  # resolved after the alert was made
    assert Notifier({"team": AlertSettings(webhook=receiver.url())}).send([alert]) == []
    assert receiver.received[0]["text"] == "shop: run 1 failed\na: login as admin:*** failed"


# -- email ------------------------------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        return "250 OK"


@pytest.fixture
def smtp_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Inbox, int]]:
    monkeypatch.setenv("GM_TEST_SMTP_PASSWORD", "p@ss/word:with-odd-chars")

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"alerts",
            b"p@ss/word:with-odd-chars",
        )
        return AuthResult(success=ok, handled=False)  # not handled: the server answers 535

    inbox = Inbox()
    port = _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield inbox, port
    controller.stop()


def test_an_email_reaches_the_smtp_server_with_subject_and_body(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    route = AlertSettings(
        email=("oncall@example.com", "data@example.com"),
        smtp=f"smtp://alerts:${{env:GM_TEST_SMTP_PASSWORD}}@127.0.0.1:{port}",
        sender="gristmill@example.com",
    )
    assert Notifier({"mail": route}).send([_alert()]) == []
    (sender, recipients, message) = inbox.messages[0]
    assert sender == "gristmill@example.com"
    assert recipients == ["oncall@example.com", "data@example.com"]
    assert message["Subject"] == "shop: run 4 failed: 1 step failed"
    assert message["X-Gristmill-Kind"] == "failure"
    body = message.get_payload(decode=True).decode().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert body.startswith("shop: run 4 failed: 1 step failed\na: boom\n")
    assert "project: shop" in body and "run: 4" in body


def test_a_refused_login_is_a_problem_without_the_password(
    smtp_server: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, port = smtp_server
    monkeypatch.setenv("GM_TEST_WRONG_PASSWORD", "wrong-smtp-password")
    routes = {
        "mail": AlertSettings(
            email=("a@example.com",), smtp=f"smtp://alerts:${{env:GM_TEST_WRONG_PASSWORD}}@127.0.0.1:{port}"
        ),
        "literal": AlertSettings(
            email=("a@example.com",), smtp=f"smtp://alerts:literal-pw-123@127.0.0.1:{port}"
        ),
    }
    problems = Notifier(routes).send([_alert()])
    assert inbox.messages == []
    assert len(problems) == 2
    assert problems[0].startswith("alerts.mail.smtp: 1 alert not sent by email: login refused (535)")
    assert "hint: check the user and password in smtp" in problems[0]
    assert all("wrong-smtp-password" not in p and "literal-pw-123" not in p for p in problems)


def test_an_unreachable_smtp_server_or_a_bad_url_is_a_problem() -> None:
    dead = _free_port()
    routes = {
        "down": AlertSettings(email=("a@example.com",), smtp=f"smtp://127.0.0.1:{dead}"),
        "wrong": AlertSettings(email=("a@example.com",), smtp="mail.example.com:25"),
    }
    problems = Notifier(routes, timeout=2).send([_alert()])
    assert problems[0].startswith(
        f"alerts.down.smtp: 1 alert not sent by email: cannot reach 127.0.0.1:{dead}"
    )
    assert problems[1].startswith(
        "alerts.wrong.smtp: smtp must be smtp://… or smtps://…\n  hint: write smtp ="
    )


def test_tls_settings_the_server_does_not_speak_are_problems_with_hints(
    smtp_server: tuple[Inbox, int],
) -> None:
    inbox, port = smtp_server
    routes = {
        "starttls": AlertSettings(email=("a@example.com",), smtp=f"smtp://127.0.0.1:{port}?starttls=1"),
        "smtps": AlertSettings(email=("a@example.com",), smtp=f"smtps://127.0.0.1:{port}"),
    }
    starttls, smtps = Notifier(routes, timeout=5).send([_alert()])
    assert starttls.startswith(
        "alerts.starttls.smtp: 1 alert not sent by email: the server does not support it"
    )
    assert "hint: drop ?starttls=1" in starttls
    assert smtps.startswith("alerts.smtps.smtp: 1 alert not sent by email: TLS failed")
    assert inbox.messages == []
