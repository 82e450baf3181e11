"""The asset graph in Chromium, on the example project: it draws every asset, finds one, shows a
selection's neighbourhood, and opens a column's lineage from a node's details."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from bench.ui_graph import serving
from gristmill.ui.graph.lineage_graph import drawn_graph
from gristmill.ui.graph.router import graph_router
from gristmill.workspace.facade import Workspace, create_demo

pytest_plugins = ["tests.support.browser"]
READY = "#graph[data-ready=true]"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Workspace]]:
    workspace = Workspace(create_demo(tmp_path_factory.mktemp("ui") / "shop"))
    app = FastAPI()
    app.include_router(graph_router(workspace))
    with serving(app) as base:
        yield base, workspace
    workspace.close()


def _titles(page: Any, selector: str) -> set[str]:
    return set(page.eval_on_selector_all(selector, "gs => gs.map(g => g.querySelector('title').textContent)"))


def test_the_graph_draws_searches_selects_and_opens_column_lineage(
    shop: tuple[str, Workspace], page: Any, screenshots: Path
) -> None:
    base, workspace = shop
    page.goto(f"{base}/graph")
    page.wait_for_selector(READY)
    drawn = drawn_graph(workspace.project, workspace.graph)
    assert page.locator("#graph .n").count() == len(drawn.graph.assets)  # every asset and metric
    assert page.locator("#graph .e").count() == sum(len(a.upstream) for a in drawn.graph.assets.values())
    page.screenshot(path=str(screenshots / "graph-shop.png"))

    page.fill("#graph-search", "fct_invoice_line")
    page.wait_for_selector("#graph .n.match")
    assert _titles(page, "#graph .n.match") == {"marts.fct_invoice_line"}

    page.fill("#graph-select", "+revenue")
    page.press("#graph-select", "Enter")
    page.wait_for_selector("#graph.selecting")
    chosen = _titles(page, "#graph .n.in")
    upstream = {"marts.fct_invoice_line", "staging.stg_invoice", "raw.chinook_db__customer"}
    assert {"metrics.revenue", *upstream} <= chosen
    assert "marts.dim_track" not in chosen
    page.screenshot(path=str(screenshots / "graph-shop-selection.png"))

    page.locator("#graph .n.match").click()
    page.wait_for_selector("#graph-details a.column")
    assert page.locator("#graph-details a.catalog").get_attribute("href") == "/catalog/marts/fct_invoice_line"
    assert "focus=marts.fct_invoice_line" in page.url  # the view is in the link
    page.locator("#graph-details a.column", has_text="revenue").first.click()
    page.wait_for_url("**/graph/columns/marts/fct_invoice_line/revenue")
    assert page.inner_text("#column-name") == "revenue"
    assert "stg_invoice_line" in page.inner_text("#upstream")
    assert page.locator("#column-graph .target").count() == 1
    page.screenshot(path=str(screenshots / "graph-shop-column.png"), full_page=True)
    assert page.console_errors == []


def test_a_pasted_link_opens_the_same_view(shop: tuple[str, Workspace], page: Any) -> None:
    base, _ = shop
    page.goto(f"{base}/graph?q=fct_invoice_line&select=%2Brevenue&colour=owner&view=10,20,0.800")
    page.wait_for_selector("#graph.selecting")
    assert _titles(page, "#graph .n.match") == {"marts.fct_invoice_line"}
    assert page.input_value("#graph-select") == "+revenue"
    assert page.input_value("#graph-colour") == "owner"
    assert "sales-ops" in page.inner_text("#graph-legend")
    assert page.console_errors == []


def test_a_wrong_selection_says_why(shop: tuple[str, Workspace], page: Any) -> None:
    base, _ = shop
    page.goto(f"{base}/graph")
    page.wait_for_selector(READY)
    page.fill("#graph-select", "+revenu")
    page.press("#graph-select", "Enter")
    said = "document.getElementById('graph-message')"
    erred = f"{said}.classList.contains('error')"
    page.wait_for_function(f"{said}.textContent.includes('matches no asset') && {erred}")
