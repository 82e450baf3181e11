"""Unit tests run on a scratch engine of the project's kind, else on DuckDB in memory."""

from __future__ import annotations

import pytest

from gristmill.engines.registry import ENGINES, EngineKind
from gristmill.runtime.unittests.engine import test_engine as _engine


class CoreOnly:
    """A scratch engine without Arrow views."""

    kind = "core-only"
    dialect = "postgres"
    closed = False

    def close(self) -> None:
        CoreOnly.closed = True


def test_a_scratch_engine_without_arrow_views_gives_way_to_duckdb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ENGINES, "core-only", EngineKind(open=ENGINES["duckdb"].open, scratch=CoreOnly))  # type: ignore[arg-type]
    engine = _engine("core-only")
    try:
        assert engine.kind == "duckdb"
        assert CoreOnly.closed
    finally:
        engine.close()


def test_the_projects_kind_makes_the_engine() -> None:
    engine = _engine("duckdb")
    try:
        assert engine.kind == "duckdb"
    finally:
        engine.close()
