"""What the parts of a load pass each other: staged rows, and the tables a load writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlglot import exp

from gristmill.engines.base import Column, Engine, Relation
from gristmill.sql import writes

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    pass


Staged = exp.Table | exp.Subquery
"""Rows ready to write: the staged table itself, or a query over it (no extra copy)."""


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


@dataclass
class Shaped:
    """One table a load writes: the asset or a child table, its rows, and (for a child) the
    index of its parent's entry."""

    relation: Relation
    staged: Staged
    parent: int | None = None
    lists: exp.Query | None = None
    """``child_tables``: each row's id and its lists (named as their child tables' suffix), so a
    row set aside is quarantined whole, its lists included."""
    aside: list[exp.Table] = field(default_factory=list)
    """``child_tables``: staged ids of this level's rows that were set aside (by the contract, or
    because their parent was): their children must not land."""


def held_columns(engine: Engine, target: exp.Table) -> list[Column]:
    scd2 = {name for name, _ in writes.SCD2_COLUMNS}
    return [(c, t) for c, t in engine.describe(target) if c not in scd2]
