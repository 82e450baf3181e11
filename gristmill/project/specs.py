"""What a user declares, as plain data: sources, models, checks. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Severity = Literal["error", "warn"]


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
class SourceTable:
    """One table a source lands, as ``<schema>.<source>__<key>``."""

    key: str
    asset: str
    options: dict[str, Any]
    location: str


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
