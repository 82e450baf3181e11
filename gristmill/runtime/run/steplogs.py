"""Capture what each step logs, per attempt, size-capped, secrets redacted.

A step's work runs on its own thread, so a handler on the root logger can tell whose record it
is from a thread-local binding, with no change to the code that logs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from gristmill.config.secrets import redact
from gristmill.state.records import LogRecord

CAP_BYTES = 64 * 1024
"""Per attempt: a step that logs in a loop must not fill the state store."""


class StepLogs(logging.Handler):
    def __init__(self, run_id: int, cap: int = CAP_BYTES) -> None:
        super().__init__(logging.INFO)
        self._run_id = run_id
        self._cap = cap
        self._bound = threading.local()
        self._lines: dict[tuple[str, int], list[LogRecord]] = {}
        self._sizes: dict[tuple[str, int], int] = {}
        self._seq: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def capture(self, asset: str, attempt: int) -> Iterator[None]:
        """Attribute what this thread logs to ``asset``'s ``attempt``."""
        self._bound.key = (asset, attempt)
        try:
            yield
        finally:
            self._bound.key = None

    def note(self, asset: str, attempt: int, message: str, level: str = "INFO") -> None:
        """A line the runtime itself writes into a step's log."""
        self._add((asset, attempt), level, message)

    def emit(self, record: logging.LogRecord) -> None:
        key = getattr(self._bound, "key", None)
        if key is None:
            return
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call must not fail the step
            message = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            message += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        self._add(key, record.levelname, f"{record.name}: {message}")

    def _add(self, key: tuple[str, int], level: str, message: str) -> None:
        text = redact(message)
        with self._lock:
            size = self._sizes.get(key, 0)
            if size > self._cap:
                return
            if size + len(text) > self._cap:
                text = f"… log truncated at {self._cap // 1024} KiB"
                size = self._cap
            self._sizes[key] = size + len(text) + 1
            seq = self._seq.get(key, 0)
            self._seq[key] = seq + 1
            at = datetime.now(UTC).isoformat(timespec="milliseconds")
            self._lines.setdefault(key, []).append(
                LogRecord(self._run_id, key[0], key[1], seq, at, level, text)
            )

    def take(self) -> list[LogRecord]:
        """Every line captured since the last call."""
        with self._lock:
            lines = [line for group in self._lines.values() for line in group]
            self._lines.clear()
        return lines

    @contextmanager
    def installed(self) -> Iterator[StepLogs]:
        root = logging.getLogger()
        previous = root.level
        root.addHandler(self)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        try:
            yield self
        finally:
            root.removeHandler(self)
            root.setLevel(previous)
