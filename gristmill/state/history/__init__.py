"""The run history (SQLite WAL): runs and steps, data quality, schedules, backfills and caches."""

from gristmill.state.history.backfills import Backfills
from gristmill.state.history.caches import Caches
from gristmill.state.history.quality import Quality
from gristmill.state.history.runs import Runs
from gristmill.state.history.schedules import Schedules
from gristmill.state.history.store import RunHistory, SQLiteHistory, open_history

__all__ = [
    "Backfills",
    "Caches",
    "Quality",
    "RunHistory",
    "Runs",
    "SQLiteHistory",
    "Schedules",
    "open_history",
]
