"""The asset graph of a generated 2,000-asset project in Chromium: every asset drawn, zoomed out
without labels (level of detail), found by search. Its timing is a benchmark (bench/ui_graph.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from bench.ui_graph import serving, write_project
from gristmill.ui.graph.router import graph_router
from gristmill.workspace.facade import Workspace

pytest_plugins = ["tests.support.browser"]
ASSETS = 2000


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("ui_large")
    write_project(folder, ASSETS)
    workspace = Workspace(folder)
    app = FastAPI()
    app.include_router(graph_router(workspace))
    with serving(app) as url:
        yield url
    workspace.close()


def test_two_thousand_assets_are_drawn_and_searchable(base: str, page: Any, screenshots: Path) -> None:
    page.goto(f"{base}/graph")
    page.wait_for_selector("#graph[data-ready=true]", timeout=30_000)
    assert page.locator("#graph .n").count() == ASSETS
    far = "document.getElementById('graph').classList.contains('far')"
    assert page.evaluate(far)  # fitted to the whole graph: no labels
    page.screenshot(path=str(screenshots / "graph-2000.png"))
    page.fill("#graph-search", "fct_0003")
    page.wait_for_selector("#graph .n.match")
    assert page.locator("#graph .n.match").count() == 1
    assert not page.evaluate(far)  # centred at 1:1, labels shown
    page.screenshot(path=str(screenshots / "graph-2000-search.png"))
    assert page.console_errors == []
