"""Reads ``sources/*.yml``: each file one source, its tables and how they load."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gristmill._util.durations import parse_duration
from gristmill._util.naming import snake_case
from gristmill.errors import ConfigError
from gristmill.project import yamlfile
from gristmill.project.checks import parse_check_items
from gristmill.project.definition import NAME
from gristmill.project.specs import (
    LOAD_KEYS,
    CheckSpec,
    Contract,
    Incremental,
    LoadSpec,
    Nested,
    SourceSpec,
    SourceTable,
    WriteMode,
)
from gristmill.project.validation import validated


class _SourceEnvelope(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)
    kind: str
    description: str | None = None
    tags: list[str] = []
    schema_: str = "raw"
    tables: dict[str, Any] | list[str]
    write: WriteMode = "replace"
    contract: Contract = "evolve"
    nested: Nested = "struct"
    max_depth: int | None = Field(default=None, ge=0)
    allow_empty: bool = False
    max_shrink: float | str | None = None


class _IncrementalDecl(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    cursor: str
    lag: str | float | None = None
    initial: Any = None


class _LoadDecl(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    write: WriteMode | None = None
    key: str | list[str] = []
    incremental: _IncrementalDecl | str | None = None
    contract: Contract | None = None
    nested: Nested | None = None
    max_depth: int | None = Field(default=None, ge=0)
    allow_empty: bool | None = None
    max_shrink: float | str | None = None


def _share(value: float | str | None, where: str) -> float | None:
    """``max_shrink`` as a share of the rows: ``50%`` or ``0.5``."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        share = float(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        share = -1.0
    if not 0 <= share <= 1:
        raise ConfigError(
            f'max_shrink "{value}" is not a share of the rows',
            location=where,
            hint="write a percentage like 50% (or 0.5): the most of a table's rows a replace may remove",
        )
    return share


def _lag(value: str | float | None, where: str) -> timedelta | float | None:
    if value is None or isinstance(value, int | float):
        return value
    lag = parse_duration(value)
    if lag is None:
        raise ConfigError(
            f'lag "{value}" is neither a number nor a duration',
            location=where,
            hint="write e.g. 5m, 2h, 1d, 30s, or a number for numeric cursors",
        )
    return lag


def _load_spec(envelope: _SourceEnvelope, options: Any, file: str, line: int) -> LoadSpec:
    where = f"{file}:{line}"
    decl = validated(
        _LoadDecl,
        {k: v for k, v in options.items() if k in LOAD_KEYS},
        file=file,
        line_of=lambda loc: yamlfile.line_of(options, loc) or line,
    )
    incremental = decl.incremental
    if isinstance(incremental, str):
        incremental = _IncrementalDecl(cursor=incremental)
    write = decl.write or envelope.write
    key = (decl.key,) if isinstance(decl.key, str) else tuple(decl.key)
    if write in ("merge", "delete_insert", "scd2") and not key:
        raise ConfigError(f'write: {write} needs a "key" (the columns that identify a row)', location=where)
    return LoadSpec(
        write=write,
        key=tuple(snake_case(k) for k in key),
        incremental=None
        if incremental is None
        else Incremental(snake_case(incremental.cursor), _lag(incremental.lag, where), incremental.initial),
        contract=decl.contract or envelope.contract,
        nested=decl.nested or envelope.nested,
        max_depth=decl.max_depth if decl.max_depth is not None else envelope.max_depth,
        allow_empty=decl.allow_empty if decl.allow_empty is not None else envelope.allow_empty,
        max_shrink=_share(decl.max_shrink if decl.max_shrink is not None else envelope.max_shrink, where),
    )


def _connector_options(options: Any, drop: Collection[str] = (*LOAD_KEYS, "checks")) -> dict[str, Any]:
    """Options meant for the connector (minus loading keys and checks), keeping line numbers so
    the connector's own errors name the line."""
    kept = yamlfile.LineDict({k: v for k, v in options.items() if k not in drop})
    kept.handled_elsewhere = tuple(k for k in drop if not k.endswith("_"))
    kept.line = getattr(options, "line", 0)
    kept.key_lines = {k: v for k, v in getattr(options, "key_lines", {}).items() if k in kept}
    return kept


def load_sources(root: Path) -> tuple[dict[str, SourceSpec], list[CheckSpec]]:
    sources: dict[str, SourceSpec] = {}
    checks: list[CheckSpec] = []
    for path in sorted((root / "sources").glob("*.y*ml")):
        file = path.relative_to(root).as_posix()
        data = yamlfile.load(path, file)
        if not isinstance(data, dict):
            raise ConfigError(
                "a source file must be a mapping with at least 'kind' and 'tables'", location=file
            )
        name = snake_case(path.stem)
        if "schema_" in data:
            raise ConfigError('unknown key "schema_"', location=file)
        envelope = validated(
            _SourceEnvelope,
            {("schema_" if k == "schema" else k): v for k, v in data.items()},
            file=file,
            line_of=partial(yamlfile.line_of, data),
        )
        key_lines = dict(getattr(data, "key_lines", {}))
        schema = envelope.schema_
        if not NAME.match(schema):
            raise ConfigError(
                f'schema "{schema}" must be lower-case letters, digits, _',
                location=f"{file}:{key_lines.get('schema', 1)}",
            )
        raw_tables = data["tables"]
        if isinstance(raw_tables, list):
            entries: dict[str, Any] = {str(t): {"table": t} for t in raw_tables}
            lines = dict(zip(entries, getattr(raw_tables, "item_lines", []), strict=False))
        else:
            entries = {str(k): (v if v is not None else {}) for k, v in raw_tables.items()}
            lines = dict(getattr(raw_tables, "key_lines", {}))
        if not entries:
            raise ConfigError(
                "a source needs at least one table under 'tables'",
                location=f"{file}:{key_lines.get('tables', 1)}",
            )
        tables: dict[str, SourceTable] = {}
        for key, declared in entries.items():
            line = int(lines.get(key) or key_lines.get("tables") or 1)
            where = f"{file}:{line}"
            if not isinstance(declared, dict):
                raise ConfigError(f'table "{key}" must be a mapping of options (or {{}})', location=where)
            landing = snake_case(key)
            asset = f"{schema}.{name}__{landing}"
            load = _load_spec(envelope, declared, file, line)
            tables[landing] = SourceTable(landing, asset, _connector_options(declared), where, load)
            if declared.get("checks") is not None:
                checks.extend(parse_check_items(declared["checks"], asset, file, line))
        envelope_keys = {"kind", "description", "tags", "schema", "tables", *_SourceEnvelope.model_fields}
        options = _connector_options(data, drop=envelope_keys)
        sources[name] = SourceSpec(
            name, envelope.kind, file, options, tables, tuple(envelope.tags), envelope.description, key_lines
        )
    return sources, checks
