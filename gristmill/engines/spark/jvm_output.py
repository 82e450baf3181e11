"""The driver JVM's stderr, relayed to ours without the lines every start prints.

pyspark starts its JVM with our stderr, so each session would open with the JVM's "Using incubator
modules" warning and the launcher's "Setting default log level" advice, and Python workers add
pandas>=3 warnings. The JVM is started with its stderr on a pipe instead; a thread copies each line
to our stderr unless it is one of those exact lines (anything else, errors included, passes, with
known secrets blanked), and keeps the last lines for an error message when the JVM dies at start."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections import deque
from typing import IO

from gristmill.config.secrets import redact

NOISE = re.compile(
    r"WARNING: Using incubator modules: jdk\.incubator\.vector"
    r'|Setting default log level to "\w+"\.'
    r"|To adjust logging level use sc\.setLogLevel\(newLevel\)\..*"
    r"|.*: FutureWarning: PySpark does not yet fully support pandas >= 3\.0\.0\..*"
    r"|  require_minimum_pandas_version\(\)"
)
"""Whole lines, and only these (a line that merely contains such text still shows)."""


class StderrRelay:
    """Copies a JVM's stderr pipe to file descriptor 2, line by line, in a daemon thread."""

    def __init__(self, pipe: IO[bytes], keep: int = 30) -> None:
        self._pipe = pipe
        self.last_lines: deque[str] = deque(maxlen=keep)
        self._thread = threading.Thread(target=self._copy, name="spark-jvm-stderr", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        for raw in iter(self._pipe.readline, b""):
            line = raw.decode(errors="replace").rstrip("\r\n")
            if NOISE.fullmatch(line):
                continue
            line = redact(line)
            self.last_lines.append(line)
            with contextlib.suppress(OSError):  # our stderr closed: keep draining, never block the JVM
                os.write(2, (line + "\n").encode())

    def wait_closed(self, seconds: float) -> None:
        """Until the JVM closed its stderr (it exited), at most ``seconds``."""
        self._thread.join(seconds)
