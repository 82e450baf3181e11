"""Platform metadata: run history (SQLite WAL) and live asset versions (in the lake, with the data)."""

from pathlib import Path

from gristmill.state.history import RunHistory, SQLiteHistory
from gristmill.state.lake.versions import read_versions, record_version
from gristmill.state.records import CheckRecord, LogRecord, MetricRecord, RunRecord, StepRecord

__all__ = [
    "CheckRecord",
    "LogRecord",
    "MetricRecord",
    "RunHistory",
    "RunRecord",
    "SQLiteHistory",
    "StepRecord",
    "open_history",
    "read_versions",
    "record_version",
]


def open_history(path: Path) -> RunHistory:
    """The run history configured by ``[storage] state`` (a SQLite file today)."""
    return SQLiteHistory(path)
