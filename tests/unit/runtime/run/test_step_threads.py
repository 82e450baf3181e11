"""A step over small inputs runs on one DuckDB thread and one over large or unknown inputs on the
project's threads (DuckDB's other threads cost every small statement more CPU than they save).
Each model records the thread count its own statement ran with, so the engine says what it did."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from gristmill.workspace import Workspace
from tests.conftest import Cli

TOML = 'name = "t"\n[engine]\nthreads = 3\n'
SEEN = "current_setting('threads')::integer as threads"
FILES = {
    # No input asset (rows it makes itself): unknown size, the project's threads.
    "models/marts/few.sql": f"select 1 as id, {SEEN}\n",
    "models/marts/many.sql": f"select range as id, {SEEN} from range(1100000)\n",
    # 1 row in: one thread.
    "models/marts/over_few.sql": f"select id, {SEEN} from marts.few\n",
    # 1.1M rows in (more than the one-thread bound): the project's threads.
    "models/marts/over_many.sql": f"select count(*) as n, {SEEN} from marts.many\n",
}


def _threads(root: Path, asset: str) -> set[int]:
    found = Workspace(root).query(f"select distinct threads from {asset}")
    return set(found.column("threads").to_pylist())


def test_small_steps_run_on_one_thread_and_large_ones_on_the_projects(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    root = make_project(FILES, toml=TOML)
    code, out = cli("run", project=root)
    assert code == 0, out
    assert _threads(root, "marts.few") == {3}
    assert _threads(root, "marts.many") == {3}
    assert _threads(root, "marts.over_few") == {1}
    assert _threads(root, "marts.over_many") == {3}

    # Rebuilt alone, the steps learn their inputs' rows from the version rows instead.
    (root / "models/marts/over_few.sql").write_text(f"select id + 0 as id, {SEEN} from marts.few\n")
    (root / "models/marts/over_many.sql").write_text(f"select count(*) + 0 as n, {SEEN} from marts.many\n")
    code, out = cli("run", project=root)
    assert code == 0, out
    with sqlite3.connect(root / ".gristmill" / "state.sqlite") as db:
        built = {
            row[0]
            for row in db.execute(
                "SELECT asset FROM steps WHERE run_id = (SELECT max(run_id) FROM runs) AND action = 'build'"
            )
        }
    assert built == {"marts.over_few", "marts.over_many"}
    assert _threads(root, "marts.over_few") == {1}
    assert _threads(root, "marts.over_many") == {3}
