"""API keys as the workspace keeps them: shown once, stored as a digest, checked, expired, revoked."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from gristmill.errors import ConfigError, GristmillError, KeyRefused
from gristmill.workspace.keys import ApiKeys, key_state, parse_rate


def test_a_key_is_recognisable_checked_and_stored_only_as_a_digest(tmp_path: Path) -> None:
    keys = ApiKeys(tmp_path / "history.sqlite")
    created = keys.create("ci", schemas=("marts", "sales"), rate="50/s", expires=timedelta(days=30))
    assert created.token.startswith(f"gmk_{created.record.key_id}_")
    assert keys.check(created.token) == created.record
    assert created.record.schemas == ("marts", "sales") and created.record.rate == 50.0
    with pytest.raises(KeyRefused, match="unknown API key"):
        keys.check(created.token[:-2] + "zz")
    keys.close()
    rows = sqlite3.connect(tmp_path / "history.sqlite").execute("SELECT * FROM api_keys").fetchall()
    assert len(rows) == 1 and created.token.rsplit("_", 1)[1] not in repr(rows)


def test_revoked_and_expired_keys_are_refused_and_listed_as_such(tmp_path: Path) -> None:
    keys = ApiKeys(tmp_path / "history.sqlite")
    gone = keys.create("gone")
    old = keys.create("old", expires=timedelta(milliseconds=1))
    keys.revoke(f"gmk_{gone.record.key_id}")
    with pytest.raises(KeyRefused, match="is revoked"):
        keys.check(gone.token)
    with pytest.raises(KeyRefused, match="is expired"):
        keys.check(old.token)
    assert [key_state(r) for r in keys.listing()] == ["revoked", "expired"]
    with pytest.raises(GristmillError, match="no API key with id"):
        keys.revoke("gmk_ffffffffffff")


def test_rates_and_scopes_are_checked_when_written(tmp_path: Path) -> None:
    assert parse_rate("50/s") == (50.0, 50.0)
    assert parse_rate("3000/min") == (50.0, 50.0)
    assert parse_rate("6/h") == (6 / 3600, 1.0)
    with pytest.raises(ConfigError, match="not a rate"):
        parse_rate("fast")
    with pytest.raises(ConfigError, match="not a schema name"):
        ApiKeys(tmp_path / "h.sqlite").create(schemas=("marts; drop",))
