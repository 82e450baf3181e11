"""Decide what a run does, and why, without running anything.

Two fingerprints per asset:

- its **version**: what the asset *is* — its definition and the versions of exactly the upstream
  columns it reads (column lineage). A model's physical table is named by its version, so a
  changed model builds into a new table while the old one keeps serving until the switch, and
  environments whose models have the same version share one table.
- its **data**: the change markers of every source upstream. A physical table whose recorded data
  matches is current; otherwise it is rebuilt (incrementally where its kind allows).

A step is skipped when the environment already points at a current table, switched (no build)
when a current table of that version exists, and built otherwise; the plan names the reason and
categorises each change as breaking or non-breaking from the column fingerprints.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gristmill._util.suggest import did_you_mean
from gristmill.errors import ConfigError, SelectionError
from gristmill.plan.changes import Action, Change, Recorded, categorise, decide, describe_change
from gristmill.plan.graph import Asset, AssetGraph
from gristmill.sql.lineage import ROWS, Analysis, analyse
from gristmill.sql.parse import ParsedModel
from gristmill.sql.windows import WINDOW_COLUMNS
from gristmill.sql.writes import IS_CURRENT, ROW_HASH, VALID_FROM, VALID_TO

HISTORY_COLUMNS = (VALID_FROM, VALID_TO, IS_CURRENT, ROW_HASH)

PHYSICAL_PREFIX = "_gm_"


@dataclass(frozen=True)
class Step:
    asset: Asset
    action: Action
    reason: str
    fingerprint: str
    parts: Mapping[str, Any] = field(default_factory=dict)
    columns: tuple[str, ...] | None = None
    """The columns the asset will have, when known before running."""
    refresh: bool = False
    """Rebuild from scratch: an incremental asset starts again from its first row."""
    physical: str = ""
    """``schema.table`` of the physical table this step builds or points the environment at."""
    change: Change = "unchanged"
    changed_columns: tuple[str, ...] = ()
    """For a change: the asset's own columns that changed, or the upstream columns it reads that did."""
    analysis: Analysis | None = None
    recorded: bool = False
    """The physical table already has a version row (it is rebuilt or updated in place)."""
    restate: tuple[datetime, datetime] | None = None
    """A time-range model: process the intervals in [start, end) again."""
    window: tuple[datetime, datetime] | None = None
    """A time-range model: process only the pending intervals starting in [start, end) (a
    backfill's chunk), none outside it."""
    partitions: tuple[str, ...] | None = None
    """A statically partitioned model: build only these declared values (a backfill's chunk or
    ``run --partition``); ``None`` builds them all."""

    @property
    def name(self) -> str:
        return self.asset.name


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    env: str = "prod"
    removed: tuple[str, ...] = ()
    """Models the environment has that the project no longer declares."""

    @property
    def builds(self) -> list[Step]:
        return [s for s in self.steps if s.action == "build"]

    @property
    def skips(self) -> list[Step]:
        return [s for s in self.steps if s.action == "skip"]

    @property
    def switches(self) -> list[Step]:
        return [s for s in self.steps if s.action == "switch"]


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


REBUILT = ("table", "view")
"""Kinds rebuilt from scratch on every build: each build gets a table of its own, published by the
environment's switch. Other kinds keep state (increments, history) and update their table."""


def physical_name(asset: Asset, version: str, data: Mapping[str, str] | None = None) -> str:
    """Where one version of a model lives (for a rebuilt kind: one version on one state of its
    sources); a source table lives under its own name."""
    if asset.kind == "source":
        return asset.name
    schema, name = asset.name.split(".", 1)
    rebuilt = asset.kind in REBUILT or asset.kind == "stream"  # a stream model's batch build
    suffix = version[:12] + (f"_{digest(data)[:8]}" if rebuilt and data is not None else "")
    return f"{PHYSICAL_PREFIX}{schema}.{name}__{suffix}"


def view_schema(schema: str, env: str) -> str:
    """The schema holding an environment's views: the model's own for prod, suffixed otherwise."""
    return schema if env == "prod" else f"{schema}__{env}"


