"""Alerts when a run fails, when failing assets recover, and when an asset goes stale: to webhooks
(Slack, Microsoft Teams or any JSON receiver) and to email.

Delivering never raises: a broken alert route must not turn into a failed run, nor hide the failure
it was meant to report. Problems come back as text naming the route, with every secret blanked.
"""

from __future__ import annotations

import re
import smtplib
import ssl
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from gristmill._util.text import shorten
from gristmill.config import secrets
from gristmill.config.settings import AlertSettings
from gristmill.errors import ConfigError

if TYPE_CHECKING:
    from gristmill.runtime.results import RunResult, StepResult

AlertKind = Literal["failure", "recovery", "freshness"]

ERROR_LIMIT = 300
"""Characters of one step's error in an alert: chat messages should stay readable."""


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    project: str
    title: str
    lines: tuple[str, ...]
    run_id: int | None = None
    assets: tuple[str, ...] = ()
    env: str = "prod"

    @property
    def text(self) -> str:
        """The title line, then one line each; secrets resolved since the alert was made are blanked too."""
        return secrets.redact("\n".join((self.title, *self.lines)))

    def payload(self) -> dict[str, Any]:
        """JSON that Slack and Teams incoming webhooks accept (``text``), plus facts for other receivers."""
        return {
            "text": self.text,
            "gristmill": {
                "kind": self.kind,
                "project": self.project,
                "run_id": self.run_id,
                "assets": list(self.assets),
                "env": self.env,
            },
        }


def run_alerts(
    project: str, result: RunResult, previous: Mapping[str, str], env: str = "prod"
) -> list[Alert]:
    """A failure alert listing every failed step, and a recovery alert for assets that failed in their
    previous run and succeed now; nothing when nothing failed and nothing recovered.

    ``previous`` maps an asset to the status of its last step before this run."""
    alerts: list[Alert] = []
    failed = [s for s in result.steps if s.status == "failed"]
    not_run = [s for s in result.steps if s.status == "upstream_failed"]
    if failed or not_run:
        alerts.append(_failure(project, result.run_id, failed, not_run, env))
    recovered = [
        s for s in result.steps if s.status in ("success", "switched") and previous.get(s.asset) == "failed"
    ]
    if recovered:
        count = _count(len(recovered), "asset")
        alerts.append(
            Alert(
                "recovery",
                project,
                f"{project}{_where(env)}: run {result.run_id} recovered {count} that failed last time",
                tuple(
                    f"{s.asset}: {'built' if s.status == 'success' else 'switched'} again" for s in recovered
                ),
                result.run_id,
                tuple(s.asset for s in recovered),
                env,
            )
        )
    return alerts


def freshness_alert(
    project: str, asset: str, age: timedelta | None, limit: timedelta, env: str = "prod"
) -> Alert:
    """An asset older than its freshness limit; ``age`` None: it was never built."""
    line = (
        f"never built; it must be no older than {_duration(limit)}"
        if age is None
        else f"last built {_duration(age)} ago; it must be no older than {_duration(limit)}"
    )
    return Alert(
        "freshness", project, f"{project}{_where(env)}: {asset} is stale", (line,), None, (asset,), env
    )


def _failure(
    project: str, run_id: int, failed: Sequence[StepResult], not_run: Sequence[StepResult], env: str
) -> Alert:
    below, unexplained = _held_back({s.asset for s in failed}, not_run)
    lines = [
        f"{step.asset}: {_one_line(step.error or step.reason)}"
        + (f" ({_count(below[step.asset], 'downstream asset')} not run)" if below[step.asset] else "")
        for step in failed
    ]
    if unexplained:
        lines.append(f"{_count(unexplained, 'other asset')} not run")
    title = f"{project}{_where(env)}: run {run_id} failed: {_count(len(failed), 'step')} failed" + (
        f", {len(not_run)} not run" if not_run else ""
    )
    assets = tuple(s.asset for s in (*failed, *not_run))
    return Alert("failure", project, title, tuple(lines), run_id, assets, env)


_BLOCKED = re.compile(r"upstream (.+?) failed")


def _held_back(failed: set[str], not_run: Sequence[StepResult]) -> tuple[Counter[str], int]:
    """How many not-run assets each failed step held back (one held back by two failed steps counts
    under both), following the executor's "upstream … failed" reasons; and how many no reason explains."""
    blocked: dict[str, tuple[str, ...]] = {}
    for step in not_run:
        match = _BLOCKED.search(step.reason)
        blocked[step.asset] = tuple(p.strip() for p in match.group(1).split(",")) if match else ()
    roots: dict[str, frozenset[str]] = {}

    def failed_above(asset: str, seen: frozenset[str]) -> frozenset[str]:
        if asset not in roots:
            found: set[str] = set()
            for parent in blocked.get(asset, ()):
                if parent in failed:
                    found.add(parent)
                elif parent in blocked and parent not in seen:
                    found |= failed_above(parent, seen | {asset})
            roots[asset] = frozenset(found)
        return roots[asset]

    counts: Counter[str] = Counter()
    unexplained = 0
    for asset in blocked:
        above = failed_above(asset, frozenset())
        counts.update(above)
        unexplained += not above
    return counts, unexplained


