"""Who may reach the PostgreSQL wire door: without keys only this machine; off loopback, keys
travel as passwords, so only over TLS."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.errors import ConfigError, GristmillError, KeyRefused, RateLimited, StatementTimeout
from gristmill.server.pgwire.door import check_door, sqlstate, tls_context


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_needs_neither_keys_nor_tls(host: str) -> None:
    check_door(host, 5433, no_auth=True, tls=None)
    check_door(host, 5433, no_auth=False, tls=None)


def test_off_loopback_no_auth_is_refused_and_keys_need_tls() -> None:
    with pytest.raises(ConfigError, match="allowed only on loopback"):
        check_door("0.0.0.0", 5433, no_auth=True, tls=("c.pem", "k.pem"))
    with pytest.raises(ConfigError, match="clear text") as refused:
        check_door("10.0.0.5", 5433, no_auth=False, tls=None)
    assert "--pg-tls-cert" in (refused.value.hint or "")
    check_door("10.0.0.5", 5433, no_auth=False, tls=("c.pem", "k.pem"))
    check_door("0.0.0.0", None, no_auth=True, tls=None)  # no door, nothing to check


def test_a_certificate_that_does_not_load_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="certificate cannot be loaded"):
        tls_context(str(bad), str(bad))


def test_errors_carry_the_sqlstate_clients_map_to_exception_classes() -> None:
    assert sqlstate(StatementTimeout("slow")) == "57014"
    assert sqlstate(RateLimited("fast")) == "53400"
    assert sqlstate(KeyRefused("who")) == "28P01"
    assert sqlstate(GristmillError("refused")) == "42501"
    assert sqlstate(ValueError("bug")) == "XX000"
