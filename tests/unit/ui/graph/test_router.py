"""The graph's routes over the example project (``gristmill init``), in a FastAPI app of their own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gristmill.plan import Asset
from gristmill.project.specs import CheckSpec
from gristmill.ui.graph import payload
from gristmill.ui.graph.lineage_graph import drawn_graph
from gristmill.ui.graph.router import graph_router
from gristmill.workspace.facade import Workspace, create_demo


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    folder = create_demo(tmp_path_factory.mktemp("ui") / "shop")
    opened = Workspace(folder)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def client(workspace: Workspace) -> TestClient:
    app = FastAPI()
    app.include_router(graph_router(workspace))
    return TestClient(app)


def test_the_layout_holds_every_asset_and_each_metric(client: TestClient, workspace: Workspace) -> None:
    laid = client.get("/graph/layout.json").json()
    names = laid["nodes"]["name"]
    assert set(workspace.graph.assets) < set(names)
    assert "metrics.revenue" in names
    assert len(laid["attributes"]["status"]) == len(names)
    assert set(laid["attributes"]["status"]) <= {"never run", "metric"}  # nothing has run
    index = {n: i for i, n in enumerate(names)}
    edges = {(names[p], names[c]) for p, c, _ in laid["edges"]}
    assert ("marts.fct_invoice_line", "metrics.revenue") in edges
    assert all(laid["nodes"]["y"][index[c]] > laid["nodes"]["y"][index[p]] for p, c in edges)


def test_a_selection_uses_the_cli_syntax(client: TestClient) -> None:
    chosen = client.get("/graph/select.json", params={"expr": "+revenue"}).json()["names"]
    assert {"metrics.revenue", "marts.fct_invoice_line", "raw.chinook_export__invoice_line"} <= set(chosen)
    assert "marts.dim_track" not in chosen
    one_level = client.get("/graph/select.json", params={"expr": "stg_invoice+1"}).json()["names"]
    assert set(one_level) == {"staging.stg_invoice", "marts.dim_date", "marts.fct_invoice_line"}
    wrong = client.get("/graph/select.json", params={"expr": "+revenu"})
    assert wrong.status_code == 400
    assert "matches no asset" in wrong.json()["error"]


def test_an_assets_details_list_its_columns(client: TestClient) -> None:
    found = client.get("/graph/asset.json", params={"name": "marts.fct_invoice_line"}).json()
    assert found["catalog"] == "/catalog/marts/fct_invoice_line"
    assert "revenue" in found["columns"]
    assert "marts.dim_customer" in found["upstream"]
    assert any(check.startswith("not_null") for check in found["checks"])
    assert client.get("/graph/asset.json", params={"name": "marts.nope"}).status_code == 404


def test_column_lineage_page(client: TestClient) -> None:
    page = client.get("/graph/columns/marts/fct_invoice_line/unit_price")
    assert page.status_code == 200
    assert "raw.chinook_export__invoice_line.unit_price" in page.text
    missing = client.get("/graph/columns/marts/fct_invoice_line/nope")
    assert missing.status_code == 404
    assert "has no column" in missing.text


def test_static_files_are_cached_and_confined(client: TestClient) -> None:
    script = client.get("/graph/static/graph.js")
    assert script.status_code == 200
    assert "max-age" in script.headers["cache-control"]
    assert client.get("/graph/static/..%2Frouter.py").status_code == 404
    assert client.get("/graph/static/nothing.js").status_code == 404


def test_the_layout_is_cached_by_the_projects_shape(workspace: Workspace) -> None:
    drawn = drawn_graph(workspace.project, workspace.graph)
    assert payload.layout_of(drawn) is payload.layout_of(drawn_graph(workspace.project, workspace.graph))
    assert drawn.fingerprint == drawn_graph(workspace.project, workspace.graph).fingerprint


def test_freshness_against_the_policy() -> None:
    check = CheckSpec("freshness", "marts.x", ("at",), {"max_age": "1d"}, "error", "contracts/x.yml:3")
    asset = Asset("marts.x", "table", (), checks=(check,))
    now = datetime(2026, 1, 2, tzinfo=UTC)
    assert payload.freshness(asset, (now - timedelta(hours=2)).isoformat(), now) == "fresh"
    assert payload.freshness(asset, (now - timedelta(days=3)).isoformat(), now) == "stale"
    assert payload.freshness(asset, None, now) == "never built"
    assert payload.freshness(Asset("marts.y", "table", ()), now.isoformat(), now) == "no policy"


def test_the_page_is_standalone(client: TestClient) -> None:
    page = client.get("/graph")
    assert page.status_code == 200
    assert "/graph/static/graph.js" in page.text
    assert "<html" in page.text  # a whole page: it needs no shared layout
