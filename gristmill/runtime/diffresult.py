"""What a data diff asks and answers: plain values for any interface (the CLI's table and JSON,
the web UI's page) to render, nothing of the engine inside."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = ("added", "removed", "changed")


@dataclass(frozen=True)
class DiffRequest:
    """One table compared between two places. ``head`` is the side under review (``env`` as it
    is now); ``base`` the reference: ``against`` (an environment, default prod) as it is now, or
    as it was at lake snapshot ``snapshot`` or at time ``as_of`` (ISO 8601)."""

    table: str
    env: str = "dev"
    against: str | None = None
    snapshot: int | None = None
    as_of: str | None = None
    key: tuple[str, ...] = ()
    """Columns identifying a row; empty: the model's declared key, else its unique check."""
    columns: tuple[str, ...] = ()
    """Compare only these columns (the key aside); empty: every column both sides have."""
    sample: int = 10
    """Rows shown of each kind of difference (and of duplicated keys)."""
    tolerance: float | None = None
    """Float columns: a change smaller than this is no change (default: compared exactly)."""


@dataclass(frozen=True)
class SchemaDiff:
    """Columns only ``head`` has, only ``base`` has, and those whose type changed, with types as
    the engine spells them."""

    added: tuple[tuple[str, str], ...] = ()
    removed: tuple[tuple[str, str], ...] = ()
    retyped: tuple[tuple[str, str, str], ...] = ()
    """(column, type in base, type in head)."""

    @property
    def equal(self) -> bool:
        return not (self.added or self.removed or self.retyped)


@dataclass(frozen=True)
class KeyProblems:
    """Rows of one side that cannot be matched one to one, left out of the comparison."""

    null_keys: int = 0
    """Rows with a NULL in a key column."""
    duplicate_keys: int = 0
    """Keys held by more than one row."""
    duplicate_rows: int = 0
    """The rows holding those keys."""
    sample: tuple[dict[str, Any], ...] = ()
    """Some duplicated keys, each with ``rows``: how many rows hold it."""

    @property
    def any(self) -> bool:
        return bool(self.null_keys or self.duplicate_keys)


@dataclass(frozen=True)
class RowDiff:
    """One differing row: its key, both sides' values of the compared columns (None for the side
    it is missing from) and, for a changed row, the columns that changed."""

    kind: str
    key: dict[str, Any]
    base: dict[str, Any] | None
    head: dict[str, Any] | None
    changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataDiff:
    """The answer: ``equal`` when schema and rows agree (rows left out for a NULL or duplicated
    key make it unequal too: nothing can vouch for them)."""

    table: str
    base: str
    """Where the reference side was read, e.g. ``prod`` or ``dev at snapshot 12``."""
    head: str
    key: tuple[str, ...]
    key_from: str
    """Where the key came from: ``--key``, the model's ``key``, or a ``unique`` check."""
    schema: SchemaDiff
    base_rows: int
    head_rows: int
    added: int
    removed: int
    changed: int
    unchanged: int
    compared: tuple[str, ...]
    """The columns compared (both sides have them; the key aside)."""
    column_changes: dict[str, int]
    """Per compared column: the rows whose value changed."""
    samples: dict[str, tuple[RowDiff, ...]]
    base_keys: KeyProblems = field(default_factory=KeyProblems)
    head_keys: KeyProblems = field(default_factory=KeyProblems)
    tolerance: float | None = None

    @property
    def equal(self) -> bool:
        return (
            self.schema.equal
            and not (self.added or self.removed or self.changed)
            and not (self.base_keys.any or self.head_keys.any)
        )

    def to_dict(self) -> dict[str, Any]:
        """The diff as JSON-ready values (``gristmill diff -o json``, the UI's API)."""
        return {
            "table": self.table,
            "base": self.base,
            "head": self.head,
            "equal": self.equal,
            "key": list(self.key),
            "key_from": self.key_from,
            "tolerance": self.tolerance,
            "schema": {
                "added": [{"column": c, "type": t} for c, t in self.schema.added],
                "removed": [{"column": c, "type": t} for c, t in self.schema.removed],
                "retyped": [{"column": c, "base": b, "head": h} for c, b, h in self.schema.retyped],
            },
            "rows": {
                "base": self.base_rows,
                "head": self.head_rows,
                "added": self.added,
                "removed": self.removed,
                "changed": self.changed,
                "unchanged": self.unchanged,
            },
            "columns": dict(self.column_changes),
            "duplicates": {
                side: {
                    "null_keys": keys.null_keys,
                    "duplicate_keys": keys.duplicate_keys,
                    "duplicate_rows": keys.duplicate_rows,
                    "sample": [dict(row) for row in keys.sample],
                }
                for side, keys in (("base", self.base_keys), ("head", self.head_keys))
            },
            "samples": {
                kind: [
                    {"key": r.key, "base": r.base, "head": r.head, "changed": list(r.changed)}
                    for r in self.samples.get(kind, ())
                ]
                for kind in KINDS
            },
        }
