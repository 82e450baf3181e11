"""Catalog: search over the served assets and their columns: names, descriptions, tags, owners.
``?q=`` holds the search (words all must match, case-insensitive), so a search is a link."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response

if TYPE_CHECKING:
    from fastapi import APIRouter

    from gristmill.server.reading import ServedColumn, ServedRelation
    from gristmill.ui.render import Ui
    from gristmill.ui.services import UiServices


def _text(relation: ServedRelation) -> str:
    return " ".join(
        [relation.full_name, relation.kind, relation.description or "", relation.owner or "", *relation.tags]
    ).lower()


def _column_text(column: ServedColumn) -> str:
    return f"{column.name} {column.description or ''}".lower()


def search(relations: dict[str, ServedRelation], q: str) -> list[dict[str, Any]]:
    """Assets whose name, description, tags or owner, or one of whose columns (name,
    description), hold every word of ``q``; an empty ``q`` lists them all. Matching columns are
    named, so a search for a column shows where it lives."""
    words = q.lower().split()
    found = []
    for name in sorted(relations):
        relation = relations[name]
        own = _text(relation)
        columns = [
            c.name
            for c in relation.columns
            if all(w in f"{c.name} {c.description or ''}".lower() for w in words)
        ]
        asset_hit = all(w in own for w in words)
        if not words or asset_hit or columns:
            found.append({"relation": relation, "columns": [] if asset_hit or not words else columns})
    return found


def data(services: UiServices, q: str = "") -> dict[str, Any]:
    with services.reader.pin() as pinned:
        relations = pinned.relations()
        snapshot = pinned.snapshot
    return {"q": q, "results": search(relations, q), "total": len(relations), "snapshot": snapshot}


def mount(router: APIRouter, ui: Ui) -> None:
    def catalog(request: Request, q: str = "") -> Response:
        return ui.show(request, "catalog.html.j2", lambda: data(ui.services, q), active="catalog")

    router.add_api_route("/catalog", catalog, methods=["GET"])
