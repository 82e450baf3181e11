"""The only code that walks a project folder. Every error it raises names the file and line."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from gristmill._util.durations import parse_duration
from gristmill._util.naming import snake_case
from gristmill._util.suggest import did_you_mean
from gristmill.config.settings import ProjectSettings
from gristmill.errors import ConfigError, ProjectError
from gristmill.project import yamlfile
from gristmill.project.checks import parse_check_items
from gristmill.project.contracts import ContractSpec, load_contracts
from gristmill.project.own_table import mentions_own_table, renderings
from gristmill.project.python_models import load_python_model
from gristmill.project.specs import (
    LOAD_KEYS,
    CheckSpec,
    Contract,
    HookSpec,
    Incremental,
    Interval,
    LateRows,
    LoadSpec,
    Lookup,
    ModelKind,
    ModelSpec,
    Nested,
    PartitionValue,
    SemanticSpec,
    SourceSpec,
    SourceTable,
    StreamWindow,
    WriteMode,
)
from gristmill.project.unittests import UnitTestSpec, load_unit_tests
from gristmill.project.validation import validated

PROJECT_FILE = "gristmill.toml"
DBT_PROJECT_FILE = "dbt_project.yml"
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Project:
    root: Path
    settings: ProjectSettings
    sources: dict[str, SourceSpec]
    models: dict[str, ModelSpec]
    checks: tuple[CheckSpec, ...]
    unit_tests: tuple[UnitTestSpec, ...] = ()
    contracts: dict[str, ContractSpec] = field(default_factory=dict)
    """Data contracts by dataset; their checks are already in ``checks``."""
    on_run_start: tuple[HookSpec, ...] = ()
    """SQL run before a run builds anything (a dbt project's ``on-run-start``)."""
    on_run_end: tuple[HookSpec, ...] = ()
    """SQL run after a run's steps (a dbt project's ``on-run-end``), whatever their outcome."""
    input_types: Callable[[str], dict[str, str] | None] | None = None
    """A dbt project's column types of an asset, known before anything runs: a dbt unit test's
    input rows get every column (NULL where not given) with these types, as dbt gives them."""
    semantic: tuple[SemanticSpec, ...] = ()
    """A dbt project's semantic models, metrics, saved queries and exposures, as declared: kept
    for serving metrics; nothing runs them."""

    def path(self, setting: str) -> Path:
        """A storage path from the settings, relative to the project root."""
        return (self.root / setting).resolve()


def find_root(start: Path) -> Path:
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / PROJECT_FILE).is_file() or (folder / DBT_PROJECT_FILE).is_file():
            return folder
    raise ProjectError(
        f"no {PROJECT_FILE} (or dbt_project.yml) in {start.resolve()} or any folder above it",
        hint="run `gristmill init <name>` to create a project, or pass --project <folder>",
    )


def load_project(start: Path, dbt_vars: dict[str, Any] | None = None) -> Project:
    """``dbt_vars``: ``--vars`` for a dbt project (over the vars of dbt_project.yml)."""
    root = find_root(start)
    if not (root / PROJECT_FILE).is_file():
        from gristmill.project.dbt import load_dbt_project  # Jinja and the dbt layer only when needed

        return load_dbt_project(root, dbt_vars)  # a dbt project folder, run as it is
    if dbt_vars:
        raise ConfigError(
            "--vars sets the vars of a dbt project; this is a Gristmill project",
            location=PROJECT_FILE,
            hint="use ${env:NAME} in gristmill.toml and the YAML files instead",
        )
    settings = _load_settings(root)
    _check_model_folders(root, settings)
    sources, source_checks = _load_sources(root)
    models, header_checks = _load_models(root, settings)
    contracts = load_contracts(root)
    sources = _with_schema_contracts(sources, contracts)
    checks = [
        *header_checks,
        *source_checks,
        *_load_check_files(root),
        *(c for contract in contracts.values() for c in contract.checks),
    ]
    return Project(root, settings, sources, models, tuple(checks), load_unit_tests(root), contracts)


