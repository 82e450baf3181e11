"""What compiling asks an engine: a dbt project asks the probe of its engine kind (the settings'
kind, asked once), a Gristmill project asks nothing, and a load without a probe gets answers that
fail with a message saying so."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill.engines.duckdb.probe import DuckDBProbe
from gristmill.errors import EngineError
from gristmill.project import load_project
from gristmill.project.probe import CompileProbe, NoProbe
from tests.conftest import write_files

DBT_PROJECT = {
    "dbt_project.yml": "name: shop\nprofile: shop\n",
    "models/days.sql": "{% set n = run_query('select 3 as n').columns[0].values()[0] %}"
    "select {{ n }} as days\n",
}


def recording(asked: list[str]) -> Callable[[str], CompileProbe]:
    def probe_for(kind: str) -> CompileProbe:
        asked.append(kind)
        return DuckDBProbe()

    return probe_for


def test_a_dbt_project_asks_the_probe_of_its_engine_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    asked: list[str] = []
    project = load_project(write_files(tmp_path / "shop", DBT_PROJECT), probe=recording(asked))
    assert asked == ["duckdb"]
    assert project.models["main.days"].error is None
    assert "select 3 as days" in project.models["main.days"].sql


def test_a_gristmill_project_asks_nothing(make_project: Callable[..., Path]) -> None:
    asked: list[str] = []
    load_project(make_project({"models/staging/a.sql": "select 1 as x\n"}), probe=recording(asked))
    assert asked == []


def test_without_a_probe_every_question_fails_saying_why() -> None:
    probe = NoProbe()
    questions = [
        lambda: probe.run_constant("select 1"),
        lambda: probe.csv_types("seed.csv", [""], None, None),
        lambda: probe.query_types("select 1", {}),
    ]
    for ask in questions:
        with pytest.raises(EngineError, match="loaded without a probe"):
            ask()
