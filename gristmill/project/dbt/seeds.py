"""dbt seeds as one Gristmill ``files`` source: each CSV lands at the seed's ``<schema>.<alias>``,
read the way dbt reads it (``null`` is NULL; ``column_types`` and ``delimiter`` honoured)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gristmill.project.dbt.nodes import Node
from gristmill.project.specs import SourceSpec, SourceTable

SEEDS_SOURCE = "seeds"
_NULLS = ["", "null", "NULL", "Null"]
"""dbt's CSV reader takes an empty field or the word null (in any case) as NULL."""


def _reader_options(config: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {"nullstr": _NULLS}
    if config.get("delimiter"):
        options["delim"] = str(config["delimiter"])
    column_types = config.get("column_types")
    if isinstance(column_types, dict) and column_types:
        options["types"] = {str(column): str(kind) for column, kind in column_types.items()}
    return options


def seeds_source(seeds: Sequence[Node], folder: str) -> SourceSpec | None:
    if not seeds:
        return None
    tables = {
        seed.name: SourceTable(
            seed.name,
            seed.asset,
            {"path": seed.file, "format": "csv", "options": _reader_options(seed.config)},
            seed.file,
        )
        for seed in seeds
    }
    return SourceSpec(SEEDS_SOURCE, "files", folder, {}, tables, description="dbt seeds")