def _with_schema_contracts(
    sources: dict[str, SourceSpec], contracts: dict[str, ContractSpec]
) -> dict[str, SourceSpec]:
    """A contract's on_schema_change decides what a load does when the source's schema changes."""
    changed: dict[str, SourceSpec] = {}
    for name, source in sources.items():
        tables = dict(source.tables)
        for key, table in source.tables.items():
            change = contracts[table.asset].on_schema_change if table.asset in contracts else None
            if change is not None:
                tables[key] = replace(table, load=replace(table.load, contract=change))
        changed[name] = replace(source, tables=tables)
    return changed


# --- gristmill.toml -------------------------------------------------------------------------------


def _load_settings(root: Path) -> ProjectSettings:
    text = (root / PROJECT_FILE).read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(err))
        where = f"{PROJECT_FILE}:{found.group(1)}:{found.group(2)}" if found else PROJECT_FILE
        raise ConfigError(f"invalid TOML: {str(err).split(' (at line')[0]}", location=where) from None
    return validated(ProjectSettings, data, file=PROJECT_FILE, line_of=lambda loc: _toml_line(text, loc))


def _toml_line(text: str, loc: tuple[int | str, ...]) -> int | None:
    """The line of the deepest key along ``loc`` that the TOML text declares (a key, a dotted
    key, or a ``[table]`` header), so an error names the line the user wrote."""
    lines = _toml_key_lines(text)
    for depth in range(len(loc), 0, -1):
        path = tuple(str(p) for p in loc[:depth])
        if path in lines:
            return lines[path]
    return None


def _toml_key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Each key path the text declares -> its (first) line. Keys are read by TOML's own parser,
    one header or ``key =`` at a time, so quoting and spacing count as TOML says; lines inside
    multi-line values do not parse alone and are passed over."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[\[?([^\[\]]+)\]\]?", stripped)
        if header:
            path = _toml_path(header.group(1))
            if path is not None:
                table = path
                for depth in range(1, len(table) + 1):
                    found.setdefault(table[:depth], number)
            continue
        key = re.match(r"^([A-Za-z0-9_\-\.\s\"']+?)\s*=", stripped)
        path = _toml_path(key.group(1)) if key else None
        for depth in range(1, len(path or ()) + 1):
            found.setdefault((*table, *(path or ())[:depth]), number)
    return found


def _toml_path(dotted: str) -> tuple[str, ...] | None:
    try:
        data: Any = tomllib.loads(f"{dotted} = 0")
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    while isinstance(data, dict) and len(data) == 1:
        [(name, data)] = data.items()
        path.append(name)
    return tuple(path)


def _check_model_folders(root: Path, settings: ProjectSettings) -> None:
    """``[models.<folder>]`` for a folder that does not exist would set nothing, silently."""
    models = root / "models"
    folders = sorted(p.name for p in models.iterdir() if p.is_dir()) if models.is_dir() else []
    for folder in settings.models:
        if folder not in folders:
            text = (root / PROJECT_FILE).read_text(encoding="utf-8")
            line = _toml_line(text, ("models", folder))
            raise ConfigError(
                f"[models.{folder}] sets defaults for models/{folder}/, which does not exist",
                location=f"{PROJECT_FILE}:{line}" if line else PROJECT_FILE,
                hint=did_you_mean(folder, folders)
                or ("model folders: " + ", ".join(folders) if folders else "create models/<folder>/ first"),
            )


# --- sources/*.yml --------------------------------------------------------------------------------


class _SourceEnvelope(BaseModel):
    model_config = ConfigDict(extra="allow")
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
    model_config = ConfigDict(extra="forbid")
    cursor: str
    lag: str | float | None = None
    initial: Any = None


class _LoadDecl(BaseModel):
    model_config = ConfigDict(extra="forbid")
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


def _load_sources(root: Path) -> tuple[dict[str, SourceSpec], list[CheckSpec]]:
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
        if not _NAME.match(schema):
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


# --- models/**/*.sql ------------------------------------------------------------------------------


