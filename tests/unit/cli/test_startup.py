"""Start-up cost a user pays on every command: `gristmill --help` must not import the data stack
(duckdb, pyarrow, sqlglot: ~0.4 CPU-s together), checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gristmill.runtime import session as workspace_session
from tests.conftest import Cli

HEAVY = ("duckdb", "pyarrow", "sqlglot", "pydantic", "numpy")


def _imported_by(argv: list[str]) -> set[str]:
    script = (
        "import json, sys\n"
        "from gristmill.cli.entry import main\n"
        f"sys.argv = {['gristmill', *argv]!r}\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('\\n' + json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_help_imports_no_data_library() -> None:
    modules = _imported_by(["--help"])
    assert "gristmill.cli.app" in modules  # the commands were registered
    assert not {m.split(".")[0] for m in modules} & set(HEAVY)


def test_a_command_help_imports_no_data_library() -> None:
    modules = _imported_by(["run", "--help"])
    # (Typer itself imports pydantic to describe a command's options.)
    assert not {m.split(".")[0] for m in modules} & (set(HEAVY) - {"pydantic"})


def test_a_csv_run_imports_no_streaming_or_rest_code(tmp_path: Path) -> None:
    """55% of a CSV load's main-thread samples were imports of modules it never used."""
    (tmp_path / "sources").mkdir()
    (tmp_path / "data.csv").write_text("id,name\n1,a\n2,b\n")
    (tmp_path / "gristmill.toml").write_text('name = "csv"\n')
    (tmp_path / "sources" / "people.yml").write_text("kind: files\ntables:\n  people: {path: data.csv}\n")
    modules = _imported_by(["run", "--project", str(tmp_path)])
    assert "gristmill.runtime.load.loader" in modules  # it did load
    unused = {
        m
        for m in modules
        if m.startswith(
            (
                "gristmill.streaming",
                "gristmill.connectors.streams",
                "gristmill.connectors.rest",
                "gristmill.connectors.kafka",
                "gristmill.connectors.nats",
                "gristmill.connectors.mqtt",
                "confluent_kafka",
                "nats",
                "paho",
            )
        )
    }
    assert not unused


def test_ls_answers_from_the_state_store_without_opening_the_lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    """`ls` after a run: the rows and versions come from the copy of the lake state the run left
    (valid while the lake's snapshot is unchanged); attaching the lake cost ~0.3-0.5 CPU-s."""
    (tmp_path / "sources").mkdir()
    (tmp_path / "data.csv").write_text("id,name\n1,a\n2,b\n")
    (tmp_path / "gristmill.toml").write_text('name = "csv"\n')
    (tmp_path / "sources" / "people.yml").write_text("kind: files\ntables:\n  people: {path: data.csv}\n")
    code, out = cli("run", project=tmp_path)
    assert code == 0, out

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("ls opened the lake")

    monkeypatch.setattr(workspace_session, "open_engine", refuse)
    code, out = cli("ls", project=tmp_path)
    assert code == 0, out
    assert "raw.people__people" in out and "success" in out
    row = next(line for line in out.splitlines() if "raw.people__people" in line)
    assert " 2 " in row  # the row count of the recorded version


def test_a_csv_load_never_imports_pyarrow_or_numpy(tmp_path: Path) -> None:
    """A CSV the engine reads itself moves no row through Python: pyarrow with numpy cost ~0.15
    CPU-s and ~30 MB of a 1M-row load's whole process. The lake's bookkeeping (versions,
    pointers, the rows a table held) is read without Arrow, on a first load and on a reload."""
    (tmp_path / "sources").mkdir()
    (tmp_path / "data.csv").write_text("id,name\n1,a\n2,b\n")
    (tmp_path / "gristmill.toml").write_text('name = "csv"\n')
    (tmp_path / "sources" / "people.yml").write_text("kind: files\ntables:\n  people: {path: data.csv}\n")
    first = _imported_by(["run", "--project", str(tmp_path)])
    assert "gristmill.runtime.load.loader" in first  # it did load
    (tmp_path / "data.csv").write_text("id,name\n1,a\n2,b\n3,c\n")
    again = _imported_by(["run", "--project", str(tmp_path)])
    assert "gristmill.runtime.load.loader" in again
    for modules in (first, again):
        assert not {m.split(".")[0] for m in modules} & {"pyarrow", "numpy"}
    code = "from gristmill.workspace import Workspace; import sys; print(Workspace(sys.argv[1]).query("
    code += "'SELECT count(*) AS n FROM raw.people__people').column('n')[0].as_py())"
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert done.stdout.strip() == "3", done.stderr
