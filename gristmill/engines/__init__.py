"""Where SQL runs: a small core protocol with optional capabilities, one folder per engine, and
the registry of engine kinds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gristmill.engines.base import Engine, Relation
from gristmill.engines.registry import kind

if TYPE_CHECKING:
    from pathlib import Path

    from gristmill.config.settings import ProjectSettings

__all__ = ["Engine", "Relation", "lake_snapshot", "open_engine"]


def lake_snapshot(settings: ProjectSettings, root: Path) -> str | None:
    """The lake's current snapshot, read without attaching it, or None when that cannot be told
    cheaply (a catalog that is not a local SQLite file, or none yet)."""
    snapshot = kind(settings.engine.kind).snapshot
    return None if snapshot is None else snapshot(settings, root)


def open_engine(settings: ProjectSettings, root: Path, *, read_only: bool = False) -> Engine:
    """The engine ``gristmill.toml`` asks for, made by its kind in the registry."""
    return kind(settings.engine.kind).open(settings, root, read_only)
