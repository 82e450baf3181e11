"""One graph of every asset: landed source tables and models, edges found by parsing SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from gristmill._util.dag import DependencyCycle, topological_order
from gristmill._util.suggest import did_you_mean
from gristmill.errors import ConfigError, CycleError
from gristmill.project.checks import query_reads
from gristmill.project.contracts import ContractSpec
from gristmill.project.definition import Project
from gristmill.project.specs import STREAM_SOURCES, CheckSpec, ModelSpec, SourceSpec, SourceTable
from gristmill.sql.parse import ParsedModel, parse_cached, parse_model
from gristmill.sql.validate import check_tables

AssetKind = Literal["source", "table", "view", "incremental", "snapshot", "dimension", "fact", "stream"]


@dataclass(frozen=True)
class Asset:
    name: str
    kind: AssetKind
    upstream: tuple[str, ...]
    tags: tuple[str, ...] = ()
    source: SourceSpec | None = None
    table: SourceTable | None = None
    model: ModelSpec | None = None
    parsed: ParsedModel | None = None
    incremental_parsed: ParsedModel | None = None
    """The model's second rendering for incremental runs, when it has one."""
    checks: tuple[CheckSpec, ...] = ()
    after: tuple[str, ...] = ()
    """Assets that must be built first without being read (parents of relationships checks)."""
    contract: ContractSpec | None = None
    stream_input: str | None = None
    """A stream model: the message-broker source table it reads as a stream (the others it
    reads are tables it joins)."""

    @property
    def file(self) -> str:
        if self.model is not None:
            return self.model.file
        return self.table.location if self.table is not None else ""


@dataclass(frozen=True)
class AssetGraph:
    assets: Mapping[str, Asset]
    order: tuple[str, ...]
    """Every asset after everything it reads."""
    children: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    parsed_now: Mapping[str, str] = field(default_factory=dict)
    """Parse summaries of models parsed while building the graph (new or changed text), to keep."""

    def upstream(self, name: str) -> tuple[str, ...]:
        return self.assets[name].upstream

    @property
    def warnings(self) -> list[str]:
        """Models that pass through unparsed, and why."""
        return [
            f"{a.parsed.warning}; the model runs as written, without validation or column lineage"
            for a in self.assets.values()
            if a.parsed is not None and a.parsed.warning
        ]


def build_graph(project: Project, summaries: Mapping[str, str] | None = None) -> AssetGraph:
    """``summaries`` holds what earlier parses found (see ``parse_cached``): unchanged models are
    not parsed again until a run builds them."""
    fresh: dict[str, str] = {}
    assets: dict[str, Asset] = {}
    for source in project.sources.values():
        for table in source.tables.values():
            assets[table.asset] = Asset(table.asset, "source", (), source.tags, source=source, table=table)
    known = sorted([*assets, *project.models])
    for name, model in project.models.items():
        assets[name] = _model_asset(name, model, known, assets, summaries or {}, fresh)
    _attach_contracts(project, assets)
    _attach_checks(project, assets)
    try:
        order = topological_order({name: (*asset.upstream, *asset.after) for name, asset in assets.items()})
    except DependencyCycle as cycle:
        _check_reads_downstream(cycle.cycle, assets)
        files = " -> ".join(assets[name].file or name for name in cycle.cycle)
        raise CycleError(
            f"models read each other in a loop: {' -> '.join(cycle.cycle)}",
            location=files,
            hint="break the loop: one of these models must not read the other",
        ) from None
    children: dict[str, list[str]] = {name: [] for name in assets}
    for name in order:
        for parent in assets[name].upstream:
            children[parent].append(name)
    return AssetGraph(assets, tuple(order), {k: tuple(v) for k, v in children.items()}, fresh)


def _model_asset(
    name: str,
    model: ModelSpec,
    known: list[str],
    assets: dict[str, Asset],
    summaries: Mapping[str, str],
    fresh: dict[str, str],
) -> Asset:
    """The asset of one model, with what it reads found in its SQL (or declared, for Python)."""
    if model.error is not None:  # raised if a command selects it (see selection.select)
        return Asset(name, model.kind, (), model.tags, model=model)
    if model.language == "python":
        for read in model.reads:
            if read not in known:
                raise ConfigError(
                    f'reads an unknown asset "{read}"',
                    location=model.file,
                    hint=did_you_mean(read, known) or "it is neither a model nor a source table",
                )
        return Asset(name, model.kind, model.reads, model.tags, model=model)
    parsed = parse_cached(
        model.sql,
        file=model.file,
        first_line=model.sql_line,
        dialect=model.dialect,
        summaries=summaries,
        fresh=fresh,
        passthrough=model.passthrough,
    )
    second = (
        parse_model(
            model.incremental_sql,
            file=model.file,
            first_line=model.sql_line,
            dialect=model.dialect,
            passthrough=model.passthrough,
        )
        if model.incremental_sql
        else None
    )
    _refuse_self_read(name, parsed)
    # An incremental rendering may read the model's own table (the rows it already holds):
    # that is not a dependency.
    reads = tuple(
        dict.fromkeys(
            ref.asset
            for p in (parsed, second)
            if p is not None
            for ref in p.reads
            if ref.asset != name and (not p.passthrough or ref.asset in known)
        )
    )
    for p in (parsed, second):
        if p is not None:
            check_tables(p, [*known, name] if p is second else known)
    for column, lookup in model.lookups.items():
        if lookup.dimension not in known:
            raise ConfigError(
                f'lookups.{column}: unknown dimension "{lookup.dimension}"',
                location=model.file,
                hint=did_you_mean(lookup.dimension, known),
            )
    # A fact reads the dimensions it looks keys up in, even when its SQL does not name them.
    reads = tuple(dict.fromkeys([*reads, *(lookup.dimension for lookup in model.lookups.values())]))
    return Asset(
        name,
        model.kind,
        reads,
        model.tags,
        model=model,
        parsed=parsed,
        incremental_parsed=second,
        stream_input=_stream_input(model, reads, assets) if model.kind == "stream" else None,
    )


