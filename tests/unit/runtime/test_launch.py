"""A run plans once, on one reading of the lake's state (none while the history's copy is
current), and leaves the state it ends with for the next plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gristmill.runtime import planning
from gristmill.state.lake.lake_state import LakeState
from gristmill.workspace import Workspace


def _project(root: Path) -> Path:
    (root / "sources").mkdir()
    (root / "models" / "marts").mkdir(parents=True)
    (root / "data.csv").write_text("id,name\n1,a\n2,b\n")
    (root / "gristmill.toml").write_text('name = "once"\n')
    (root / "sources" / "people.yml").write_text("kind: files\ntables:\n  people: {path: data.csv}\n")
    (root / "models" / "marts" / "names.sql").write_text(
        "SELECT id, upper(name) AS name FROM raw.people__people\n"
    )
    return root


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts = {"plans": 0, "reads": 0}
    make, read = planning.make, LakeState.read.__func__  # type: ignore[attr-defined]

    def counting_make(*args: Any, **kwargs: Any) -> Any:
        counts["plans"] += 1
        return make(*args, **kwargs)

    def counting_read(cls: type[LakeState], engine: Any) -> LakeState:
        counts["reads"] += 1
        return read(cls, engine)

    monkeypatch.setattr(planning, "make", counting_make)
    monkeypatch.setattr(LakeState, "read", classmethod(counting_read))
    return counts


def _run(root: Path, counts: dict[str, int], **options: Any) -> tuple[str, dict[str, int]]:
    counts.update(plans=0, reads=0)
    result = Workspace(root).run(**options)
    return result.status, dict(counts)


def test_a_run_plans_once_and_reads_the_lake_once_before_it(tmp_path: Path, counted: dict[str, int]) -> None:
    root = _project(tmp_path)
    # A first run: no copy of the lake state yet, so one reading before the plan, one after.
    assert _run(root, counted) == ("success", {"plans": 1, "reads": 2})
    # Nothing changed: the history's copy answers, no engine is opened.
    assert _run(root, counted) == ("success", {"plans": 1, "reads": 0})
    # A changed source: planned on the history's copy, read once after the run for the next plan.
    (root / "data.csv").write_text("id,name\n1,a\n2,b\n3,c\n")
    assert _run(root, counted) == ("success", {"plans": 1, "reads": 1})
    assert _run(root, counted, full_refresh=True) == ("success", {"plans": 1, "reads": 1})


def test_the_plan_verb_reads_nothing_while_the_copy_is_current(
    tmp_path: Path, counted: dict[str, int]
) -> None:
    root = _project(tmp_path)
    Workspace(root).run()
    counted.update(plans=0, reads=0)
    assert not Workspace(root).plan().builds
    assert counted == {"plans": 1, "reads": 0}
