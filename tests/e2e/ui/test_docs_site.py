"""``gristmill docs build`` on the demo project after a run: a page per served asset, every link
to a file that exists, nothing fetched from the network, and in Chromium from ``file://``: the
catalog's offline search, the graph drawn, no console errors."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.e2e.test_serve_tables import GRISTMILL

pytest_plugins = ["tests.support.browser"]
ATTRIBUTE = re.compile(r'\s(?:href|src|action)="([^"]*)"')


def _gristmill(*args: str, cwd: Path) -> str:
    done = subprocess.run([GRISTMILL, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    _gristmill("init", "shop", cwd=folder)
    root = folder / "shop"
    _gristmill("run", "--quiet", cwd=root)
    return root


@pytest.fixture(scope="module")
def site(shop: Path) -> Path:
    said = _gristmill("docs", "build", cwd=shop)
    assert "target/docs/index.html" in said
    return shop / "target" / "docs"


def _served(shop: Path) -> list[str]:
    return sorted(
        str(p.relative_to(shop / "models").with_suffix("")) for p in (shop / "models").rglob("*.sql")
    )


def test_every_asset_has_its_page_with_sql_and_checks(shop: Path, site: Path) -> None:
    for model in _served(shop):
        assert (site / "catalog" / f"{model}.html").is_file(), model
    page = (site / "catalog/marts/fct_invoice_line.html").read_text()
    assert 'id="sql-compiled"' in page and 'id="sql-raw"' in page
    assert 'id="declared-checks"' in page
    assert 'id="sample"' not in page  # samples are off unless asked
    assert "<form" not in page and "<button" not in page  # nothing that needs a server


def test_links_resolve_and_nothing_comes_from_the_network(site: Path) -> None:
    pages = list(site.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        html = page.read_text()
        for url in ATTRIBUTE.findall(html):
            assert not url.startswith(("http://", "https://", "//", "/")), f"{page}: {url}"
            if url.startswith(("#", "data:")):
                continue
            target = page.parent / unquote(url.split("#")[0].split("?")[0].replace("&amp;", "&"))
            assert target.is_file(), f"{page.relative_to(site)} links {url}"


def test_samples_when_asked_are_masked(shop: Path, tmp_path: Path) -> None:
    _gristmill("docs", "build", "--with-samples", "--out", str(tmp_path / "site"), cwd=shop)
    page = (tmp_path / "site/catalog/marts/dim_customer.html").read_text()
    assert 'id="sample"' in page
    assert "masked (email)" in page
    assert not re.search(r"[\w.]+@[\w.]+\.\w+", page.split('id="sample"')[1])


def test_the_site_works_from_file_urls(site: Path, page: Any, screenshots: Path) -> None:
    page.goto((site / "index.html").as_uri())
    page.fill("#docs-search", "fct_invoice_line")
    shown = page.eval_on_selector_all(
        "#results tbody tr:not([hidden]) td:first-child a", "as => as.map(a => a.textContent)"
    )
    assert shown == ["marts.fct_invoice_line"]
    page.fill("#docs-search", "email")  # a column match names the column
    assert "email" in page.inner_text("#results tbody tr:not([hidden]) .docs-columns")
    page.screenshot(path=str(screenshots / "docs-catalog.png"))
    page.fill("#docs-search", "fct_invoice_line")
    page.click("#results tbody tr:not([hidden]) td:first-child a")
    page.wait_for_selector("#model-docs")
    assert page.url.endswith("catalog/marts/fct_invoice_line.html")
    page.wait_for_selector(".chart svg, .chart canvas")  # Vega drew from the local copy
    page.screenshot(path=str(screenshots / "docs-asset.png"), full_page=True)

    page.goto((site / "graph.html").as_uri())
    page.wait_for_selector("#graph[data-ready=true]")
    assert page.locator("#graph .n").count() > 20
    assert not page.is_visible("#graph-select")  # a selection needs the server
    page.screenshot(path=str(screenshots / "docs-graph.png"))
    page.fill("#graph-search", "fct_invoice_line")
    page.wait_for_selector("#graph .n.match")
    page.locator("#graph .n.match").click()
    page.wait_for_selector("#graph-details a.column")
    page.locator("#graph-details a.column", has_text="revenue").first.click()
    page.wait_for_url("**/graph/columns/marts/fct_invoice_line/revenue.html")
    assert "stg_invoice_line" in page.inner_text("#upstream")
    page.go_back()
    page.wait_for_selector("#graph[data-ready=true]")
    page.locator("#graph .n", has_text="fct_invoice_line").first.click()
    page.wait_for_selector("#graph-details a.catalog")
    page.locator("#graph-details a.catalog").click()
    page.wait_for_url("**/catalog/marts/fct_invoice_line.html")
    page.screenshot(path=str(screenshots / "docs-graph-to-asset.png"))
    assert page.console_errors == []


def test_a_folder_that_is_not_a_site_is_never_replaced(shop: Path) -> None:
    done = subprocess.run(
        [GRISTMILL, "docs", "build", "--out", "."], cwd=shop, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1
    assert "not a docs site" in done.stdout + done.stderr
    assert (shop / "gristmill.toml").is_file()


def test_before_any_run_the_build_says_what_to_do(tmp_path: Path) -> None:
    _gristmill("init", "fresh", cwd=tmp_path)
    done = subprocess.run(
        [GRISTMILL, "docs", "build"], cwd=tmp_path / "fresh", capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1
    assert "gristmill run" in done.stdout + done.stderr
    assert "<html" not in done.stdout + done.stderr
