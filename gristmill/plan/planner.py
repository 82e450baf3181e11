"""Decide what a run does, and why, without running anything.

Every asset gets a fingerprint made of its parts: its definition (normalised SQL and kind, or
source options), its checks, the fingerprints of what it reads, and for sources a marker of
the data itself. A step is skipped when the live version has the same fingerprint; otherwise
the plan names which part changed. Models are validated here against the columns of what
they read, so a typo fails before any SQL runs.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gristmill._util.suggest import did_you_mean
from gristmill.errors import ConfigError, SelectionError
from gristmill.plan.graph import Asset, AssetGraph
from gristmill.sql.validate import output_columns


@dataclass(frozen=True)
class Recorded:
    """What the lake says about an asset's live version."""

    fingerprint: str
    parts: Mapping[str, Any]
    run_id: int
    rows: int | None = None
    built_at: str | None = None


@dataclass(frozen=True)
class Step:
    asset: Asset
    action: Literal["build", "skip"]
    reason: str
    fingerprint: str
    parts: Mapping[str, Any] = field(default_factory=dict)
    columns: tuple[str, ...] | None = None
    """The columns the asset will have, when known before running."""
    refresh: bool = False
    """Rebuild from scratch: an incremental source starts again from its first row."""

    @property
    def name(self) -> str:
        return self.asset.name


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]

    @property
    def builds(self) -> list[Step]:
        return [s for s in self.steps if s.action == "build"]

    @property
    def skips(self) -> list[Step]:
        return [s for s in self.steps if s.action == "skip"]


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _parts(asset: Asset, upstream: Mapping[str, str | None], marker: str | None) -> dict[str, Any]:
    if asset.parsed is not None:
        definition = _digest([asset.kind, asset.parsed.fingerprint_sql])
    else:
        assert asset.source is not None and asset.table is not None
        definition = _digest(
            [
                asset.source.kind,
                asset.source.options,
                {k: v for k, v in asset.table.options.items() if k != "checks"},
            ]
        )
    checks = _digest(sorted([c.name, c.severity, c.params] for c in asset.checks))
    parts: dict[str, Any] = {"definition": definition, "checks": checks, "upstream": dict(upstream)}
    if asset.kind == "source":
        parts["data"] = marker if marker is not None else f"unknown:{uuid.uuid4().hex}"
    return parts


def _reason(
    asset: Asset,
    parts: Mapping[str, Any],
    recorded: Recorded | None,
    exists: bool,
    full_refresh: bool,
    changed_upstream: Sequence[str],
) -> str | None:
    """Why the asset must be built, or None when the live version is current."""
    if recorded is None:
        return "new: never built"
    if not exists:
        return "missing from the lake"
    if full_refresh:
        return "full refresh requested"
    old = recorded.parts
    if parts["definition"] != old.get("definition"):
        return "SQL changed" if asset.parsed is not None else "source settings changed"
    if parts.get("data") != old.get("data"):
        if str(parts.get("data", "")).startswith("unknown:"):
            return "source cannot tell whether it changed, so it is reloaded"
        return "source data changed"
    if parts["checks"] != old.get("checks"):
        return "checks changed"
    if changed_upstream:
        return "upstream changed: " + ", ".join(changed_upstream)
    if parts["upstream"] != old.get("upstream"):
        return "upstream versions changed"
    return None


def make_plan(
    graph: AssetGraph,
    selected: Sequence[str],
    *,
    recorded: Mapping[str, Recorded],
    existing_columns: Mapping[str, Sequence[str]],
    source_columns: Mapping[str, Sequence[str]],
    markers: Mapping[str, str | None],
    full_refresh: bool = False,
) -> Plan:
    chosen = set(selected)
    fingerprints: dict[str, str | None] = {}
    columns: dict[str, Sequence[str] | None] = {}
    rebuilding: set[str] = set()
    steps: list[Step] = []
    for name in graph.order:
        asset = graph.assets[name]
        if name not in chosen:
            fingerprints[name] = recorded[name].fingerprint if name in recorded else None
            columns[name] = existing_columns.get(name)
            continue
        for parent in asset.upstream:
            if fingerprints.get(parent) is None:
                raise SelectionError(
                    f"{name} reads {parent}, which has never been built",
                    hint=f"select it too: -s +{name.split('.', 1)[1]}",
                )
        if asset.parsed is not None:
            schemas = {p: columns[p] for p in asset.upstream}
            known = {p: list(c) for p, c in schemas.items() if c is not None}
            predicted = output_columns(asset.parsed, known) if len(known) == len(schemas) else None
            columns[name] = predicted if predicted is not None else existing_columns.get(name)
        else:
            columns[name] = source_columns.get(name) or existing_columns.get(name)
        _validate_checks(asset, columns[name], graph)
        parts = _parts(asset, {p: fingerprints[p] for p in asset.upstream}, markers.get(name))
        fingerprint = _digest(parts)
        reason = _reason(
            asset,
            parts,
            recorded.get(name),
            name in existing_columns,
            full_refresh,
            [p for p in asset.upstream if p in rebuilding],
        )
        if reason is None:
            fingerprints[name] = recorded[name].fingerprint
            steps.append(
                Step(
                    asset,
                    "skip",
                    f"unchanged since run {recorded[name].run_id}",
                    recorded[name].fingerprint,
                    parts,
                    _tuple(columns[name]),
                )
            )
        else:
            fingerprints[name] = fingerprint
            rebuilding.add(name)
            steps.append(
                Step(asset, "build", reason, fingerprint, parts, _tuple(columns[name]), refresh=full_refresh)
            )
    return Plan(tuple(steps))


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
