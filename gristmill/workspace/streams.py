"""The stream processes' own reports: each writes its figures to
``.gristmill/streams/<model>-<pid>.json`` after each turn of its loop, at most once a second (the
file's ``updated_at`` is its heartbeat); listings and the metrics endpoint read them back."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from gristmill._util.processes import process_alive


def status_folder(root: Path) -> Path:
    return root / ".gristmill" / "streams"


HEARTBEAT_TIMEOUT = 120.0
"""Seconds without a heartbeat after which a process is no longer taken to be running (or, when
its status says a longer ``--max-wait``, three of those). A running stream rewrites its figures
every second or two; a batch that takes longer than this is far outside the norm."""
RETENTION_DAYS = 7
"""Processes not running whose last word is older than this are left out of ``gristmill
streams`` unless ``--all`` is given (their files stay)."""


def process_state(status: dict[str, Any], now: float | None = None) -> str:
    """running; stopped (it ended on its own or was told to); failed (it ended on an error);
    dead (it never said it ended: on this host its pid is gone — SIGKILL, a crash —, on another
    host it has been silent too long); stalled (its pid still runs here but it has been silent
    too long: hung, or the pid now belongs to another program)."""
    if status.get("stopped"):
        return "failed" if status.get("error") else "stopped"
    now = time.time() if now is None else now
    timeout = max(HEARTBEAT_TIMEOUT, 3 * float(status.get("max_wait") or 0))
    fresh = now - float(status.get("updated_at") or 0) < timeout
    if status.get("host", socket.gethostname()) != socket.gethostname():
        return "running" if fresh else "dead"
    if not process_alive(int(status.get("pid") or 0)):
        return "dead"
    return "running" if fresh else "stalled"


def read_statuses(root: Path, *, everything: bool = True) -> list[dict[str, Any]]:
    """Every stream process's last figures, with its ``state`` (see :func:`process_state`) and
    ``alive`` (running); without ``everything``, those that ended over ``RETENTION_DAYS`` ago
    are left out."""
    found: list[dict[str, Any]] = []
    now = time.time()
    for path in sorted(status_folder(root).glob("*.json")):
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being rewritten
        if "updated_at" not in status:  # written before heartbeats: its file's time serves
            status["updated_at"] = path.stat().st_mtime
        state = process_state(status, now)
        if not everything and state != "running" and now - status["updated_at"] > RETENTION_DAYS * 86400:
            continue
        found.append({**status, "state": state, "alive": state == "running"})
    return found


class StatusFile:
    """This process's report for one stream model, replaced whole at each write (a reader never
    sees half of it)."""

    def __init__(self, root: Path, model: str) -> None:
        folder = status_folder(root)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{model.replace('/', '_')}-{os.getpid()}.json"

    def write(self, figures: dict[str, Any]) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(figures, default=str))
        temporary.replace(self.path)
