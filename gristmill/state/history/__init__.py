"""The run history (SQLite WAL): runs and steps, data quality, schedules, backfills, caches and API keys."""

from gristmill.state.history.api_keys import ApiKeys, KeyRecord, StoredKey
from gristmill.state.history.backfills import Backfills
from gristmill.state.history.caches import Caches
from gristmill.state.history.quality import Quality
from gristmill.state.history.runs import Runs
from gristmill.state.history.schedules import Schedules
from gristmill.state.history.store import RunHistory, SQLiteHistory, open_history

__all__ = [
    "ApiKeys",
    "Backfills",
    "Caches",
    "KeyRecord",
    "Quality",
    "RunHistory",
    "Runs",
    "SQLiteHistory",
    "Schedules",
    "StoredKey",
    "open_history",
]
