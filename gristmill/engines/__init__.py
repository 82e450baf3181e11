"""Where SQL runs: one small protocol, one implementation per engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gristmill.engines.base import Engine, Relation

if TYPE_CHECKING:
    from pathlib import Path

    from gristmill.config.settings import ProjectSettings

__all__ = ["Engine", "Relation", "open_engine"]


def open_engine(settings: ProjectSettings, root: Path, *, read_only: bool = False) -> Engine:
    """The engine ``gristmill.toml`` asks for. Registration is this explicit, greppable mapping."""
    if settings.engine.kind == "duckdb":
        from gristmill.engines.duckdb import DuckDBEngine

        return DuckDBEngine(settings, root, read_only=read_only)
    raise AssertionError(f"unreachable: engine kind {settings.engine.kind!r} passed validation")
