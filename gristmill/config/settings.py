"""The shape of ``gristmill.toml``."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSettings(_Strict):
    format: Literal["ducklake", "duckdb"] = "ducklake"
    """``ducklake``: a catalog plus Parquet files, readable by other processes (and other engines)
    while a run writes. ``duckdb``: one DuckDB database file (``database``), several times faster
    for many small models, but a run locks it against readers in other processes."""
    database: str = ".gristmill/warehouse.duckdb"
    """The database file when ``format = "duckdb"``."""
    catalog: str = ".gristmill/catalog.sqlite"
    """DuckLake catalog: a SQLite file path (relative to the project) or ``postgres://…``."""
    data: str = ".gristmill/lake"
    """Where DuckLake writes Parquet files: a folder or an ``s3://`` URL."""
    state: str = ".gristmill/state.sqlite"
    """Run history (runs, steps, check results): a SQLite file in WAL mode."""


class EngineSettings(_Strict):
    kind: Literal["duckdb"] = "duckdb"
    """Where models run. ``spark`` and ``postgres`` arrive with their engines."""
    threads: int | None = Field(default=None, ge=1)
    memory_limit: str | None = None
    """A DuckDB memory limit such as ``"4GB"``; the default lets DuckDB choose."""


class ModelDefaults(_Strict):
    kind: Literal["table", "view", "incremental", "snapshot", "dimension", "fact"] = "table"
    tags: tuple[str, ...] = ()


class CheckSettings(_Strict):
    metrics: bool = True
    """Measure table metrics (row count, null rates, distinct ratios, min/max, freshness) of every
    checked asset; anomaly checks measure what they judge either way."""
    samples: int = Field(default=5, ge=0, le=100)
    """Failing rows kept per failed check (0: none)."""


class ProjectSettings(_Strict):
    name: str
    """The project's name; also used in run history and lineage events."""
    storage: StorageSettings = StorageSettings()
    engine: EngineSettings = EngineSettings()
    checks: CheckSettings = CheckSettings()
    models: dict[str, ModelDefaults] = {}
    """Defaults per model folder, e.g. ``[models.staging] kind = "view"``."""

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError("must be letters, digits and underscores, starting with a letter")
        return value

    def defaults_for(self, folder: str) -> ModelDefaults:
        return self.models.get(folder, ModelDefaults())
