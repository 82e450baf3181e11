"""What changed about an asset since the environment last served it, and what its step does
about it: build, switch to a table built before, or skip — with the reason a user reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gristmill.plan.graph import Asset
from gristmill.sql.lineage import ROWS


@dataclass(frozen=True)
class Recorded:
    """What the lake says about one physical table (a source table, or one version of a model)."""

    fingerprint: str
    parts: Mapping[str, Any]
    run_id: int
    rows: int | None = None
    built_at: str | None = None


Action = Literal["build", "skip", "switch"]
Change = Literal["added", "breaking", "non-breaking", "indirect", "unchanged"]


def categorise(
    asset: Asset,
    parts: Mapping[str, Any],
    pointers: Mapping[str, str],
    recorded: Mapping[str, Recorded],
) -> tuple[Change, tuple[str, ...]]:
    """Compare with what the environment serves now: added, changed itself (breaking when a
    column it had changed or disappeared, non-breaking when columns were only added), changed
    through upstream columns it reads (indirect), or unchanged."""
    served = pointers.get(asset.name) or (asset.name if asset.kind == "source" else None)
    old = recorded.get(served) if served else None
    if old is None:
        return "added", ()
    if old.parts.get("version") == parts["version"]:
        return "unchanged", ()
    if old.parts.get("definition") != parts["definition"]:
        before = {c: fp for c, fp in dict(old.parts.get("columns", {})).items() if c != ROWS}
        after = dict(parts["columns"])
        changed = tuple(sorted(c for c, fp in before.items() if after.get(c) != fp))
        if changed or not before:
            return "breaking", changed
        return "non-breaking", tuple(sorted(set(after) - set(before) - {ROWS}))
    before_reads = dict(old.parts.get("reads", {}))
    changed = tuple(sorted(r for r, fp in parts["reads"].items() if before_reads.get(r) != fp))
    return "indirect", changed


def describe_change(change: Change, changed: Sequence[str]) -> str:
    listed = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    if change == "breaking":
        return f"SQL changed (breaking: {listed})" if changed else "SQL changed (breaking)"
    if change == "non-breaking":
        return f"SQL changed (non-breaking: adds {listed})" if changed else "SQL changed (non-breaking)"
    if change == "indirect":
        return f"reads changed {listed}" if changed else "upstream changed"
    return "new version"


def decide(
    asset: Asset,
    parts: Mapping[str, Any],
    fingerprint: str,
    target: str,
    recorded: Mapping[str, Recorded],
    pointers: Mapping[str, str],
    existing_columns: Mapping[str, Sequence[str]],
    full_refresh: bool,
) -> tuple[Action, str]:
    found = recorded.get(target)
    if found is None:
        if asset.kind == "source":
            return "build", "new: never loaded"
        served_name = pointers.get(asset.name)
        served = recorded.get(served_name) if served_name else None
        if served is None:
            return "build", "new: never built"
        if served.parts.get("version") == parts["version"]:
            return "build", data_reason(parts, served.parts) or "new version"
        return "build", "new version"
    if target not in existing_columns:
        return "build", "missing from the lake"
    if full_refresh:
        return "build", "full refresh requested"
    old = found.parts
    if asset.kind == "source" and parts["definition"] != old.get("definition"):
        return "build", "source settings changed"
    changed = data_reason(parts, old)
    if changed:
        if asset.kind == "source" and str(parts["data"][asset.name]).startswith("unknown:"):
            return "build", "source cannot tell whether it changed, so it is reloaded"
        return "build", changed
    if parts["checks"] != old.get("checks"):
        return "build", "checks changed"
    if asset.kind != "source" and pointers.get(asset.name) != target:
        return "switch", f"reuses the table built in run {found.run_id}"
    return "skip", f"unchanged since run {found.run_id}"


def data_reason(parts: Mapping[str, Any], old: Mapping[str, Any]) -> str | None:
    old_data: Mapping[str, Any] = old["data"] if isinstance(old.get("data"), dict) else {}
    changed = sorted(s for s, marker in parts["data"].items() if old_data.get(s) != marker)
    if not changed:
        return None
    return "source data changed: " + ", ".join(changed)
