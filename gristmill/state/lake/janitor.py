"""Drop physical tables nothing serves any more, and let DuckLake forget old files.

A physical table is kept while an environment points at it, or while a kept view reads it (a
view reads the physical tables it was built on, by name; a table holds its own rows). After each
run the tables it made stale — earlier builds of the same version, on older source data — go at
once; other versions stay until `gristmill gc`, so an environment can still be pointed back at
them.
"""

from __future__ import annotations

from collections.abc import Sequence

from gristmill.engines.base import Engine, Maintenance, Relation
from gristmill.plan.planner import PHYSICAL_PREFIX
from gristmill.state.lake.lake_state import LakeState
from gristmill.state.lake.versions import forget_versions


def unused(lake: LakeState, *, superseded_only: bool) -> list[str]:
    """Physical model tables no environment serves and no served view reads. With
    ``superseded_only``, only earlier builds of a version some environment serves."""
    pointed = {p for env in lake.pointers.values() for p in env.values()}
    keep: set[str] = set()
    stack = list(pointed)
    while stack:
        physical = stack.pop()
        if physical in keep:
            continue
        keep.add(physical)
        found = lake.versions.get(physical)
        if found is not None and found.parts.get("kind") == "view":
            stack.extend(found.parts.get("inputs", ()))
    candidates = [p for p in lake.versions if p.startswith(PHYSICAL_PREFIX) and p not in keep]
    if superseded_only:
        served = {lake.versions[p].parts.get("version") for p in pointed if p in lake.versions}
        candidates = [p for p in candidates if lake.versions[p].parts.get("version") in served]
    return sorted(candidates)


def drop(engine: Engine, physical: Sequence[str]) -> None:
    """Drop these tables (or views) and their version rows; call inside a transaction."""
    for name in physical:
        engine.drop(Relation.of(name))
    forget_versions(engine, physical)


def expire_files(engine: Engine, older_than_days: int) -> None:
    """Expire lake snapshots older than this and delete the files only they referenced."""
    if isinstance(engine, Maintenance):  # else the engine keeps no old versions to give back
        engine.reclaim(older_than_days)
