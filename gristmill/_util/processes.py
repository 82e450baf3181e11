"""Whether a process of this machine still runs: runs, schedulers and streams record their pid."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """True when a process of that pid exists (another user's included); False for pid <= 0."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process of that pid
    return True