def _one_line(text: str) -> str:
    joined = " ".join(line.strip() for line in text.splitlines() if line.strip())
    # Redact before cutting: a secret cut in half would no longer be recognised.
    return shorten(secrets.redact(joined), line_limit=ERROR_LIMIT, total_limit=ERROR_LIMIT)


def _where(env: str) -> str:
    return "" if env == "prod" else f" ({env})"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"), (seconds % 3600 // 60, "m")]
    shown = [f"{n}{unit}" for n, unit in parts if n][:2]
    return " ".join(shown) if shown else f"{seconds}s"


class Notifier:
    """Sends each alert to every route of ``[alerts.<name>]`` whose ``on`` has its kind.

    Secret references are resolved when sending, so a rotated secret takes effect on the next alert."""

    retries = 2
    """Extra webhook attempts after a connection error, a 5xx or a 429."""
    backoff = 0.5
    """Seconds before the first retry; doubled on the next."""

    def __init__(
        self, routes: Mapping[str, AlertSettings], *, base: Path | None = None, timeout: float = 10.0
    ) -> None:
        self.routes = dict(routes)
        self.base = base
        self.timeout = timeout

    def send(self, alerts: Sequence[Alert]) -> list[str]:
        """Deliver; return what could not be delivered, one problem per route and channel (or alert)."""
        problems: list[str] = []
        for name, route in self.routes.items():
            chosen = [a for a in alerts if a.kind in route.on]
            if not chosen:
                continue
            if route.webhook:
                problems += self._guarded(f"alerts.{name}.webhook", self._webhook, route.webhook, chosen)
            if route.email:
                problems += self._guarded(f"alerts.{name}.smtp", self._email, route, chosen)
        return [secrets.redact(p) for p in problems]

    def _guarded(
        self,
        where: str,
        channel: Callable[[str, Any, list[Alert]], list[str]],
        target: Any,
        alerts: list[Alert],
    ) -> list[str]:
        try:
            return channel(where, target, alerts)
        except ConfigError as err:
            return [str(err)]
        except Exception as err:  # a broken route must never fail the run that reports through it
            return [_problem(where, f"{_count(len(alerts), 'alert')} not sent: {type(err).__name__}: {err}")]

    # -- webhooks ----------------------------------------------------------------------------------

    def _webhook(self, where: str, reference: str, alerts: list[Alert]) -> list[str]:
        url = secrets.resolve(reference, base=self.base, where=where)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                "the webhook is not an http(s) URL",
                location=where,
                hint='paste the incoming-webhook URL from Slack or Teams, e.g. webhook = "${env:SLACK_URL}"',
            )
        target = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        problems = []
        try:
            with httpx.Client(timeout=self.timeout) as client:
                for alert in alerts:
                    failure = self._post(client, url, alert.payload())
                    if failure is not None:
                        message, hint = failure
                        problems.append(
                            _problem(
                                where, f"{alert.kind} alert not delivered to {target}: {message}", hint, url
                            )
                        )
        except Exception as err:  # e.g. a URL httpx refuses; its message may hold the URL, scrubbed below
            problems.append(
                _problem(where, f"not delivered to {target}: {type(err).__name__}: {err}", None, url)
            )
        return problems

    def _post(self, client: httpx.Client, url: str, payload: dict[str, Any]) -> tuple[str, str] | None:
        """None when delivered, else what went wrong and a hint, after retrying what may pass."""
        attempts = self.retries + 1
        for attempt in range(attempts):
            try:
                response = client.post(url, json=payload)
            except httpx.TransportError as err:
                failure = (
                    f"cannot reach it ({type(err).__name__}: {err})",
                    f"tried {attempts} times; check the host is reachable from here (DNS, proxy, firewall)",
                )
                retry = True
            else:
                if response.is_success:
                    return None
                status = response.status_code
                answer = f"it answered {status} {response.reason_phrase} {_body(response)}".rstrip()
                failure = (answer, _hint(status, attempts))
                retry = status >= 500 or status == 429
            if not retry or attempt == attempts - 1:
                return failure
            time.sleep(self.backoff * 2**attempt)
        return None  # pragma: no cover - the loop always returns

    # -- email -------------------------------------------------------------------------------------

    def _email(self, where: str, route: AlertSettings, alerts: list[Alert]) -> list[str]:
        server = _smtp_server(route.smtp or "", self.base, where)
        problems: list[str] = []
        sent = 0
        try:
            with server.connect(self.timeout) as smtp:
                for alert in alerts:
                    refused = smtp.send_message(_message(alert, route.sender, route.email))
                    sent += 1
                    if refused:
                        some = ", ".join(sorted(refused))
                        problems.append(_problem(where, f"{alert.kind} alert refused for {some}", _ADDRESSES))
        except smtplib.SMTPAuthenticationError as err:
            message, hint = f"login refused ({err.smtp_code})", "check the user and password in smtp"
        except smtplib.SMTPRecipientsRefused as err:
            message, hint = f"recipients refused: {', '.join(sorted(err.recipients))}", _ADDRESSES
        except smtplib.SMTPSenderRefused as err:
            message, hint = (
                f"sender {err.sender} refused ({err.smtp_code})",
                "set sender to an address it allows",
            )
        except smtplib.SMTPNotSupportedError as err:
            message = f"the server does not support it: {err}"
            hint = (
                "drop ?starttls=1, or use smtps:// if the server speaks TLS at once"
                if "STARTTLS" in str(err)
                else "add ?starttls=1 (login often needs TLS first), or drop the user and password"
            )
        except smtplib.SMTPException as err:
            message, hint = f"{type(err).__name__}: {err}", "check the smtp URL against the server's settings"
        except ssl.SSLError as err:
            message, hint = (
                f"TLS failed: {err}",
                "smtps:// speaks TLS at once (port 465); ?starttls=1 upgrades",
            )
        except OSError as err:
            message = f"cannot reach {server.host}:{server.port} ({type(err).__name__}: {err})"
            hint = "check the host and port in smtp, and that the server is reachable from here"
        else:
            return problems
        left = _count(len(alerts) - sent, "alert")
        return [*problems, _problem(where, f"{left} not sent by email: {message}", hint, server.password)]