def _attach_contracts(project: Project, assets: dict[str, Asset]) -> None:
    for name, contract in project.contracts.items():
        if name not in assets:
            raise ConfigError(
                f'contract for an unknown asset "{name}"',
                location=contract.file,
                hint=did_you_mean(name, assets) or "`gristmill ls` lists the assets",
            )
        tags = tuple(dict.fromkeys([*assets[name].tags, *contract.tags]))
        assets[name] = replace(assets[name], contract=contract, tags=tags)


def _attach_checks(project: Project, assets: dict[str, Asset]) -> None:
    by_asset: dict[str, list[CheckSpec]] = {}
    for check in project.checks:
        if check.asset not in assets:
            raise ConfigError(
                f'checks name an unknown asset "{check.asset}"',
                location=check.location,
                hint=did_you_mean(check.asset, assets),
            )
        by_asset.setdefault(check.asset, []).append(check)
    for name, checks in by_asset.items():
        # A relationships check reads its parent table: build the parent first. That orders the
        # run but is not a data dependency, so it changes neither fingerprints nor selections.
        parents = [str(c.params["to"]).rsplit(".", 1)[0] for c in checks if c.kind == "relationships"]
        parents += [table for c in checks for table in _query_reads(c, assets)]
        after = tuple(
            dict.fromkeys(p for p in parents if p in assets and p != name and p not in assets[name].upstream)
        )
        assets[name] = replace(assets[name], after=after, checks=tuple(checks))


def _refuse_self_read(name: str, parsed: ParsedModel) -> None:
    """A model whose SQL names its own table reads a table it is about to replace: a loop of one,
    reported as such (the engine would only say that the new table does not exist yet)."""
    for ref in parsed.reads:
        if ref.asset == name:
            raise CycleError(
                f"{name} reads itself: a model cannot select from the table it builds",
                location=f"{parsed.file}:{ref.line}:{ref.col}",
                hint="read its upstream tables instead; an incremental or fact model that needs the rows "
                "it already holds reads them as `this`, e.g. `select max(id) from this` "
                "(dbt's {{ this }}; docs/transformation.md)",
            )


def _stream_input(model: ModelSpec, reads: Sequence[str], assets: Mapping[str, Asset]) -> str:
    """The one message-broker table a stream model reads."""
    streams = [r for r in reads if r in assets and (s := assets[r].source) and s.kind in STREAM_SOURCES]
    if len(streams) != 1:
        raise ConfigError(
            "a stream model reads exactly one stream (a kafka, nats or mqtt source table); "
            + ("it reads none" if not streams else f"it reads {', '.join(streams)}"),
            location=model.file,
            hint="join other streams' landed tables instead, or split the model",
        )
    return streams[0]


def _check_reads_downstream(cycle: Sequence[str], assets: Mapping[str, Asset]) -> None:
    """A loop closed by a check (not by SQL): say which check, and where it belongs."""
    for first, second in zip(cycle, [*cycle[1:], cycle[0]], strict=True):
        for checked, read in ((first, second), (second, first)):
            if read in assets[checked].after:
                check = next(
                    (c for c in assets[checked].checks if read in (*_query_reads(c, assets), _parent(c))),
                    None,
                )
                name = check.name if check else "a check"
                raise CycleError(
                    f"{name} on {checked} reads {read}, which is built from {checked}",
                    location=check.location if check else assets[checked].file,
                    hint=f"declare the check on {read}: it runs once both are built",
                )


def _parent(check: CheckSpec) -> str | None:
    return str(check.params["to"]).rsplit(".", 1)[0] if check.kind == "relationships" else None


def _query_reads(check: CheckSpec, assets: Mapping[str, Asset]) -> list[str]:
    """The assets a ``query`` check reads; a name in a model schema that is no asset is a typo."""
    schemas = {name.split(".", 1)[0] for name in assets}
    found: list[str] = []
    for table in query_reads(check):
        if table in assets:
            found.append(table)
        elif table.split(".", 1)[0] in schemas:
            raise ConfigError(
                f'{check.name} reads "{table}", which is no asset',
                location=check.location,
                hint=did_you_mean(table, assets) or "`gristmill ls` lists the assets",
            )
    return found
