"""Platform metadata: run history (SQLite WAL) and live asset versions (in the lake, with the data)."""

from gristmill.state.history import History, RunRecord, StepRecord
from gristmill.state.versions import read_versions, record_version

__all__ = ["History", "RunRecord", "StepRecord", "read_versions", "record_version"]
