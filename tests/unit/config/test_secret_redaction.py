"""redact() blanks a registered secret as written, URL-encoded and base64-encoded; log records
are redacted whichever logger they come from once install_log_redaction() has run."""

from __future__ import annotations

import base64
import logging
from urllib.parse import quote, quote_plus

import pytest

from gristmill.config import secrets

SECRET = "pl@nted s3cret/+=&"


def test_every_encoded_form_is_blanked() -> None:
    secrets.register(SECRET)
    raw = SECRET.encode()
    forms = [
        SECRET,
        quote(SECRET, safe=""),
        quote_plus(SECRET),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]
    for form in forms:
        assert secrets.redact(f"<{form}>") == "<***>", form


def test_short_values_blank_only_themselves() -> None:
    secrets.register("pw")
    assert secrets.redact("cHc pw") == "cHc ***"  # base64 of "pw" is ordinary text


def test_url_password_is_registered() -> None:
    secrets.register_url_password("postgresql://app:url-pass%40word@db/shop")
    assert secrets.redact("auth failed for url-pass@word") == "auth failed for ***"


def test_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    secrets.install_log_redaction()
    secrets.register("log-secret-77")
    with caplog.at_level(logging.INFO):
        logging.getLogger("gristmill.some.child").info("connecting with %s", "log-secret-77")
    assert "log-secret-77" not in caplog.text
    assert "connecting with ***" in caplog.text
