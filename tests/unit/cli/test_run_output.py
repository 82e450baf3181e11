"""What `gristmill run` prints for a large project: what it did, not every unchanged asset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import Cli


def test_a_large_run_lists_what_it_did_and_counts_the_rest(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    files = {"models/m/m00.sql": "select 1 as x\n"}
    files |= {f"models/m/m{i:02d}.sql": f"select x + 1 as x from m.m{i - 1:02d}\n" for i in range(1, 40)}
    root = make_project(files)
    assert cli("run", project=root)[0] == 0
    (root / "models" / "m" / "m39.sql").write_text("select x + 2 as x from m.m38\n")
    code, out = cli("run", project=root)
    assert code == 0, out
    assert "m.m39" in out and "m.m10" not in out
    assert "39 unchanged assets not listed" in out and "1 built, 39 skipped" in out
