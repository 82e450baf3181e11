"""What a user declares, as plain data: sources, models, checks. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from gristmill.errors import ProjectError
from gristmill.project.dialect import PROJECT_DIALECT

Severity = Literal["error", "warn", "quarantine", "drop"]
"""error blocks publishing; warn reports; quarantine moves failing rows to ``<asset>__quarantine``
and publishes the rest; drop removes failing rows (counted)."""
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
        """How run output and history show the check, e.g. ``range(amount 0..1000)``."""
        column, params = ", ".join(self.columns), self.params
        if self.kind in ("range", "row_count"):
            return f"{self.kind}({_bounds(params, column)})"
        if self.kind == "regex":
            return f"regex({column} '{params['pattern']}')"
        if self.kind == "format":
            return f"format({column} as {params['as']})"
        if self.kind == "freshness":
            return f"freshness({column} within {params['max_age']})"
        if self.kind == "expression":
            return f"expression({params.get('name') or params['sql']})"
        if self.kind == "anomaly":
            return f"anomaly({params['metric']}{f'({column})' if column else ''})"
        if self.kind == "query":
            return f"query({params.get('name') or ' '.join(str(params['sql']).split())[:60]})"
        if self.kind == "schema":
            return f"schema({', '.join(params['expect'])}{' exactly' if params.get('exact') else ''})"
        if self.kind == "aggregate":
            subject = f"{params['function']}({column})"
            return f"aggregate({_bounds(params, subject)})"
        if self.kind == "unknown_members" and params.get("max"):
            return f"unknown_members({column} <= {params['max']})"
        args = column
        if "to" in params:
            args += f" -> {params['to']}"
        return f"{self.kind}({args})"


def _bounds(params: dict[str, Any], subject: str) -> str:
    low, high = params.get("min"), params.get("max")
    if low is not None and high is not None:
        return f"{subject} {low}..{high}{' exclusive' if params.get('exclusive') else ''}".strip()
    strict = "" if params.get("exclusive") else "="
    return f"{subject} >{strict} {low}".strip() if low is not None else f"{subject} <{strict} {high}".strip()


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
    allow_empty: bool = False
    """A ``replace`` that would leave a table with rows empty fails unless this is set."""
    max_shrink: float | None = None
    """The largest share of a table's rows (0..1) a ``replace`` may remove; unset: no limit."""


LOAD_KEYS = ("write", "key", "incremental", "contract", "nested", "max_depth", "allow_empty", "max_shrink")


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


STREAM_SOURCES = ("kafka", "nats", "mqtt")
"""Source kinds that deliver messages: a stream model reads one of their tables as a stream."""

ModelKind = Literal["view", "table", "incremental", "snapshot", "dimension", "fact", "stream"]
Interval = Literal["hour", "day", "month"]
LateRows = Literal["reprocess", "warn", "ignore"]
PartitionValue = str | int | float | bool
"""A declared value of a statically partitioned model (dates are kept as ISO text)."""


@dataclass(frozen=True)
class StreamWindow:
    """An event-time window of a stream model: ``tumble 1 minute``, ``hop 10 minutes every 1
    minute``, ``session 30s`` (a session ends after ``size`` without an event of its key)."""

    kind: Literal["tumble", "hop", "session"]
    size: timedelta
    every: timedelta | None = None
    """hop: how often a window starts (``size`` is a whole multiple of it)."""

    def __str__(self) -> str:
        every = f" every {self.every.total_seconds():g}s" if self.every else ""
        return f"{self.kind} {self.size.total_seconds():g}s{every}"


@dataclass(frozen=True)
class Lookup:
    """A fact's surrogate key found in a dimension: ``on`` the natural key, valid ``at`` a time."""

    dimension: str
    """The dimension asset, ``<schema>.<name>``."""
    on: tuple[str, ...]
    """Fact columns matching the dimension's natural key, in the key's order."""
    at: str | None = None
    """A fact time column: join to the dimension row valid then (type 2); else the current row."""


@dataclass(frozen=True)
class SemanticSpec:
    """A dbt project's semantic model, metric, saved query or exposure, kept as declared so that
    metrics can be served from it; no run builds or checks anything from it."""

    kind: Literal["semantic_model", "metric", "saved_query", "exposure"]
    name: str
    location: str
    """``file:line`` of the declaration."""
    data: dict[str, Any]
    """The declaration as written (entities, dimensions, measures, type_params…)."""
    reads: tuple[str, ...] = ()
    """The assets it is defined on: a semantic model's ``model``, an exposure's ``depends_on``."""


