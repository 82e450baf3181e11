"""An asset's catalog page: schema, description, owner, tags, personal-data classes, upstream and
downstream, its builds (versions) with row-count and freshness charts, check history, and a
sample of rows read through the same reader as the data API, with personal data masked in the
query itself (the values never leave the engine)."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response
from sqlglot import exp

from gristmill.errors import ConfigError
from gristmill.ui.pages.runs import run_env

if TYPE_CHECKING:
    from fastapi import APIRouter

    from gristmill.server.reading import ServedRelation
    from gristmill.ui.render import Ui
    from gristmill.ui.services import UiServices

SAMPLE_ROWS = 20
BUILDS = 30
MAX_CELL = 120


def sample_query(relation: ServedRelation, pii: dict[str, str], limit: int = SAMPLE_ROWS) -> exp.Select:
    """``SELECT`` of the first rows, each personal-data column replaced by a constant text."""
    columns: list[exp.Expr] = [
        exp.alias_(exp.Literal.string(f"masked ({pii[c.name]})"), c.name, quoted=True)
        if c.name in pii
        else exp.column(c.name, quoted=True)
        for c in relation.columns
    ]
    table = exp.table_(relation.name, db=relation.schema, quoted=True)
    return exp.select(*columns).from_(table).limit(limit)


def _cell(value: Any) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def builds(services: UiServices, name: str) -> list[dict[str, Any]]:
    """The asset's latest builds, oldest first: run, rows, when, hours since the previous build."""
    found: list[dict[str, Any]] = []
    for run in services.workspace.runs(BUILDS, asset=name):
        if run_env(run) != services.env:  # another environment's build is not this table's version
            continue
        for step in services.workspace.steps(run.run_id):
            if step.asset == name and step.action == "build" and step.status == "success":
                at = step.started_at or run.started_at
                found.append({"run": run.run_id, "rows": step.rows, "at": at})
    found.sort(key=lambda b: b["at"])
    for before, after in pairwise(found):
        gap = datetime.fromisoformat(after["at"]) - datetime.fromisoformat(before["at"])
        after["hours"] = round(gap.total_seconds() / 3600, 2)
    return found


def history_chart(points: list[dict[str, Any]], field: str, title: str) -> dict[str, Any] | None:
    values = [p for p in points if p.get(field) is not None]
    if len(values) < 1:
        return None
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "width": "container",
        "height": 120,
        "title": {"text": title, "anchor": "start", "fontSize": 12},
        "data": {"values": values},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "at", "type": "temporal", "title": None, "axis": {"format": "%b %d %H:%M"}},
            "y": {"field": field, "type": "quantitative", "title": None},
            "tooltip": [{"field": "run"}, {"field": "at", "type": "temporal"}, {"field": field}],
        },
    }


def data(services: UiServices, schema: str, name: str) -> dict[str, Any]:
    full = f"{schema}.{name}"
    with services.reader.pin() as pinned:
        served = pinned.relations()
        relation = served.get(full)
        if relation is None:
            raise ConfigError(f"{full} is not served in {services.env}", hint="the Catalog lists what is")
        graph = services.workspace.graph
        asset = graph.assets.get(full)
        contract = asset.contract if asset is not None else None
        pii = dict(contract.pii) if contract is not None else {}
        table = pinned.read(sample_query(relation, pii)).read_all()
        snapshot = pinned.snapshot
    rows = [[_cell(v) for v in row.values()] for row in table.to_pylist()]
    checks, _ = services.workspace.quality_history([full], env=services.env, runs=20)
    built = builds(services, full)
    return {
        "relation": relation,
        "snapshot": snapshot,
        "description": relation.description or (contract.description if contract else None),
        "pii": pii,
        "upstream": sorted(asset.upstream) if asset else [],
        "downstream": sorted(graph.children.get(full, ())),
        "served": set(served),
        "file": asset.file if asset else "",
        "sample": {"columns": table.column_names, "rows": rows},
        "checks": sorted(checks, key=lambda c: (c.run_id, c.check), reverse=True),
        "builds": list(reversed(built)),
        "rows_chart": history_chart(built, "rows", "Rows at each build"),
        "fresh_chart": history_chart(built, "hours", "Hours since the previous build"),
    }


def mount(router: APIRouter, ui: Ui) -> None:
    def page(request: Request, schema: str, name: str) -> Response:
        return ui.show(request, "asset.html.j2", lambda: data(ui.services, schema, name), active="catalog")

    router.add_api_route("/catalog/{schema}/{name}", page, methods=["GET"])
