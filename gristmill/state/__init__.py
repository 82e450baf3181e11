"""Platform metadata: run history (SQLite WAL) and live asset versions (in the lake, with the data)."""

from pathlib import Path

from gristmill.state.base import RunHistory
from gristmill.state.history import SQLiteHistory
from gristmill.state.records import CheckRecord, LogRecord, MetricRecord, RunRecord, StepRecord
from gristmill.state.versions import read_versions, record_version

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
