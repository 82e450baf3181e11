"""The run history as one store: a domain per concern over one SQLite file.

Callers reach a domain through its attribute (``history.runs.start(...)``,
``history.schedules.claim_ticks(...)``); each domain has its own small protocol, so a store on
another database (PostgreSQL) implements the same calls domain by domain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from gristmill.state.history.api_keys import ApiKeys, SQLiteApiKeys
from gristmill.state.history.backfills import Backfills, SQLiteBackfills
from gristmill.state.history.caches import Caches, SQLiteCaches
from gristmill.state.history.quality import Quality, SQLiteQuality
from gristmill.state.history.runs import Runs, SQLiteRuns
from gristmill.state.history.schedules import Schedules, SQLiteSchedules
from gristmill.state.history.schema import Database


class RunHistory(Protocol):
    @property
    def runs(self) -> Runs: ...

    @property
    def quality(self) -> Quality: ...

    @property
    def schedules(self) -> Schedules: ...

    @property
    def backfills(self) -> Backfills: ...

    @property
    def caches(self) -> Caches: ...

    @property
    def api_keys(self) -> ApiKeys: ...

    def close(self) -> None: ...


class SQLiteHistory:
    """Every domain over one connection, one lock and one schema (``schema.MIGRATIONS``)."""

    def __init__(self, path: Path) -> None:
        self.database = Database(path)
        self.runs = SQLiteRuns(self.database)
        self.quality = SQLiteQuality(self.database)
        self.schedules = SQLiteSchedules(self.database)
        self.backfills = SQLiteBackfills(self.database)
        self.caches = SQLiteCaches(self.database)
        self.api_keys = SQLiteApiKeys(self.database)

    def close(self) -> None:
        self.database.close()


def open_history(path: Path) -> RunHistory:
    """The run history configured by ``[storage] state`` (a SQLite file today)."""
    return SQLiteHistory(path)
