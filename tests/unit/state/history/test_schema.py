"""The history file: migrations applied once, a newer schema refused, a damaged file named."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gristmill.errors import StateError
from gristmill.state import SQLiteHistory
from gristmill.state.history.schema import MIGRATIONS


def test_a_file_of_an_older_schema_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    for statement in filter(str.strip, MIGRATIONS[0].split(";")):
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO runs VALUES (1, 'run', '', 'success', 1, '2024-01-01', '2024-01-01', 1.0, '{}')")
    db.close()
    history = SQLiteHistory(path)
    assert [r.run_id for r in history.runs.recent()] == [1]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StateError, match="newer Gristmill"):
        SQLiteHistory(path)


def test_a_damaged_file_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(StateError, match="cannot open run history"):
        SQLiteHistory(path)
