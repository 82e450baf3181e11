"""The semantic layer and exposures of a dbt project: semantic models, metrics, saved queries and
exposures, kept as declared (with the assets they are defined on) so that metrics can be served
from them; a run builds nothing from them, and loading says so."""

from __future__ import annotations

import logging
from typing import Any, Literal

from gristmill.errors import ProjectError
from gristmill.project.dbt.jinja import Relation
from gristmill.project.dbt.properties import Entry
from gristmill.project.specs import SemanticSpec

log = logging.getLogger("gristmill.dbt")
Kind = Literal["semantic_model", "metric", "saved_query", "exposure"]
_KINDS: dict[str, Kind] = {
    "semantic_models": "semantic_model",
    "metrics": "metric",
    "saved_queries": "saved_query",
    "exposures": "exposure",
}
_NAMES = {
    "semantic_model": ("semantic model", "semantic models"),
    "metric": ("metric", "metrics"),
    "saved_query": ("saved query", "saved queries"),
    "exposure": ("exposure", "exposures"),
}


def semantic_specs(declared: dict[str, list[Entry]], evaluate: Any) -> tuple[SemanticSpec, ...]:
    """``evaluate(expression, where)`` gives the relation ``ref('orders')`` names."""
    specs: list[SemanticSpec] = []
    for key, kind in _KINDS.items():
        for entry in declared.get(key, []):
            where = f"{entry.file}:{entry.line}"
            specs.append(
                SemanticSpec(kind, entry.name, where, dict(entry.data), _reads(entry, evaluate, where))
            )
    if specs:
        counts = [
            f"{n} {_NAMES[kind][n != 1]}"
            for kind in _KINDS.values()
            if (n := sum(1 for s in specs if s.kind == kind))
        ]
        log.warning(
            "%s loaded and kept as declared; metrics are not served yet, and a run builds nothing "
            "from them (see docs/dbt.md)",
            ", ".join(counts),
        )
    return tuple(specs)


def _reads(entry: Entry, evaluate: Any, where: str) -> tuple[str, ...]:
    data = entry.data
    expressions: list[str] = []
    if entry.kind == "semantic_models" and data.get("model"):
        expressions.append(str(data["model"]))
    if entry.kind == "exposures":
        depends = data.get("depends_on")
        if isinstance(depends, list):
            expressions.extend(str(d) for d in depends if d)
    reads = []
    for expression in expressions:
        try:
            found = evaluate(expression.strip().removeprefix("{{").removesuffix("}}").strip(), where)
        except ProjectError as err:
            log.warning("%s: %s %s: %s", where, _NAMES[_KINDS[entry.kind]][0], entry.name, err.message)
            continue
        if isinstance(found, Relation):
            reads.append(found.asset)
    return tuple(reads)
