"""`--output json`, `--quiet` and the progress counter: what scripts and CI logs read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gristmill.cli.app import main

SOURCE = "kind: files\npath: data/people.csv\ntables:\n  people:\n    checks: [{unique: id}]\n"
MODEL = "-- checks:\n--   - not_null: x\nselect id, name, {x} as x from raw.files__people\n"
FILES = {
    "sources/files.yml": SOURCE,
    "data/people.csv": "id,name\n1,ann\n2,bob\n",
    "models/staging/people.sql": MODEL.format(x="id"),
}


def call(capsys: pytest.CaptureFixture[str], *args: str, project: Path) -> tuple[int, str, str]:
    """Exit code, stdout and stderr, apart."""
    capsys.readouterr()
    try:
        main([*args, "--project", str(project)])
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def document(out: str, kind: str) -> dict[str, Any]:
    """stdout is one JSON document and nothing else."""
    parsed = json.loads(out)
    assert parsed["format"] == f"gristmill/{kind}" and parsed["version"] == 1
    return parsed  # type: ignore[no-any-return]


def test_run_json_is_the_only_thing_on_stdout(
    make_project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(FILES)
    code, out, _ = call(capsys, "run", "--output", "json", project=root)
    assert code == 0
    run = document(out, "run")
    assert run["ok"] is True and run["status"] == "success" and run["env"] == "prod"
    assert run["summary"]["built"] == 2 and run["summary"]["checks_passed"] == 2
    steps = {s["asset"]: s for s in run["steps"]}
    assert steps["raw.files__people"]["rows"] == 2 and steps["staging.people"]["status"] == "success"
    assert [c["check"] for c in steps["staging.people"]["checks"]] == ["not_null(x)"]

    # A failing check: exit 1, and the failing rows are in the document.
    (root / "models/staging/people.sql").write_text(MODEL.format(x="nullif(id, 2)"))
    code, out, _ = call(capsys, "run", "-o", "json", project=root)
    assert code == 1
    run = document(out, "run")
    assert run["ok"] is False and run["status"] == "failed"
    [check] = {s["asset"]: s for s in run["steps"]}["staging.people"]["checks"]
    assert check["passed"] is False and check["failures"] == 1 and check["severity"] == "error"
    assert check["samples"] == [{"id": 2, "name": "bob", "x": None}]
    assert check["location"].startswith("models/staging/people.sql:")


def test_plan_check_and_ls_json(
    make_project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(FILES)
    code, out, _ = call(capsys, "plan", "-o", "json", project=root)
    assert code == 0
    plan = document(out, "plan")
    assert plan["summary"] == {"build": 2, "switch": 0, "skip": 0, "removed": 0}
    steps = {s["asset"]: s for s in plan["steps"]}
    assert steps["staging.people"]["change"] == "added" and steps["staging.people"]["action"] == "build"
    assert steps["staging.people"]["upstream"] == ["raw.files__people"]
    assert steps["raw.files__people"]["change"] is None

    assert call(capsys, "run", "-q", project=root)[0] == 0
    code, out, _ = call(capsys, "check", "-o", "json", project=root)
    assert code == 0
    check = document(out, "check")
    assert check["ok"] is True and check["summary"]["checks_passed"] == 2
    assert {a["asset"]: a["status"] for a in check["assets"]} == {
        "raw.files__people": "checked",
        "staging.people": "checked",
    }

    code, out, _ = call(capsys, "ls", "-o", "json", project=root)
    assert code == 0
    listing = document(out, "ls")
    rows = {a["asset"]: a for a in listing["assets"]}
    assert rows["staging.people"]["rows"] == 2 and rows["staging.people"]["last_status"] == "success"
    assert rows["staging.people"]["kind"] == "table" and rows["staging.people"]["built_at"]


CHATTY = """
import pyarrow as pa

from gristmill import model


@model(reads=["staging.people"])
def chatty(people: pa.Table) -> pa.Table:
    print("debugging output from user code")
    return people
"""


def test_json_stdout_holds_the_document_even_when_user_code_prints(
    make_project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project({**FILES, "models/marts/chatty.py": CHATTY})
    code, out, err = call(capsys, "run", "-o", "json", project=root)
    assert code == 0, err
    assert document(out, "run")["summary"]["built"] == 3
    assert "debugging output from user code" in err


def test_json_mode_keeps_warnings_and_errors_off_stdout(
    make_project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    passthrough = (
        "-- dialect: postgres\n-- passthrough: true\nselect list_transform([1], lambda x: x + 1) as y\n"
    )
    root = make_project({**FILES, "models/staging/odd.sql": passthrough})
    code, out, _ = call(capsys, "plan", "-o", "json", project=root)
    assert code == 0
    [warning] = document(out, "plan")["warnings"]
    assert warning.startswith("models/staging/odd.sql:3:")
    # A project error: the message on stderr, stdout stays empty for the script.
    (root / "models/staging/odd.sql").write_text("selec 1\n")
    code, out, err = call(capsys, "run", "-o", "json", project=root)
    assert code == 2 and out == "" and "models/staging/odd.sql:1:1" in err
    code, out, err = call(capsys, "ls", "-o", "yaml", project=root)
    assert code == 2 and "'yaml'" in err and "--output" in err


def test_quiet_prints_only_failures(
    make_project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(FILES)
    code, out, err = call(capsys, "run", "--quiet", project=root)
    assert (code, out, err) == (0, "", "")
    code, out, err = call(capsys, "check", "-q", project=root)
    assert (code, out, err) == (0, "", "")
    (root / "models/staging/people.sql").write_text(MODEL.format(x="nullif(id, 2)"))
    code, out, _ = call(capsys, "run", "-q", project=root)
    assert code == 1
    assert "✗ staging.people" in out and "not_null(x) failed for 1 row" in out
    assert "FAILED" in out
    assert "Run " not in out and "raw.files__people" not in out  # no table of what went well


def test_progress_counts_steps_in_a_log(
    make_project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(FILES)
    code, out, _ = call(capsys, "run", project=root)
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert lines[0].startswith("[1/2] success raw.files__people") and "2 rows" in lines[0]
    assert lines[1].startswith("[2/2] success staging.people")
