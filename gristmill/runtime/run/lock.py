"""One writer per project: an advisory lock file, released by the OS if the process dies."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gristmill.errors import ConcurrentRunError


@contextmanager
def run_lock(path: Path, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the project's run lock; wait up to ``wait`` seconds for another run to finish."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise ConcurrentRunError(
                        f"another run (pid {holder}) is writing this project",
                        hint="wait for it to finish, or pass --wait SECONDS",
                    ) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