Analyser = Callable[[ParsedModel, Mapping[str, Sequence[str]]], Analysis]


@dataclass
class _Fingerprints:
    """Version, column and row fingerprints of every asset planned so far."""

    version: dict[str, str] = field(default_factory=dict)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    rows: dict[str, str] = field(default_factory=dict)
    data: dict[str, dict[str, str]] = field(default_factory=dict)

    def column(self, asset: str, column: str) -> str:
        return self.columns.get(asset, {}).get(column) or self.version[asset]


def _definition(asset: Asset, extra: str | None) -> str:
    if asset.model is not None:
        model = asset.model
        options = [
            asset.kind,
            model.key,
            model.time,
            model.interval,
            model.start,
            model.lookback,
            *((model.partition_by, model.partitions) if model.partition_by else ()),
            *((str(model.window), model.lateness.total_seconds()) if model.window else ()),
            model.surrogate_key,
            model.type2,
            sorted((k, v.dimension, v.on, v.at) for k, v in model.lookups.items()),
            # Hooks change what is built (a post-hook may delete rows): a changed hook rebuilds.
            *(
                ([h.sql for h in model.pre_hooks], [h.sql for h in model.post_hooks])
                if model.pre_hooks or model.post_hooks
                else ()
            ),
        ]
        body = extra if extra is not None else asset.parsed.fingerprint_sql if asset.parsed else ""
        return digest([options, body, model.incremental_sql])
    assert asset.source is not None and asset.table is not None
    return digest(
        [
            asset.source.kind,
            asset.source.options,
            {k: v for k, v in asset.table.options.items() if k != "checks"},
            asset.table.load,
        ]
    )


def definition(asset: Asset) -> str:
    """The digest of what defines ``asset`` (its options and SQL): a stream model names its live
    table by it, so a changed model starts a new table."""
    return _definition(asset, None)


def make_plan(
    graph: AssetGraph,
    selected: Sequence[str],
    *,
    recorded: Mapping[str, Recorded],
    pointers: Mapping[str, str],
    existing_columns: Mapping[str, Sequence[str]],
    source_columns: Mapping[str, Sequence[str]],
    markers: Mapping[str, str | None],
    env: str = "prod",
    baseline: Mapping[str, str] | None = None,
    full_refresh: bool = False,
    analyser: Analyser = analyse,
    python_fingerprint: Callable[[Asset], str] | None = None,
    restate: tuple[datetime, datetime] | None = None,
    window: tuple[datetime, datetime] | None = None,
    partitions: Sequence[str] | None = None,
) -> Plan:
    """``recorded`` is keyed by physical table; ``pointers`` maps each asset of the environment to
    the physical table it serves; ``baseline`` is what changes are described against where the
    environment has no model yet (prod's pointers, for a new dev environment);
    ``existing_columns`` is keyed by physical table. ``window`` builds the selected time-range
    models for the pending intervals in that range only, whatever else the plan would do;
    ``partitions`` builds the selected statically partitioned models for those values only."""
    compared = {**(baseline or {}), **pointers}
    chosen = set(selected)
    prints = _Fingerprints()
    columns: dict[str, Sequence[str] | None] = {}
    physical: dict[str, str] = {}
    steps: list[Step] = []
    for name in graph.order:
        asset = graph.assets[name]
        upstream_data: dict[str, str] = {}
        for parent in asset.upstream:
            upstream_data.update(prints.data.get(parent, {}))
        if name not in chosen:
            _carry(asset, recorded, pointers, existing_columns, prints, columns, physical, upstream_data)
            continue
        _require_built_upstream(asset, physical)
        analysis: Analysis | None = None
        extra = python_fingerprint(asset) if python_fingerprint and asset.model and not asset.parsed else None
        definition = _definition(asset, extra)
        if asset.kind == "source":
            data = _source_prints(
                asset, definition, markers, source_columns, existing_columns, prints, columns
            )
        else:
            data = upstream_data
            analysis = _analysed(asset, columns, analyser)
            _model_prints(asset, definition, analysis, prints)
            columns[name] = _output_columns(asset, analysis.columns if analysis else None)
        version = prints.version[name]
        prints.data[name] = data
        target = physical_name(asset, version, data)
        if columns[name] is None:
            columns[name] = existing_columns.get(target)
        _validate_checks(asset, columns[name], graph)
        checks = digest(sorted([c.name, c.severity, c.params] for c in asset.checks))
        parts = {
            "version": version,
            "definition": definition,
            "data": data,
            "checks": checks,
            "columns": prints.columns.get(name, {}),
            "reads": _reads(asset, analysis, prints),
        }
        fingerprint = digest([version, data, checks])
        physical[name] = target
        change, changed = categorise(asset, parts, compared, recorded)
        action, reason = decide(
            asset, parts, fingerprint, target, recorded, pointers, existing_columns, full_refresh
        )
        if action == "build" and reason in ("new version", "new: never built") and change != "added":
            reason = describe_change(change, changed)
        elif action == "switch" and change not in ("unchanged", "added"):
            reason = f"{describe_change(change, changed)}; {reason}"
        requested = _requested(asset, action, reason, target in recorded, restate, window, partitions)
        action, reason, restating, windowed, chosen_values = requested
        steps.append(
            Step(
                asset,
                action,
                reason,
                fingerprint,
                parts,
                _tuple(columns[name]),
                refresh=full_refresh,
                physical=target,
                change=change,
                changed_columns=changed,
                analysis=analysis,
                recorded=target in recorded,
                restate=restating,
                window=windowed,
                partitions=chosen_values,
            )
        )
    _refuse_unmatched_requests(steps, restate, window, partitions)
    removed = tuple(sorted(a for a in pointers if a not in graph.assets))
    return Plan(tuple(steps), env, removed)


