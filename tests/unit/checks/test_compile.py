"""Built-in checks against planted violations, with exact counts, and write-audit-publish."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gristmill.workspace import Workspace

PEOPLE = """id,email,status,team_id
1,a@x.io,active,10
2,,active,10
3,c@x.io,gone,11
3,d@x.io,weird,99
5,,banned,
6,f@x.io,active,12
6,g@x.io,active,13
"""
TEAMS = "team_id,name\n10,red\n11,blue\n12,green\n13,grey\n"
SOURCE = """
kind: files
tables:
  people: {path: data/people.csv}
  teams: {path: data/teams.csv}
"""
CHECKS = """
raw.src__people:
  - not_null: {column: email, severity: warn}
  - unique: {column: id, severity: warn}
  - unique: {columns: [id, status], severity: warn}
  - accepted_values: {column: status, values: [active, gone], severity: warn}
  - relationships: {column: team_id, to: raw.src__teams.team_id, severity: warn}
"""


def results(root: Path) -> dict[str, int]:
    run = Workspace(root).run()
    return {c.check.name: c.failures for s in run.steps for c in s.checks}


def test_each_check_counts_exactly_the_planted_violations(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE,
            "data/people.csv": PEOPLE,
            "data/teams.csv": TEAMS,
            "checks/people.yml": CHECKS,
        }
    )
    found = results(root)
    assert found["not_null(email)"] == 2
    assert found["unique(id)"] == 2  # the second 3 and the second 6
    assert found["unique(id, status)"] == 1  # only (6, active) repeats
    assert found["accepted_values(status)"] == 2  # weird, banned
    assert found["relationships(team_id -> raw.src__teams.team_id)"] == 1  # 99; a null key is not a violation


def test_warnings_publish_and_are_reported(make_project: Callable[..., Path], cli: object) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE,
            "data/people.csv": PEOPLE,
            "data/teams.csv": TEAMS,
            "checks/people.yml": CHECKS,
        }
    )
    code, out = cli("run", project=root)  # type: ignore[operator]
    assert code == 0
    assert "! raw.src__people: not_null(email) warns on 2 rows (checks/people.yml:2)" in out
    assert Workspace(root).query("select count(*) as n from raw.src__people").column("n")[0].as_py() == 7


def test_a_blocking_failure_keeps_the_published_version(
    make_project: Callable[..., Path], cli: object
) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE,
            "data/people.csv": "id,email,status,team_id\n1,a@x.io,active,10\n",
            "data/teams.csv": TEAMS,
            "checks/people.yml": "raw.src__people:\n  - unique: id\n",
        }
    )
    workspace = Workspace(root)
    assert workspace.run().ok
    (root / "data" / "people.csv").write_text(PEOPLE)
    code, out = cli("run", project=root)  # type: ignore[operator]
    assert code == 1
    assert "unique(id) failed for 2 rows" in out
    assert "previous version stays published" in out
    published = Workspace(root).query("select id, email from raw.src__people")
    assert published.to_pylist() == [{"id": 1, "email": "a@x.io"}]
    # the failed load was not recorded as the live version, so the next run tries again
    assert "source data changed" in cli("plan", project=root)[1]  # type: ignore[operator]


def test_checks_in_a_model_header(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE,
            "data/people.csv": PEOPLE,
            "data/teams.csv": TEAMS,
            "models/marts/active.sql": "-- checks:\n"
            "--   - accepted_values: {column: status, values: [active]}\n"
            "select * from raw.src__people where status = 'active'\n",
        }
    )
    run = Workspace(root).run()
    assert run.ok
    [step] = [s for s in run.steps if s.asset == "marts.active"]
    assert [(c.check.name, c.failures) for c in step.checks] == [("accepted_values(status)", 0)]
    assert step.rows == 4
