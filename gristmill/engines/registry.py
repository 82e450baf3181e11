"""Engine kinds and how to make each: the one greppable mapping from ``[engine] kind`` to code.

Factories import their engine when called, so naming the registry costs no import of an engine's
library (the CLI's start path stays light). A kind's ``scratch`` makes a private, empty engine
(unit tests, the conformance suite); a kind without one runs unit tests on the in-memory DuckDB
engine (``engines/duckdb/memory.py``), its models' SQL transpiled to DuckDB. A kind's ``probe``
answers what compiling a dbt project asks (``project/probe.py``); a kind without one is answered
by DuckDB in memory (``engines/duckdb/probe.py``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from gristmill.config.settings import ProjectSettings
    from gristmill.engines.base import Engine
    from gristmill.project.probe import CompileProbe


@dataclass(frozen=True)
class EngineKind:
    """How to make the engines of one kind."""

    open: Callable[[ProjectSettings, Path, bool], Engine]
    """The project's engine (``read_only``: for reading only)."""
    scratch: Callable[[], Engine] | None = None
    """A private, empty engine of this kind (None: the kind cannot make one)."""
    snapshot: Callable[[ProjectSettings, Path], str | None] | None = None
    """A token that changes whenever the project's data commits, read without opening the
    engine; None when the kind cannot tell cheaply."""
    probe: Callable[[], CompileProbe] | None = None
    """What compiling a dbt project asks, answered as this kind would (None: DuckDB answers)."""
    empty: Callable[[ProjectSettings, Path], bool] | None = None
    """The project has no data yet (nothing to read), told without opening the engine; None:
    the kind cannot tell so (a server), and a reader opens the engine."""


def _open_duckdb(settings: ProjectSettings, root: Path, read_only: bool) -> Engine:
    from gristmill.engines.duckdb.lake import open_lake

    return open_lake(settings, root, read_only=read_only)


def _scratch_duckdb() -> Engine:
    from gristmill.engines.duckdb.memory import memory_engine

    return memory_engine()


def _duckdb_probe() -> CompileProbe:
    from gristmill.engines.duckdb.probe import DuckDBProbe

    return DuckDBProbe()


def _open_postgres(settings: ProjectSettings, root: Path, read_only: bool) -> Engine:
    from gristmill.engines.postgres.open import open_postgres

    return open_postgres(settings, root, read_only=read_only)


def _open_spark(settings: ProjectSettings, root: Path, read_only: bool) -> Engine:
    from gristmill.engines.spark.open import open_spark

    return open_spark(settings, root, read_only=read_only)


def _duckdb_empty(settings: ProjectSettings, root: Path) -> bool:
    storage = settings.storage
    catalog = storage.database if storage.format == "duckdb" else storage.catalog
    return "://" not in catalog and not (root / catalog).exists()


def _duckdb_snapshot(settings: ProjectSettings, root: Path) -> str | None:
    from gristmill.engines.duckdb.lake import catalog_snapshot

    return catalog_snapshot(settings, root)


ENGINES: dict[str, EngineKind] = {
    "duckdb": EngineKind(
        open=_open_duckdb,
        scratch=_scratch_duckdb,
        snapshot=_duckdb_snapshot,
        probe=_duckdb_probe,
        empty=_duckdb_empty,
    ),
    # No scratch engine: a server database per unit test would be slow and need a server, so
    # unit tests run on DuckDB in memory.
    "postgres": EngineKind(open=_open_postgres),
    # No scratch engine either: a JVM per unit test would be far too slow.
    "spark": EngineKind(open=_open_spark),
}


def kind(name: str) -> EngineKind:
    """The registered kind ``name`` (settings validation admits only registered kinds)."""
    found = ENGINES.get(name)
    if found is None:
        raise AssertionError(f"unreachable: engine kind {name!r} passed validation")
    return found


def scratch_engine(name: str) -> Engine:
    """A private, empty engine of kind ``name``, or :func:`fallback_engine` when that kind cannot
    make one."""
    entry = ENGINES.get(name)
    return entry.scratch() if entry is not None and entry.scratch is not None else fallback_engine()


def fallback_engine() -> Engine:
    """The scratch engine of last resort: DuckDB in memory (it has every capability)."""
    return _scratch_duckdb()


def compile_probe(name: str) -> CompileProbe:
    """The probe of kind ``name`` (``project.probe.ProbeFor``), or DuckDB's in memory when that
    kind has none. Nothing is opened until a question is asked."""
    entry = ENGINES.get(name)
    return entry.probe() if entry is not None and entry.probe is not None else _duckdb_probe()


def lake_snapshot(settings: ProjectSettings, root: Path) -> str | None:
    """The lake's current snapshot, read without attaching it, or None when that cannot be told
    cheaply (a catalog that is not a local SQLite file, or none yet)."""
    snapshot = kind(settings.engine.kind).snapshot
    return None if snapshot is None else snapshot(settings, root)


def open_at_snapshot(settings: ProjectSettings, root: Path, snapshot: int) -> Engine | None:
    """The project's engine, read-only, as the lake was at ``snapshot`` (every table and view
    pinned: a server reading while runs publish); None where the storage has no snapshots (a
    DuckDB database file, a server engine)."""
    if settings.engine.kind != "duckdb" or settings.storage.format == "duckdb":
        return None
    from gristmill.engines.duckdb.lake import open_lake

    return open_lake(settings, root, read_only=True, snapshot=snapshot)


def no_data_yet(settings: ProjectSettings, root: Path) -> bool:
    """Nothing has run yet, told without opening the engine (False when the kind cannot tell)."""
    empty = kind(settings.engine.kind).empty
    return empty is not None and empty(settings, root)


def open_engine(settings: ProjectSettings, root: Path, *, read_only: bool = False) -> Engine:
    """The engine ``gristmill.toml`` asks for, made by its kind in the registry."""
    return kind(settings.engine.kind).open(settings, root, read_only)