def _require_built_upstream(asset: Asset, physical: Mapping[str, str]) -> None:
    for parent in asset.upstream:
        if parent not in physical:
            raise SelectionError(
                f"{asset.name} reads {parent}, which has never been built",
                hint=f"select it too: -s +{asset.name.split('.', 1)[1]}",
            )


def _analysed(
    asset: Asset, columns: Mapping[str, Sequence[str] | None], analyser: Analyser
) -> Analysis | None:
    """The model's analysis against the columns of what it reads; None when a column list is
    unknown (an upstream never built) or the model is not SQL."""
    schemas = {p: columns[p] for p in asset.upstream}
    if asset.stream_input and asset.model and asset.model.window and schemas.get(asset.stream_input):
        # A windowed stream model reads its stream with the window's columns added.
        schemas[asset.stream_input] = (*(schemas[asset.stream_input] or ()), *WINDOW_COLUMNS)
    known = {p: list(c) for p, c in schemas.items() if c is not None}
    if asset.parsed is not None and len(known) == len(schemas):
        return analyser(asset.parsed, known)
    return None


def _source_prints(
    asset: Asset,
    definition: str,
    markers: Mapping[str, str | None],
    source_columns: Mapping[str, Sequence[str]],
    existing_columns: Mapping[str, Sequence[str]],
    prints: _Fingerprints,
    columns: dict[str, Sequence[str] | None],
) -> dict[str, str]:
    """A source table's fingerprints: its settings, its columns and its data marker (a marker
    the connector could not give makes the data unknown, so everything reading it rebuilds)."""
    name = asset.name
    marker = markers.get(name)
    cols = source_columns.get(name) or existing_columns.get(name)
    columns[name] = cols
    prints.version[name] = definition
    prints.rows[name] = definition
    prints.columns[name] = {c: digest([definition, c]) for c in cols or ()}
    return {name: marker if marker is not None else f"unknown:{uuid.uuid4().hex}"}


