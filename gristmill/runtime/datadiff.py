"""``gristmill diff``: one table compared between two environments or two lake snapshots, by key,
in the engine (the statements are in ``sql/datadiff.py``; nothing but bounded results comes back).

Where each side is read: an environment's tables are its views (``<schema>__<env>``, prod's in
the model's own schema); an environment at a past snapshot is the physical table its pointer named
then, read with DuckLake's time travel (``AT (VERSION => n)``), in the same statement as the other
side, so both sides meet in one join.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from gristmill._util.suggest import did_you_mean
from gristmill.engines import Relation, no_data_yet, open_engine
from gristmill.engines.registry import open_at_snapshot
from gristmill.errors import ConfigError, GristmillError
from gristmill.plan.planner import view_schema
from gristmill.runtime.diffresult import DataDiff, DiffRequest, KeyProblems, RowDiff, SchemaDiff
from gristmill.runtime.planning import check_env
from gristmill.sql import datadiff as statements
from gristmill.sql import types
from gristmill.state.lake.environments import read_pointers

if TYPE_CHECKING:
    from gristmill.engines.base import Column, Engine
    from gristmill.plan import Asset, AssetGraph
    from gristmill.project import Project

_ONE_ROW_PER_KEY = ("incremental", "fact", "table", "view")
_NUMERIC = exp.DataType.NUMERIC_TYPES
_FLOATS = exp.DataType.FLOAT_TYPES


def diff(project: Project, graph: AssetGraph, request: DiffRequest) -> DataDiff:
    """Compare ``request.table`` between its two sides (see ``DiffRequest``)."""
    name = _asset_name(graph, request.table)
    asset = graph.assets[name]
    key, key_from = _key(asset, request.key)
    settings, root = project.settings, project.root
    check_env(request.env)
    against = request.against or request.env
    check_env(against)
    travel = request.snapshot is not None or request.as_of is not None
    if not travel and against == request.env:
        raise ConfigError(
            f"nothing to compare {request.env}'s {name} against",
            hint="pass --against ENV (another environment), --snapshot N or --as-of TIME",
        )
    if no_data_yet(settings, root):
        raise GristmillError("this project has no data yet", hint="run `gristmill run` first")
    engine = open_engine(settings, root, read_only=True)
    try:
        head = _current(engine, asset, request.env)
        if travel:
            snapshot = _snapshot(engine, request)
            base, base_label = (
                _at_snapshot(project, engine, asset, against, snapshot),
                f"{against} at snapshot {snapshot}",
            )
        else:
            base, base_label = _current(engine, asset, against), against
        return _compare(engine, name, (base, base_label), (head, request.env), key, key_from, request)
    finally:
        engine.close()


def served_apart(project: Project, env: str, against: str) -> set[str]:
    """The models ``env`` serves from another table than ``against`` does (what promoting ``env``
    would switch), both sides built: the candidates of ``plan --diff``."""
    check_env(env)
    check_env(against)
    if no_data_yet(project.settings, project.root):
        return set()
    engine = open_engine(project.settings, project.root, read_only=True)
    try:
        mine, theirs = read_pointers(engine, env), read_pointers(engine, against)
    finally:
        engine.close()
    return {asset for asset, physical in mine.items() if asset in theirs and theirs[asset] != physical}


def _asset_name(graph: AssetGraph, table: str) -> str:
    if table in graph.assets:
        return table
    short = [name for name in graph.assets if name.split(".", 1)[1] == table]
    if len(short) == 1:
        return short[0]
    guess = did_you_mean(table, graph.assets)
    raise ConfigError(
        f"{table} is not an asset of this project"
        + (f" (several match: {', '.join(sorted(short))})" if short else ""),
        hint=guess or "`gristmill ls` lists them",
    )


def _key(asset: Asset, given: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    """The columns identifying a row: given, else a ``unique`` check's, else the model's ``key``
    where it names one row."""
    if given:
        return given, "--key"
    for check in asset.checks:
        if check.kind == "unique" and check.columns:
            return tuple(check.columns), f"its check {check.name}"
    # A merge key names one row; a snapshot's or a dimension's natural key names its versions.
    if asset.model is not None and asset.model.key and asset.model.kind in _ONE_ROW_PER_KEY:
        return tuple(asset.model.key), "the model's key"
    raise ConfigError(
        f"{asset.name} declares no key to match rows by",
        hint="pass --key COLUMN[,COLUMN...], or declare one: `key:` in the model's header or "
        "`unique: true` on a column of its contract",
    )


def _current(engine: Engine, asset: Asset, env: str) -> exp.Table:
    schema, name = asset.name.split(".", 1)
    relation = Relation(view_schema(schema, env) if asset.model is not None else schema, name)
    if not engine.exists(relation):
        raise GristmillError(
            f"{asset.name} is not built in {env}",
            hint=f"`gristmill run --env {env}` builds it" if env != "prod" else "`gristmill run` builds it",
        )
    return engine.table(relation)


def _snapshot(engine: Engine, request: DiffRequest) -> int:
    """The snapshot asked for: by number, or the newest at or before ``as_of``."""
    if request.snapshot is not None:
        return request.snapshot
    assert request.as_of is not None
    try:
        moment = datetime.fromisoformat(request.as_of.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--as-of {request.as_of!r} is not an ISO 8601 time", hint="e.g. --as-of 2026-12-07T21:00:00Z"
        ) from None
    query = (
        exp.select(exp.func("MAX", exp.column("snapshot_id")).as_("id"))
        .from_(
            exp.Anonymous(
                this="ducklake_snapshots",
                expressions=[exp.Literal.string(engine.table(Relation("main", "t")).catalog)],
            )
        )
        .where(
            exp.LTE(
                this=exp.column("snapshot_time"),
                expression=exp.cast(
                    exp.Literal.string(moment.isoformat()), exp.DataType.build("timestamptz")
                ),
            )
        )
    )
    row = engine.row(query)
    if row is None or row["id"] is None:
        raise ConfigError(f"--as-of {request.as_of}: the lake has no snapshot at or before it")
    return int(row["id"])


def _at_snapshot(project: Project, engine: Engine, asset: Asset, env: str, snapshot: int) -> exp.Table:
    """The table ``env`` served ``asset`` from at ``snapshot``, addressed by time travel."""
    past = None
    try:
        past = open_at_snapshot(project.settings, project.root, snapshot)
    except GristmillError as err:
        raise GristmillError(f"snapshot {snapshot} cannot be read: {err.message}") from None
    if past is None:
        raise ConfigError(
            "--snapshot and --as-of need snapshots, which this project's storage does not keep",
            hint='time travel works on DuckLake storage ([storage] format = "ducklake")',
        )
    try:
        physical = read_pointers(past, env).get(asset.name) if asset.model is not None else asset.name
        if physical is None or not past.exists(Relation.of(physical)):
            raise GristmillError(f"{asset.name} was not built in {env} at snapshot {snapshot}")
    finally:
        past.close()
    table = engine.table(Relation.of(physical))
    table.set("when", exp.HistoricalData(this="AT", kind="VERSION", expression=exp.Literal.number(snapshot)))
    return table


def _how(base: exp.DataType, head: exp.DataType, tolerance: float | None) -> statements.Comparison:
    floats = base.is_type(*_FLOATS) or head.is_type(*_FLOATS)
    if base == head or (base.is_type(*_NUMERIC) and head.is_type(*_NUMERIC)):
        return "tolerance" if floats and tolerance is not None else "exact"
    return "text"


def _schema(base: list[Column], head: list[Column], dialect: str) -> SchemaDiff:
    old, new = dict(base), dict(head)
    return SchemaDiff(
        added=tuple((c, types.render(t, dialect)) for c, t in head if c not in old),
        removed=tuple((c, types.render(t, dialect)) for c, t in base if c not in new),
        retyped=tuple(
            (c, types.render(t, dialect), types.render(new[c], dialect))
            for c, t in base
            if c in new and t != new[c]
        ),
    )


def _compared(
    base: list[Column], head: list[Column], key: tuple[str, ...], request: DiffRequest
) -> list[statements.Compared]:
    old, new = dict(base), dict(head)
    for side, columns in (("base", old), ("head", new)):
        missing = [k for k in key if k not in columns]
        if missing:
            raise ConfigError(
                f"key column {', '.join(missing)} is not in the {side} side's table",
                hint=f"its columns: {', '.join(columns)}",
            )
    wanted = request.columns or tuple(c for c, _ in head)
    unknown = [c for c in wanted if c not in old and c not in new]
    if unknown:
        raise ConfigError(f"--columns: no column {', '.join(unknown)}", hint=f"columns: {', '.join(new)}")
    return [
        statements.Compared(c, _how(old[c], new[c], request.tolerance))
        for c in wanted
        if c in old and c in new and c not in key
    ]


def _compare(
    engine: Engine,
    name: str,
    base: tuple[exp.Table, str],
    head: tuple[exp.Table, str],
    key: tuple[str, ...],
    key_from: str,
    request: DiffRequest,
) -> DataDiff:
    (old, base_label), (new, head_label) = base, head
    old_columns, new_columns = engine.describe(old), engine.describe(new)
    compared = _compared(old_columns, new_columns, key, request)
    probe = engine.row(statements.key_probe(old, new, key)) or {}
    problems = {
        side: _problems(engine, table, key, probe, side, request.sample)
        for side, table in (("base", old), ("head", new))
    }
    exclude = any(p.duplicate_keys for p in problems.values())
    options: dict[str, Any] = {"tolerance": request.tolerance, "exclude_duplicates": exclude}
    counts = engine.row(statements.summary(old, new, key, compared, **options)) or {}
    differs = any(counts.get(kind) for kind in statements.KINDS)
    rows = (
        engine.rows(statements.sample(old, new, key, compared, request.sample, **options))
        if differs and request.sample > 0
        else []
    )
    return DataDiff(
        table=name,
        base=base_label,
        head=head_label,
        key=key,
        key_from=key_from,
        schema=_schema(old_columns, new_columns, engine.dialect),
        base_rows=int(probe.get("base_rows") or 0),
        head_rows=int(probe.get("head_rows") or 0),
        added=int(counts.get("added") or 0),
        removed=int(counts.get("removed") or 0),
        changed=int(counts.get("changed") or 0),
        unchanged=int(counts.get("same") or 0),
        compared=tuple(c.name for c in compared),
        column_changes={c.name: int(counts.get(f"_d{i}") or 0) for i, c in enumerate(compared)},
        samples=_samples(rows, key, compared),
        base_keys=problems["base"],
        head_keys=problems["head"],
        tolerance=request.tolerance,
    )


def _problems(
    engine: Engine, table: exp.Table, key: tuple[str, ...], probe: dict[str, Any], side: str, n: int
) -> KeyProblems:
    keys = int(probe.get(f"{side}_duplicate_keys") or 0)
    sample: tuple[dict[str, Any], ...] = ()
    if keys and n > 0:
        sample = tuple(
            {**{k: row[k] for k in key}, "rows": int(row["_n"])}
            for row in engine.rows(statements.key_sample(table, key, n))
        )
    return KeyProblems(
        null_keys=int(probe.get(f"{side}_null_keys") or 0),
        duplicate_keys=keys,
        duplicate_rows=int(probe.get(f"{side}_duplicate_rows") or 0),
        sample=sample,
    )


def _samples(
    rows: list[dict[str, Any]], key: tuple[str, ...], compared: list[statements.Compared]
) -> dict[str, tuple[RowDiff, ...]]:
    found: dict[str, list[RowDiff]] = {kind: [] for kind in statements.KINDS}
    for row in rows:  # at most ``sample`` rows of each kind: the bounded answer, not the data
        kind = row["_kind"]
        base = {c.name: row[f"_b{i}"] for i, c in enumerate(compared)}
        head = {c.name: row[f"_h{i}"] for i, c in enumerate(compared)}
        found[kind].append(
            RowDiff(
                kind=kind,
                key={k: row[f"_k{i}"] for i, k in enumerate(key)},
                base=None if kind == "added" else base,
                head=None if kind == "removed" else head,
                changed=tuple(c.name for i, c in enumerate(compared) if row[f"_d{i}"])
                if kind == "changed"
                else (),
            )
        )
    return {kind: tuple(found[kind]) for kind in statements.KINDS}
