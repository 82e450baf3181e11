"""What a user declares, as plain data: sources, models, checks. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

Severity = Literal["error", "warn"]
WriteMode = Literal["append", "replace", "merge", "delete_insert", "scd2"]
Contract = Literal["evolve", "freeze", "quarantine", "discard"]
Nested = Literal["struct", "json", "child_tables"]


@dataclass(frozen=True)
class CheckSpec:
    """One check on one asset, e.g. ``not_null(customer_key)``."""

    kind: str
    asset: str
    columns: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    severity: Severity = "error"
    location: str = ""

    @property
    def name(self) -> str:
        args = ", ".join(self.columns)
        if "to" in self.params:
            args += f" -> {self.params['to']}"
        return f"{self.kind}({args})"


@dataclass(frozen=True)
class Incremental:
    """Load only rows whose ``cursor`` is at or past the last committed value minus ``lag``."""

    cursor: str
    """The cursor column, by its landed (snake_case) name."""
    lag: timedelta | float | None = None
    """How far behind the last cursor to start again, for rows that commit late."""
    initial: Any = None
    """Where the first load starts; everything when unset."""


@dataclass(frozen=True)
class LoadSpec:
    """How a source table is written into the lake: the same keys for every kind of source."""

    write: WriteMode = "replace"
    key: tuple[str, ...] = ()
    """Landed column names identifying a row (merge, delete_insert, scd2)."""
    incremental: Incremental | None = None
    contract: Contract = "evolve"
    """What to do when the source schema changes: evolve, freeze (fail), quarantine, discard."""
    nested: Nested = "struct"
    """Nested records as STRUCT/LIST columns, as JSON columns, or as child tables."""
    max_depth: int | None = None
    """Nesting deeper than this lands as JSON."""


LOAD_KEYS = ("write", "key", "incremental", "contract", "nested", "max_depth")


@dataclass(frozen=True)
class SourceTable:
    """One table a source lands, as ``<schema>.<source>__<key>``."""

    key: str
    asset: str
    options: dict[str, Any]
    """Connector-specific options only; loading keys are in ``load``, checks in the checks list."""
    location: str
    load: LoadSpec = field(default_factory=LoadSpec)


@dataclass(frozen=True)
class SourceSpec:
    name: str
    kind: str
    file: str
    options: dict[str, Any]
    """Connector-specific settings; the connector validates them."""
    tables: dict[str, SourceTable]
    tags: tuple[str, ...] = ()
    description: str | None = None
    key_lines: dict[str, int] = field(default_factory=dict)

    def where(self, key: str | None = None) -> str:
        line = self.key_lines.get(key) if key else None
        return f"{self.file}:{line}" if line else self.file


@dataclass(frozen=True)
class ModelSpec:
    """A SQL model: ``models/<schema>/<name>.sql`` becomes the asset ``<schema>.<name>``."""

    asset: str
    file: str
    path: Path
    sql: str
    """The SQL text after the header, exactly as written."""
    sql_line: int
    """1-based line in ``file`` where ``sql`` starts (so errors point at the file's lines)."""
    kind: Literal["table", "view"]
    tags: tuple[str, ...] = ()
    description: str | None = None
    owner: str | None = None
    columns: dict[str, str] = field(default_factory=dict)

    @property
    def schema(self) -> str:
        return self.asset.split(".", 1)[0]