def _requested(
    asset: Asset,
    action: Action,
    reason: str,
    built: bool,
    restate: tuple[datetime, datetime] | None,
    window: tuple[datetime, datetime] | None,
    partitions: Sequence[str] | None,
) -> tuple[
    Action, str, tuple[datetime, datetime] | None, tuple[datetime, datetime] | None, tuple[str, ...] | None
]:
    """What the user asked beyond the plan (a restatement, a backfill window, partitions) turns
    the step into a build, its reason saying why: (action, reason, restate, window, partitions)."""
    restating = restate if restate and asset.model is not None and asset.model.time else None
    if restating and asset.kind in ("incremental", "fact") and built:
        span = f"restating {restating[0].isoformat()} to {restating[1].isoformat()}"
        reason = span if action != "build" else f"{reason}; {span}"
        action = "build"
    else:
        restating = None
    windowed = window if window and time_partitioned(asset) else None
    if windowed:
        if not restating:
            span = f"window {windowed[0].isoformat()} to {windowed[1].isoformat()}"
            reason = span if action != "build" else f"{reason}; {span}"
        action = "build"
    chosen_values = _chosen_values(asset, partitions)
    if chosen_values is not None:
        listed = ", ".join(chosen_values)
        reason = f"partitions {listed}" if action != "build" else f"{reason}; partitions {listed}"
        action = "build"
    return action, reason, restating, windowed, chosen_values


def _refuse_unmatched_requests(
    steps: Sequence[Step],
    restate: tuple[datetime, datetime] | None,
    window: tuple[datetime, datetime] | None,
    partitions: Sequence[str] | None,
) -> None:
    """A window, partition list or restatement that selects nothing is a mistake, not a no-op."""
    if window and not any(s.window for s in steps):
        raise SelectionError(
            "nothing to backfill: a window applies to incremental models with a time column",
            hint="select one, e.g. -s fct_sales (its header needs `time:` and `interval:`)",
        )
    if partitions is not None and not any(s.partitions is not None for s in steps):
        raise SelectionError(
            "nothing to build: --partition applies to models with partition_by and partitions",
            hint="select one, e.g. -s sales_by_region --partition emea",
        )
    if restate and not window and not any(s.restate for s in steps):
        raise SelectionError(
            "nothing to restate: --restate applies to built incremental models with a time column",
            hint="select one, e.g. -s fct_sales --restate 2024-01-01:2024-02-01",
        )


def time_partitioned(asset: Asset) -> bool:
    """Whether the asset is built by time interval (``incremental`` with ``time``, or a ``fact``
    with ``time`` and no key), so it can be built for a window of intervals."""
    model = asset.model
    if model is None or not model.time:
        return False
    return asset.kind == "incremental" or (asset.kind == "fact" and not model.key)


def statically_partitioned(asset: Asset) -> bool:
    """Whether the asset is split by a declared list of values (``partition_by``)."""
    return asset.model is not None and asset.model.strategy == "by_partition"


def _chosen_values(asset: Asset, wanted: Sequence[str] | None) -> tuple[str, ...] | None:
    """The declared values of ``wanted`` this asset has (all declared order), or ``None`` when
    the run builds every value; an unknown value is an error naming the declared ones."""
    if wanted is None or not statically_partitioned(asset):
        return None
    model = asset.model
    assert model is not None
    declared = [model.partition_key(v) for v in model.partitions]
    unknown = [w for w in wanted if w not in declared]
    if unknown:
        raise SelectionError(
            f'{asset.name} has no partition "{unknown[0]}"',
            hint=did_you_mean(unknown[0], declared) or "its partitions: " + ", ".join(declared),
        )
    return tuple(d for d in declared if d in wanted)


def _carry(
    asset: Asset,
    recorded: Mapping[str, Recorded],
    pointers: Mapping[str, str],
    existing_columns: Mapping[str, Sequence[str]],
    prints: _Fingerprints,
    columns: dict[str, Sequence[str] | None],
    physical: dict[str, str],
    upstream_data: dict[str, str],
) -> None:
    """An asset outside the selection keeps what the environment serves."""
    name = asset.name
    target = pointers.get(name) or (name if asset.kind == "source" else None)
    found = recorded.get(target) if target else None
    if target is None or found is None:
        prints.data[name] = upstream_data
        return
    parts = found.parts
    prints.version[name] = str(parts.get("version", found.fingerprint))
    prints.columns[name] = dict(parts.get("columns", {}))
    prints.rows[name] = str(parts.get("columns", {}).get(ROWS, prints.version[name]))
    prints.data[name] = dict(parts.get("data", {})) if isinstance(parts.get("data"), dict) else {}
    columns[name] = existing_columns.get(target)
    physical[name] = target


