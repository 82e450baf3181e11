"""Kill -9 a load at many points; after a rerun the lake must equal a clean run.

Each case lands a first version, then changes the source and loads again in a forked child that
is killed after a random delay (seeded, spread over the whole load). Right after the kill the
table must hold exactly the old or exactly the new version — never a mix — and a rerun must
end with exactly what a clean run produces: nothing lost, nothing doubled.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# 50 kill points per mode: GRISTMILL_CRASH_KILLS=50 (docs/loading.md); CI runs fewer to stay fast.
KILLS_PER_MODE = int(os.environ.get("GRISTMILL_CRASH_KILLS", "6"))
ROWS = 5_000

CASES: dict[str, dict[str, Any]] = {
    "replace": {"options": "", "tables": ["raw.src__t"]},
    "append_incremental": {
        "options": "    write: append\n    incremental: {cursor: at, lag: 50}\n",
        "tables": ["raw.src__t"],
    },
    "merge": {"options": "    write: merge\n    key: [id]\n", "tables": ["raw.src__t"]},
    "delete_insert": {"options": "    write: delete_insert\n    key: [id]\n", "tables": ["raw.src__t"]},
    "scd2": {"options": "    write: scd2\n    key: [id]\n", "tables": ["raw.src__t"]},
    "child_tables": {
        "options": "    write: merge\n    key: [id]\n    nested: child_tables\n",
        "tables": ["raw.src__t", "raw.src__t__items"],
    },
}
VOLATILE = ("_gm_valid_from", "_gm_valid_to", "_gm_row_hash")


def rows(version: int) -> str:
    """Version 1, then version 2: some rows changed, some new, cursor values moving forward."""
    count = ROWS + (ROWS // 4 if version == 2 else 0)
    lines = []
    for i in range(count):
        changed = version == 2 and i % 3 == 0
        lines.append(
            json.dumps(
                {
                    "id": i,
                    "at": i + (ROWS if changed else 0),
                    "v": f"v{version if changed else 1}",
                    "items": [{"sku": f"s{i % 7}", "qty": (i % 5) + version * changed}],
                }
            )
        )
    return "\n".join(lines) + "\n"


# Children come from a fork server: a fresh interpreter that never ran DuckDB (forking a process
# whose DuckDB threads hold locks could deadlock or abort the child).
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["gristmill.workspace"])


def _entry(results: Any, action: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        results.put({"ok": action(*args)})
    except BaseException as err:  # report anything, the parent asserts
        results.put({"error": repr(err)})


def in_child(action: Callable[..., Any], *args: Any) -> Any:
    """Run ``action(*args)`` in a child process and return its result."""
    results = _CONTEXT.Queue()
    child = _CONTEXT.Process(target=_entry, args=(results, action, args))
    child.start()
    result = results.get(timeout=600)
    child.join()
    assert "error" not in result, result.get("error")
    return result["ok"]


def start(action: Callable[..., Any], *args: Any) -> Any:
    """Start ``action(*args)`` in a child process without waiting (to kill it)."""
    child = _CONTEXT.Process(target=action, args=args)
    child.start()
    return child


def run(root: Path) -> bool:
    from gristmill.workspace import Workspace

    return Workspace(root).run().ok


def snapshot(root: Path, tables: list[str]) -> dict[str, list[Any]]:
    from gristmill.workspace import Workspace

    workspace = Workspace(root)
    out = {}
    for table in tables:
        result = workspace.query(f"select * from {table}")
        keep = [c for c in result.column_names if c not in VOLATILE]
        out[table] = sorted(
            json.dumps(r, sort_keys=True, default=str) for r in result.select(keep).to_pylist()
        )
    return out


@pytest.mark.parametrize("mode", list(CASES))
def test_kill_anywhere_then_rerun_equals_a_clean_run(
    mode: str, make_project: Callable[..., Path], tmp_path: Path
) -> None:
    case = CASES[mode]
    base = make_project(
        {
            "sources/src.yml": f"kind: files\ntables:\n  t:\n    path: data/t.ndjson\n{case['options']}",
            "data/t.ndjson": rows(1),
        }
    )
    assert in_child(run, base)
    before = in_child(snapshot, base, case["tables"])
    (base / "data" / "t.ndjson").write_text(rows(2))

    clean = tmp_path / "clean"
    shutil.copytree(base, clean)
    started = time.perf_counter()
    assert in_child(run, clean)
    duration = time.perf_counter() - started
    after = in_child(snapshot, clean, case["tables"])
    assert after != before

    rng = random.Random(f"{mode}-kills")
    outcomes = {"old": 0, "new": 0}
    for point in range(KILLS_PER_MODE):
        victim = tmp_path / f"kill{point}"
        shutil.copytree(base, victim)
        child = start(run, victim)
        time.sleep(rng.uniform(0, duration * 1.1))
        child.kill()  # SIGKILL, mid-load or just after it finished
        child.join()
        seen = in_child(snapshot, victim, case["tables"])
        assert seen in (before, after), f"kill point {point}: the lake holds a mix of two versions"
        outcomes["old" if seen == before else "new"] += 1
        assert in_child(run, victim)
        assert in_child(snapshot, victim, case["tables"]) == after, f"kill point {point}"
        shutil.rmtree(victim)
    assert outcomes["old"] > 0, outcomes  # the kills really landed inside the load


MODELS = {
    "models/marts/a.sql": "select id, v, at from raw.src__t\n",
    "models/marts/b.sql": "select v, count(*) as n, max(at) as last_at from marts.a group by v\n",
    "models/marts/m.sql": "-- kind: incremental\n-- key: id\nselect id, v from raw.src__t\n",
    "models/marts/d.sql": "-- kind: dimension\n-- key: id\n-- type2: [v]\nselect id, v from raw.src__t\n",
}
REBUILT = ["marts.a", "marts.b"]
STATEFUL = ["marts.m", "marts.d"]


def test_kill_a_run_of_models_anywhere_then_rerun_equals_a_clean_run(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    """Rebuilt models switch together at the end of a run: after a kill, readers see all of the old
    versions or all of the new. Every kind, after a rerun, equals a clean run."""
    base = make_project(
        {
            "sources/src.yml": "kind: files\ntables:\n  t: {path: data/t.ndjson}\n",
            "data/t.ndjson": rows(1),
            **MODELS,
        }
    )
    assert in_child(run, base)
    before = in_child(snapshot, base, REBUILT)
    (base / "data" / "t.ndjson").write_text(rows(2))

    clean = tmp_path / "clean"
    shutil.copytree(base, clean)
    started = time.perf_counter()
    assert in_child(run, clean)
    duration = time.perf_counter() - started
    after = in_child(snapshot, clean, REBUILT)
    final = in_child(snapshot, clean, REBUILT + STATEFUL)
    assert after != before

    rng = random.Random("models-kills")
    outcomes = {"old": 0, "new": 0}
    for point in range(KILLS_PER_MODE):
        victim = tmp_path / f"kill{point}"
        shutil.copytree(base, victim)
        child = start(run, victim)
        time.sleep(rng.uniform(0, duration * 1.1))
        child.kill()
        child.join()
        seen = in_child(snapshot, victim, REBUILT)
        assert seen in (before, after), f"kill point {point}: models from two different runs are served"
        outcomes["old" if seen == before else "new"] += 1
        assert in_child(run, victim)
        assert in_child(snapshot, victim, REBUILT + STATEFUL) == final, f"kill point {point}"
        shutil.rmtree(victim)
    assert outcomes["old"] > 0, outcomes