@dataclass(frozen=True)
class HookSpec:
    """SQL run around a model or a whole run (dbt's pre/post hooks, on-run-start/on-run-end).
    Tables named as assets (``<schema>.<name>``) are the tables the environment serves; in a model's
    post-hooks the model itself is the table just built, in its pre-hooks the one it replaces."""

    sql: str
    location: str


@dataclass(frozen=True)
class ModelSpec:
    """A model: ``models/<schema>/<name>.sql`` (or ``.py``) becomes the asset ``<schema>.<name>``."""

    asset: str
    file: str
    path: Path
    sql: str
    """The SQL text after the header, exactly as written (empty for a Python model)."""
    sql_line: int
    """1-based line in ``file`` where ``sql`` starts (so errors point at the file's lines)."""
    kind: ModelKind
    tags: tuple[str, ...] = ()
    description: str | None = None
    owner: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    key: tuple[str, ...] = ()
    """Columns identifying a row: merge key (incremental, fact), natural key (snapshot, dimension)."""
    time: str | None = None
    """incremental: the event-time column that splits work into intervals (delete+insert per
    interval); snapshot/dimension: when a change took effect (else the run's time)."""
    interval: Interval = "day"
    start: str | None = None
    """The first interval of a time-range incremental model (ISO date or timestamp)."""
    lookback: int = 0
    """Intervals before the newest one to process again on every run, for late rows."""
    late_rows: LateRows = "reprocess"
    """By time: what to do with rows that arrive in intervals already built (closed): reprocess
    those intervals, warn (the run summary counts them), or ignore (no check at all)."""
    partition_by: str | None = None
    """incremental: the column whose declared values (``partitions``) split the table; each
    value's rows are replaced, backfilled and tracked on their own."""
    partitions: tuple[PartitionValue, ...] = ()
    window: StreamWindow | None = None
    """stream: the event-time window rows are grouped in (over ``time``)."""
    lateness: timedelta = timedelta(0)
    """stream: how long after a window's end (by the watermark) its rows are still taken."""
    publish: str | None = None
    """stream: ``<kafka source>.<topic>`` to publish the emitted rows to, as JSON."""
    idle_timeout: timedelta = timedelta(seconds=30)
    """stream: a partition without messages this long (wall clock) stops holding the watermark
    back; when all are quiet the watermark moves with the clock, so windows close anyway."""
    dialect: str = PROJECT_DIALECT
    """The SQL dialect the model is written in; it is transpiled to the engine's."""
    passthrough: bool = False
    """SQL the parser cannot read runs as written (with a warning) instead of failing to load;
    such a model gets no validation and no column lineage."""
    schedule: str | None = None
    surrogate_key: str | None = None
    """dimension: the surrogate key column (default ``<name without dim_>_key``)."""
    type2: tuple[str, ...] = ()
    """dimension: columns whose changes add a history row; every other column is type 1."""
    lookups: dict[str, Lookup] = field(default_factory=dict)
    """fact: surrogate key column -> how to find it in a dimension."""
    incremental_sql: str | None = None
    """A second rendering for incremental runs (dbt's ``is_incremental()``); ``None`` when the
    model reads the same either way."""
    language: Literal["sql", "python"] = "sql"
    function: str | None = None
    """python: the decorated function's name in ``path``."""
    reads: tuple[str, ...] = ()
    """python: the assets the function receives, in parameter order."""
    pre_hooks: tuple[HookSpec, ...] = ()
    """Run before the model is built, in the same transaction (dbt's ``pre_hook``)."""
    post_hooks: tuple[HookSpec, ...] = ()
    """Run after the model is built and before its checks, in the same transaction."""
    error: ProjectError | None = None
    """A model that could not be compiled (a dbt model whose Jinja fails): the error is raised
    when a command selects it, so that excluding it (``-x``) lets everything else run."""

    @property
    def schema(self) -> str:
        return self.asset.split(".", 1)[0]

    @property
    def strategy(self) -> Literal["append", "merge", "by_time", "by_partition"] | None:
        """How an incremental model adds rows: by time interval, by declared partition, by key,
        or appending."""
        if self.kind != "incremental":
            return None
        if self.partition_by:
            return "by_partition"
        return "by_time" if self.time else "merge" if self.key else "append"

    def partition_key(self, value: PartitionValue) -> str:
        """A declared value as text (how runs, backfills and the lake name it)."""
        return str(value).lower() if isinstance(value, bool) else str(value)
