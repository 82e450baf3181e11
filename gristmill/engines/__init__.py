"""Where SQL runs: one small protocol, one implementation per engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gristmill.engines.base import Engine, Relation

if TYPE_CHECKING:
    from pathlib import Path

    from gristmill.config.settings import ProjectSettings

__all__ = ["Engine", "Relation", "lake_snapshot", "open_engine"]


def lake_snapshot(settings: ProjectSettings, root: Path) -> str | None:
    """The lake's current snapshot, read without attaching it, or None when that cannot be told
    cheaply (a catalog that is not a local SQLite file, or none yet)."""
    if settings.engine.kind != "duckdb":
        return None
    from gristmill.engines.duckdb.engine import catalog_snapshot

    return catalog_snapshot(settings, root)


def open_engine(settings: ProjectSettings, root: Path, *, read_only: bool = False) -> Engine:
    """The engine ``gristmill.toml`` asks for. Registration is this explicit, greppable mapping."""
    if settings.engine.kind == "duckdb":
        from gristmill.engines.duckdb import DuckDBEngine

        return DuckDBEngine(settings, root, read_only=read_only)
    raise AssertionError(f"unreachable: engine kind {settings.engine.kind!r} passed validation")