class _LookupDecl(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dimension: str
    on: str | list[str]
    at: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as the boolean true.
        if isinstance(data, dict) and True in data:
            return {("on" if key is True else key): value for key, value in data.items()}
        return data


class _ModelHeader(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ModelKind | None = None
    tags: list[str] = []
    description: str | None = None
    owner: str | None = None
    columns: dict[str, str] = {}
    checks: list[Any] = []
    key: str | list[str] = []
    time: str | None = None
    interval: Interval = "day"
    start: str | date | None = None
    lookback: int = Field(default=0, ge=0)
    late_rows: LateRows | None = None
    partition_by: str | None = None
    partitions: list[StrictBool | int | float | date | str] = []
    window: str | None = None
    lateness: str | int | None = None
    idle_timeout: str | int | None = None
    publish: str | None = None
    dialect: str = "duckdb"
    passthrough: StrictBool = False
    schedule: str | None = None
    surrogate_key: str | None = None
    type2: list[str] = []
    lookups: dict[str, _LookupDecl] = {}


_HEADER_KEYS = tuple(_ModelHeader.model_fields)


def _dialects() -> frozenset[str]:
    import sqlglot  # only for a model that names a dialect

    return frozenset(d.value for d in sqlglot.Dialects if d.value)


_COMMENT = re.compile(r"^\s*--\s?(.*)$")


def _split_header(text: str) -> tuple[list[str], int]:
    """Leading ``--`` comment lines (without the dashes) and how many lines they span."""
    header: list[str] = []
    for line in text.splitlines():
        match = _COMMENT.match(line)
        if not match:
            break
        header.append(match.group(1))
    return header, len(header)


def _parse_header(lines: list[str], file: str) -> dict[str, Any]:
    """A header is YAML in the leading comment block, if that block starts with a known key.

    A plain prose comment is not a header and never an error."""
    first = next((line for line in lines if line.strip()), "")
    key = re.match(r"^\s*([A-Za-z_]+)\s*:", first)
    if not key or (key.group(1) not in _HEADER_KEYS and did_you_mean(key.group(1), _HEADER_KEYS) is None):
        return {}
    data = yamlfile.parse("\n".join(lines), file)
    if not isinstance(data, dict):
        raise ConfigError("the model header must be 'key: value' lines", location=f"{file}:1")
    return data


def _load_models(root: Path, settings: ProjectSettings) -> tuple[dict[str, ModelSpec], list[CheckSpec]]:
    models: dict[str, ModelSpec] = {}
    checks: list[CheckSpec] = []
    folder = root / "models"
    python = [p for p in folder.rglob("*.py") if not p.name.startswith("_")]  # _*.py: helpers
    for path in sorted([*folder.rglob("*.sql"), *python]):
        file = path.relative_to(root).as_posix()
        parts = path.relative_to(folder).parts
        if len(parts) < 2:
            raise ProjectError(
                "a model lives in a schema folder, e.g. models/staging/orders.sql",
                location=file,
                hint=f"move it to models/<schema>/{path.name}",
            )
        schema, name = parts[0], path.stem
        for label, value in (("schema folder", schema), ("model file name", name)):
            if not _NAME.match(value):
                raise ProjectError(
                    f'{label} "{value}" must be lower-case letters, digits and _', location=file
                )
        asset = f"{schema}.{name}"
        if asset in models:
            raise ProjectError(
                f"two models are both named {asset}: {models[asset].file} and {file}",
                location=file,
                hint="rename one of them",
            )
        if path.suffix == ".py":
            models[asset], found = load_python_model(path, file, asset, settings)
            checks.extend(found)
            continue
        text = path.read_text(encoding="utf-8")
        header_lines, count = _split_header(text)
        data = _parse_header(header_lines, file)
        header = validated(_ModelHeader, data, file=file, line_of=partial(yamlfile.line_of, data))
        defaults = settings.defaults_for(schema)
        body = "\n".join(text.splitlines()[count:]) if data else text
        if not body.strip():
            raise ProjectError("the model has no SQL: write one SELECT statement", location=file)
        models[asset] = ModelSpec(
            asset=asset,
            file=file,
            path=path,
            sql=body,
            sql_line=(count + 1) if data else 1,
            kind=header.kind or defaults.kind,
            tags=tuple(dict.fromkeys([*defaults.tags, *header.tags])),
            description=header.description,
            owner=header.owner,
            columns=header.columns,
            **_kind_options(header, asset, file, data),
        )
        if mentions_own_table(body):  # `this` and is_incremental(): two renderings, as dbt's
            both = renderings(
                body,
                asset=asset,
                kind=models[asset].kind,
                file=file,
                first_line=models[asset].sql_line,
                dialect=models[asset].dialect,
                split_by="time"
                if models[asset].time
                else "partition_by"
                if models[asset].partition_by
                else None,
            )
            if both is not None:
                models[asset] = replace(models[asset], sql=both[0], incremental_sql=both[1])
        if header.checks:
            checks.extend(
                parse_check_items(
                    data["checks"], asset, file, getattr(data, "key_lines", {}).get("checks", 1)
                )
            )
    return models, checks


def _kind_options(header: _ModelHeader, asset: str, file: str, data: Any) -> dict[str, Any]:
    """The header keys that say how a model's kind builds it, checked against that kind."""
    kind = header.kind
    line = partial(yamlfile.line_of, data)
    where = lambda key: f"{file}:{line((key,)) or 1}"  # noqa: E731
    key = (header.key,) if isinstance(header.key, str) else tuple(header.key)
    needs_key = {"snapshot": "the columns identifying a row", "dimension": "the natural key"}
    if kind in needs_key and not key:
        raise ConfigError(f"kind: {kind} needs key: {needs_key[kind]}", location=where("kind"))
    for option, kinds in (
        ("time", ("incremental", "snapshot", "dimension", "fact", "stream")),
        ("window", ("stream",)),
        ("lateness", ("stream",)),
        ("idle_timeout", ("stream",)),
        ("publish", ("stream",)),
        ("surrogate_key", ("dimension",)),
        ("type2", ("dimension",)),
        ("lookups", ("fact",)),
        ("start", ("incremental", "fact")),
        ("late_rows", ("incremental", "fact")),
        ("partition_by", ("incremental",)),
        ("partitions", ("incremental",)),
    ):
        if getattr(header, option) and kind not in kinds:
            raise ConfigError(
                f"{option} applies to kind: {' or '.join(kinds)}, not {kind or 'the default kind'}",
                location=where(option),
            )
    if header.late_rows and not header.time:
        raise ConfigError(
            "late_rows applies to a model built by time interval (with time:)",
            location=where("late_rows"),
            hint="a model merged on a key takes late rows as they come; remove late_rows:",
        )
    partitions = _partitions(header, where)
    stream = _stream_options(header, where) if kind == "stream" else {}
    lookups = {}
    for column, lookup in header.lookups.items():
        if "." not in lookup.dimension:
            raise ConfigError(
                f'lookups.{column}: dimension "{lookup.dimension}" needs its schema, e.g. marts.dim_customer',
                location=where("lookups"),
            )
        on = (lookup.on,) if isinstance(lookup.on, str) else tuple(lookup.on)
        lookups[column] = Lookup(lookup.dimension, on, lookup.at)
    if header.dialect != "duckdb" and header.dialect not in _dialects():
        dialects = sorted(_dialects())
        raise ConfigError(
            f'unknown SQL dialect "{header.dialect}"',
            location=where("dialect"),
            hint=did_you_mean(header.dialect, dialects)
            or "e.g. duckdb, snowflake, bigquery, postgres, spark",
        )
    name = asset.split(".", 1)[1]
    return {
        "key": key,
        "time": header.time,
        "interval": header.interval,
        "start": header.start.isoformat() if isinstance(header.start, date) else header.start,
        "lookback": header.lookback,
        "late_rows": header.late_rows or "reprocess",
        "partition_by": header.partition_by,
        "partitions": partitions,
        **stream,
        "dialect": header.dialect,
        "passthrough": header.passthrough,
        "schedule": header.schedule,
        "surrogate_key": header.surrogate_key
        or (f"{name.removeprefix('dim_')}_key" if kind == "dimension" else None),
        "type2": tuple(header.type2),
        "lookups": lookups,
    }


_WINDOW = re.compile(
    r"^\s*(?P<kind>tumble|hop|session)\s+(?P<size>.+?)(?:\s+every\s+(?P<every>.+?))?\s*$", re.I
)


def _stream_options(header: _ModelHeader, where: Callable[[str], str]) -> dict[str, Any]:
    """A stream model's window, lateness and idle timeout, checked as written."""
    found: dict[str, Any] = {}
    if header.publish is not None:
        if not re.match(r"^[a-z0-9_]+\.[^\s]+$", header.publish):
            raise ConfigError(
                f'publish: "{header.publish}" must be <kafka source>.<topic>',
                location=where("publish"),
                hint="e.g. publish: shop.alerts (sources/shop.yml is a kafka source)",
            )
        found["publish"] = header.publish
    for option in ("lateness", "idle_timeout"):
        value = getattr(header, option)
        if value is None:
            continue
        duration = parse_duration(value) if value not in (0, "0", "0s") else timedelta(0)
        if duration is None:
            raise ConfigError(
                f'{option}: "{value}" is not a duration', location=where(option), hint="e.g. 5s, 2m"
            )
        found[option] = duration
    if header.window is None:
        return found
    match = _WINDOW.match(header.window)
    size = parse_duration(match.group("size")) if match else None
    every = parse_duration(match.group("every")) if match and match.group("every") else None
    kind = match.group("kind").lower() if match else ""
    if (
        match is None
        or size is None
        or (match.group("every") and every is None)
        or (kind == "hop") != (every is not None)
    ):
        raise ConfigError(
            f'window: "{header.window}" is not a window',
            location=where("window"),
            hint="tumble 1 minute | hop 10 minutes every 1 minute | session 30s",
        )
    if every is not None and (size % every or every > size):
        raise ConfigError(
            f"window: a hop of {size} every {every}: the size must be a whole multiple of the step",
            location=where("window"),
        )
    if not header.time:
        raise ConfigError(
            "a windowed stream model needs time: the event-time column", location=where("window")
        )
    if kind == "session" and not header.key:
        raise ConfigError(
            "a session window needs key: the columns a session belongs to (e.g. user_id)",
            location=where("window"),
        )
    found["window"] = StreamWindow(kind, size, every)  # type: ignore[arg-type]
    return found


def _partitions(header: _ModelHeader, where: Callable[[str], str]) -> tuple[PartitionValue, ...]:
    """Static partitions: a column and its declared values, both or neither, never with time/key."""
    if bool(header.partition_by) != bool(header.partitions):
        missing = "partitions" if header.partition_by else "partition_by"
        raise ConfigError(
            f"partition_by and partitions go together: {missing} is missing",
            location=where("partition_by" if header.partition_by else "partitions"),
            hint="e.g. -- partition_by: region / -- partitions: [emea, amer, apac]",
        )
    if not header.partition_by:
        return ()
    for other in ("time", "key"):
        if getattr(header, other):
            raise ConfigError(
                f"partition_by and {other} split the table two ways; choose one",
                location=where(other),
                hint="time: builds by interval, key: merges rows, partition_by: replaces declared values",
            )
    values = tuple(v.isoformat() if isinstance(v, date) else v for v in header.partitions)
    seen: set[str] = set()
    for value in values:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if text in seen:
            raise ConfigError(f'partitions: "{text}" is listed twice', location=where("partitions"))
        seen.add(text)
    return values


# --- checks/*.yml ---------------------------------------------------------------------------------


def _load_check_files(root: Path) -> list[CheckSpec]:
    checks: list[CheckSpec] = []
    for path in sorted((root / "checks").glob("*.y*ml")):
        file = path.relative_to(root).as_posix()
        data = yamlfile.load(path, file)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ConfigError(
                "a checks file maps each asset to a list of checks, e.g. "
                "'staging.customer: [{not_null: customer_id}]'",
                location=file,
            )
        for asset, items in data.items():
            line = data.key_lines.get(asset, 1) if isinstance(data, yamlfile.LineDict) else 1
            checks.extend(parse_check_items(items, str(asset), file, line))
    return checks
