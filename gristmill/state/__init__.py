"""Platform metadata: run history (SQLite WAL) and live asset versions (in the lake, with the data)."""

from gristmill.state.history import RunHistory, SQLiteHistory, open_history
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
