"""HTTP for REST sources: one httpx client per source, a rate limiter, retries with backoff and
error messages that name the URL but never a secret."""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from gristmill.config.secrets import redact
from gristmill.connectors.rest.config import Retries
from gristmill.errors import SourceError, TransientSourceError

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

# Values that are secret without coming from a ${...} reference (an OAuth2 access token, a key
# written in the file) and query parameters that carry keys; both are scrubbed from all text shown.
_hidden_values: set[str] = set()
_hidden_params: set[str] = set()


def hide(value: str | None = None, *, param: str | None = None) -> None:
    if value:
        _hidden_values.add(value)
    if param:
        _hidden_params.add(param)


def scrub(text: str) -> str:
    """``text`` without any secret value and with the value of every key parameter masked."""
    text = redact(text)
    for value in sorted(_hidden_values, key=len, reverse=True):
        text = text.replace(value, "***")
    for param in _hidden_params:
        text = re.sub(rf"([?&]{re.escape(param)}=)[^&#\s\"']*", r"\1***", text)
    return text


class _ScrubLogRecords(logging.Filter):
    """httpx logs every request URL at INFO; an API key in the query must not reach the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        return True


if not any(isinstance(f, _ScrubLogRecords) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_ScrubLogRecords())


class RateLimiter:
    """At most ``per_second`` requests per second: each request takes the next free time slot."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta seconds or an HTTP date), if any."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def backoff(attempt: int, policy: Retries) -> float:
    """Exponential backoff with jitter (half fixed, half random) so clients do not retry in step."""
    delay = policy.backoff * 2**attempt
    return min(policy.max_wait, delay / 2 + random.uniform(0, delay / 2))


class Http:
    def __init__(
        self,
        *,
        headers: Mapping[str, str],
        auth: httpx.Auth | None,
        timeout: float,
        retries: Retries,
        rate_limit: float | None,
        credentials: str,
    ) -> None:
        self.client = httpx.Client(headers=dict(headers), auth=auth, timeout=timeout, follow_redirects=True)
        self.retries = retries
        self.limiter = RateLimiter(rate_limit)
        self.credentials = credentials
        """Where the credentials come from (references only), for the hint of a 401 or 403."""

    def __repr__(self) -> str:
        return f"Http(retries={self.retries.max}, min_interval={self.limiter.interval:.3f}s)"

    def send(
        self,
        method: str,
        url: str,
        what: str,
        *,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
    ) -> httpx.Response:
        """One request, retried on busy or failing servers; any other failure is a SourceError."""
        request = self.client.build_request(method, url, data=data, headers=headers)
        shown = scrub(str(request.url))
        attempts = self.retries.max + 1
        for attempt in range(attempts):
            self.limiter.wait()
            try:
                response = self.client.send(request, auth=httpx.USE_CLIENT_DEFAULT if authenticated else None)
            except _RETRY_ERRORS as err:
                problem = f"{type(err).__name__}: {err}".rstrip(": ")
                wait = backoff(attempt, self.retries)
            except httpx.HTTPError as err:
                raise SourceError(f"{what}: {method} {shown} failed: {scrub(str(err))}") from None
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in RETRY_STATUSES:
                    raise self._refused(response, method, shown, what)
                problem = f"HTTP {response.status_code} {response.reason_phrase}".strip()
                asked = retry_after(response.headers.get("Retry-After"))
                wait = (
                    min(asked, self.retries.max_wait) if asked is not None else backoff(attempt, self.retries)
                )
            if attempt + 1 < attempts:
                logger.warning(
                    "%s: %s %s: %s; retry %d of %d in %.1f s",
                    what,
                    method,
                    shown,
                    scrub(problem),
                    attempt + 1,
                    self.retries.max,
                    wait,
                )
                time.sleep(wait)
        raise TransientSourceError(
            f"{what}: {method} {shown} still failed after {attempts} attempt{'s' * (attempts > 1)}: "
            f"{scrub(problem)}",
            hint="the API is busy or unreachable; run again later, "
            "or allow more time with retries: {max: …, max_wait: …}",
        )

    def _refused(self, response: httpx.Response, method: str, shown: str, what: str) -> SourceError:
        status = f"HTTP {response.status_code} {response.reason_phrase}".strip()
        if response.status_code in (401, 403):
            return SourceError(
                f"{what}: {method} {shown} was refused: {status}",
                hint=f"check the credentials ({self.credentials}) and that they may read this endpoint",
            )
        return SourceError(f"{what}: {method} {shown} failed: {status}: {snippet(response)}")

    def close(self) -> None:
        self.client.close()


def snippet(response: httpx.Response, length: int = 80) -> str:
    """The start of a response body on one line, for error messages."""
    text = " ".join(response.content[: length * 4].decode("utf-8", "replace").split())
    text = scrub(text)
    return repr(text[:length] + ("…" if len(text) > length else "")) if text else "(empty body)"


def join_url(base: str, path: str) -> str:
    """``path`` under ``base`` (``/api`` + ``/invoices`` -> ``/api/invoices``); a full URL as is."""
    if re.match(r"^[a-z][a-z0-9+.-]*://", path, re.IGNORECASE):
        return path
    return f"{base.rstrip('/')}/{path.lstrip('/')}" if path else base


def query_value(value: Any) -> str:
    """A query parameter as the API expects it: booleans as true/false, like JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