def _hooks(asset: Asset) -> list[list[str]]:
    """A model's hooks change what is built (a post-hook may delete rows): a changed hook
    rebuilds. Nothing for a model without hooks, so that its fingerprints stay as they were."""
    model = asset.model
    if model is None or not (model.pre_hooks or model.post_hooks):
        return []
    return [[h.sql for h in model.pre_hooks], [h.sql for h in model.post_hooks]]


def _model_prints(asset: Asset, definition: str, analysis: Analysis | None, prints: _Fingerprints) -> None:
    """Column fingerprints from the column traces: each column's own query plus the fingerprints
    of the upstream columns and row sets it reads. Without traces, the model changes as a whole."""
    name = asset.name
    if analysis is None or not analysis.exact:
        version = digest([definition, [prints.version.get(p) for p in asset.upstream]])
        prints.version[name] = version
        prints.rows[name] = version
        prints.columns[name] = dict.fromkeys(analysis.columns or (), version) if analysis else {}
        return
    own: dict[str, str] = {}
    for column, trace in analysis.traces.items():
        own[column] = digest(
            [
                trace.sql,
                [prints.column(a, c) for a, c in trace.reads],
                [prints.rows.get(t, prints.version.get(t)) for t in trace.tables],
            ]
        )
    if asset.kind in REBUILT:
        # The SQL is in the traces already: only the kind (and hooks) add to them.
        rows = digest([asset.kind, own[ROWS], *_hooks(asset)])
    else:
        # Incremental and history kinds keep state across runs: any change to the definition
        # (keys, intervals, SQL) asks for a new table. A fact also reads its dimensions' keys.
        assert asset.model is not None
        dimensions = [prints.version.get(lookup.dimension) for lookup in asset.model.lookups.values()]
        rows = digest([definition, own[ROWS], dimensions])
    cols = {c: digest([rows, fp]) for c, fp in own.items() if c != ROWS}
    prints.rows[name] = rows
    prints.columns[name] = {**cols, ROWS: rows}
    prints.version[name] = digest([rows, sorted(cols.items())])


def _output_columns(asset: Asset, selected: Sequence[str] | None) -> tuple[str, ...] | None:
    """The columns the asset's table will have: what its query selects, plus what its kind adds."""
    if selected is None or asset.model is None:
        return None if selected is None else tuple(selected)
    model = asset.model
    added: list[str] = []
    if asset.kind == "dimension" and model.surrogate_key:
        added.append(model.surrogate_key)
    if asset.kind == "fact":
        added.extend(model.lookups)
    if asset.kind in ("snapshot", "dimension"):
        added.extend(HISTORY_COLUMNS)
    return tuple(dict.fromkeys([*added, *selected]))


def _reads(asset: Asset, analysis: Analysis | None, prints: _Fingerprints) -> dict[str, str]:
    """Fingerprints of the upstream columns the asset reads, to explain later what changed."""
    if analysis is None or not analysis.exact:
        return {p: prints.version.get(p, "") for p in asset.upstream}
    pairs = {pair for trace in analysis.traces.values() for pair in trace.reads}
    return {f"{a}.{c}": prints.column(a, c) for a, c in sorted(pairs)}


def _tuple(columns: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if columns is None else tuple(columns)


def _validate_checks(asset: Asset, columns: Sequence[str] | None, graph: AssetGraph) -> None:
    for check in asset.checks:
        if columns is not None:
            for column in check.columns:
                if column not in columns:
                    raise ConfigError(
                        f'{check.name} on {asset.name}: column "{column}" does not exist',
                        location=check.location,
                        hint=did_you_mean(column, columns) or f"{asset.name} has: " + ", ".join(columns),
                    )
        if check.kind == "relationships":
            parent = str(check.params["to"]).rsplit(".", 1)[0]
            if parent not in graph.assets:
                raise ConfigError(
                    f'{check.name}: unknown asset "{parent}"',
                    location=check.location,
                    hint=did_you_mean(parent, graph.assets),
                )
