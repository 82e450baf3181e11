"""Two runs of one project never write at once: the second is refused with a clear message."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gristmill.errors import ConcurrentRunError
from gristmill.runtime.run.lock import run_lock
from gristmill.workspace import Workspace

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gristmill.runtime.run.lock import run_lock
    with run_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(30)
    """
)


def test_a_second_run_is_refused_while_another_process_holds_the_project(demo: Path) -> None:
    lock = demo / ".gristmill" / "run.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConcurrentRunError) as caught:
            Workspace(demo).run()
        assert f"another run (pid {holder.pid}) is writing this project" in str(caught.value)
        assert "--wait" in (caught.value.hint or "")
    finally:
        holder.kill()
        holder.wait()
    with run_lock(lock):  # the OS released the dead holder's lock
        pass
