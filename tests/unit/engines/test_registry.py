"""The registry of engine kinds: every kind opens its engine; scratch engines fall back to DuckDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.config.settings import ProjectSettings
from gristmill.engines import lake_snapshot, no_data_yet, open_engine
from gristmill.engines.base import ArrowViews, Engine
from gristmill.engines.registry import ENGINES, EngineKind, kind, scratch_engine


def test_every_kind_is_registered_with_a_factory() -> None:
    assert "duckdb" in ENGINES
    assert all(isinstance(entry, EngineKind) for entry in ENGINES.values())


def test_open_engine_makes_the_kind_settings_name(tmp_path: Path) -> None:
    assert lake_snapshot(ProjectSettings(name="t"), tmp_path) is None  # no lake yet
    engine = open_engine(ProjectSettings(name="t"), tmp_path)
    try:
        assert isinstance(engine, Engine)
        assert engine.kind == "duckdb"
    finally:
        engine.close()
    snapshot = lake_snapshot(ProjectSettings(name="t"), tmp_path)
    assert snapshot is not None and snapshot.endswith("catalog.sqlite#0")  # the lake's first snapshot


def test_a_kind_without_a_scratch_engine_falls_back_to_duckdb_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(ENGINES, "other", EngineKind(open=ENGINES["duckdb"].open))
    engine = scratch_engine("other")
    try:
        assert engine.kind == "duckdb"
        assert isinstance(engine, ArrowViews)
    finally:
        engine.close()


def test_an_unknown_kind_is_a_bug_not_a_user_error() -> None:
    with pytest.raises(AssertionError):
        kind("nope")


def test_postgres_is_registered_and_its_unit_tests_run_on_duckdb(tmp_path: Path) -> None:
    assert ENGINES["postgres"].scratch is None and ENGINES["postgres"].empty is None
    engine = scratch_engine("postgres")
    try:
        assert engine.kind == "duckdb"
    finally:
        engine.close()


def test_no_data_yet_is_told_without_opening_the_engine(tmp_path: Path) -> None:
    settings = ProjectSettings(name="t")
    assert no_data_yet(settings, tmp_path)
    open_engine(settings, tmp_path).close()
    assert not no_data_yet(settings, tmp_path)
    server = ProjectSettings.model_validate(
        {"name": "t", "engine": {"kind": "postgres", "url": "postgresql://nobody@127.0.0.1:1/none"}}
    )
    assert not no_data_yet(server, tmp_path)  # a server engine is asked, never presumed empty