_ADDRESSES = "check the addresses in email"


@dataclass(frozen=True)
class _SmtpServer:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    user: str | None
    password: str | None

    def connect(self, timeout: float) -> smtplib.SMTP:
        context = ssl.create_default_context()
        smtp = (
            smtplib.SMTP_SSL(self.host, self.port, timeout=timeout, context=context)
            if self.implicit_tls
            else smtplib.SMTP(self.host, self.port, timeout=timeout)
        )
        try:
            if self.starttls:
                smtp.starttls(context=context)
            if self.user is not None:
                smtp.login(self.user, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp


_REFERENCE = secrets.REFERENCE


def _smtp_server(text: str, base: Path | None, where: str) -> _SmtpServer:
    """Parse ``smtp[s]://user:password@host:port?starttls=1`` before resolving references, so a
    password with ``@`` or ``/`` in it cannot change the URL's meaning."""
    references: list[str] = []

    def hide(match: re.Match[str]) -> str:
        references.append(match.group(0))
        return f"gmref{len(references) - 1}x"

    def part(value: str | None) -> str | None:
        if value is None:
            return None
        value = unquote(value)
        for i, reference in enumerate(references):
            value = value.replace(f"gmref{i}x", secrets.resolve(reference, base=base, where=where))
        return value

    try:
        parts = urlsplit(_REFERENCE.sub(hide, text))
        port = parts.port
    except ValueError as err:
        raise ConfigError(f"smtp is not a URL: {err}", location=where, hint=_SMTP_HINT) from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError("smtp must be smtp://… or smtps://…", location=where, hint=_SMTP_HINT)
    options = parse_qs(parts.query)
    starttls = options.get("starttls", ["0"])[-1].lower() in ("1", "true", "yes")
    implicit = parts.scheme == "smtps"
    return _SmtpServer(
        host=part(parts.hostname) or "",
        port=port or (465 if implicit else 587 if starttls else 25),
        implicit_tls=implicit,
        starttls=starttls and not implicit,
        user=part(parts.username),
        password=part(parts.password),
    )


_SMTP_HINT = 'write smtp = "smtp://user:${env:SMTP_PASSWORD}@mail.example.com:587?starttls=1"'


def _message(alert: Alert, sender: str, recipients: Sequence[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = secrets.redact(alert.title)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="gristmill")
    message["X-Gristmill-Kind"] = alert.kind
    facts = [f"project: {alert.project}", f"environment: {alert.env}"]
    if alert.run_id is not None:
        facts.append(f"run: {alert.run_id}")
    message.set_content(alert.text + "\n\n" + "\n".join(facts) + "\n")
    return message


def _body(response: httpx.Response) -> str:
    """The receiver's own words (Slack answers ``invalid_token``, ``no_service``…), kept short."""
    text = " ".join(response.text.split())
    return f"({text[:200]})" if text else ""


def _hint(status: int, attempts: int) -> str:
    if status in (401, 403, 404, 410):
        return "the webhook URL is wrong or was revoked: create a new one and update its secret"
    if status == 429 or status >= 500:
        return f"the receiver is failing or rate-limiting; tried {attempts} times"
    return 'the receiver rejected the message; it must accept JSON with a "text" field, as Slack and Teams do'


def _problem(where: str, message: str, hint: str | None = None, secret: str | None = None) -> str:
    """One problem line (and its hint); ``secret`` (a URL or password) is blanked even if it was written
    into the config as is rather than as a reference."""
    text = f"{where}: {message}" + (f"\n  hint: {hint}" if hint else "")
    if secret:
        parts = urlsplit(secret) if "://" in secret else None
        pieces = [secret]
        if parts is not None:
            pieces += [p for p in (parts.path, parts.query, parts.password) if p and len(p) > 1]
        for piece in sorted(pieces, key=len, reverse=True):
            text = text.replace(piece, "***")
    return text
