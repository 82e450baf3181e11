"""The web UI in a real browser (Debian's Chromium through Playwright) against a real
``gristmill serve`` on the demo project after a run, with a planted change in ``dev``.

Each page loads without console errors (a screenshot of each is kept in ``screenshots/``); the
run page shows the run that happened with its steps; a run started from the UI appears in the
runs list and completes; the catalog finds ``fct_invoice_line`` and its page shows columns and a
sample; the compare page lists the changed rows of the planted change. With keys required, a page
redirects to login, a key logs in, and a POST with a forged CSRF token is refused."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_serve_tables import GRISTMILL, Server

pytest_plugins = ["tests.support.browser"]
pytestmark = pytest.mark.slow

# The planted change in dev: line 1's revenue doubled, line 5 gone.
PLANT = (
    "l.unit_price * l.quantity as revenue",
    "l.unit_price * l.quantity * (case when l.invoice_line_id = 1 then 2 else 1 end) as revenue",
)
PAGES = {
    "overview": "/",
    "runs": "/runs",
    "run": "/runs/1",
    "catalog": "/catalog?q=invoice",
    "asset": "/catalog/marts/fct_invoice_line",
    "compare": "/compare?table=marts.fct_invoice_line&env=dev&against=prod&key=invoice_line_id",
    "graph": "/graph",
    "dashboards": "/dashboards/revenue",
}


def _gristmill(*args: str, cwd: Path) -> str:
    done = subprocess.run([GRISTMILL, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ui")
    _gristmill("init", "shop", cwd=folder)
    root = folder / "shop"
    _gristmill("run", "--quiet", cwd=root)
    model = root / "models/marts/fct_invoice_line.sql"
    text = model.read_text()
    assert PLANT[0] in text
    model.write_text(text.replace(PLANT[0], PLANT[1]).rstrip() + "\nwhere l.invoice_line_id <> 5\n")
    _gristmill("run", "--quiet", "--env", "dev", cwd=root)
    model.write_text(text)  # prod's model again: runs started by the tests rebuild nothing of it
    return root


@pytest.fixture(scope="module")
def server(shop: Path) -> Iterator[Server]:
    running = Server(shop)
    try:
        yield running
    finally:
        running.stop()


def _open(page: Any, url: str) -> None:
    page.goto(url, wait_until="networkidle")


@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_loads_without_console_errors(
    server: Server, page: Any, screenshots: Path, name: str
) -> None:
    _open(page, server.url + PAGES[name])
    assert page.locator("header.top nav a").count() >= 8
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    assert page.console_errors == []


def test_the_run_page_shows_the_run_with_its_steps_and_timeline(server: Server, page: Any) -> None:
    _open(page, server.url + "/runs/1")
    assert "Run #1" in page.locator("h1").inner_text()
    steps = page.locator("#steps").inner_text()
    assert "marts.fct_invoice_line" in steps and "success" in steps
    page.wait_for_selector("[data-chart=timeline] svg")  # Vega-Lite drew the Gantt
    assert page.console_errors == []


def test_a_run_started_from_the_ui_appears_and_completes(server: Server, page: Any) -> None:
    _open(page, server.url + "/runs")
    page.fill("input[name=select]", "marts.dim_date")
    page.fill("input[name=env]", "prod")
    page.click("#start-run")
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    assert run_id > 2
    deadline = time.monotonic() + 120
    while True:
        _open(page, server.url + "/runs")
        row = page.locator("#runs tr", has=page.locator(f"a[href='/runs/{run_id}']"))
        assert row.count() == 1
        if "success" in row.inner_text():
            break
        assert "failed" not in row.inner_text(), row.inner_text()
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(1)
    _open(page, server.url + f"/runs/{run_id}")
    assert "marts.dim_date" in page.locator("#steps").inner_text()
    assert page.console_errors == []


def test_the_catalog_finds_the_fact_table_and_its_page_shows_columns_and_a_sample(
    server: Server, page: Any
) -> None:
    _open(page, server.url + "/catalog?q=fct_invoice_line")
    page.click("#results a:text('marts.fct_invoice_line')")
    page.wait_for_url("**/catalog/marts/fct_invoice_line")
    columns = page.locator("#columns").inner_text()
    assert "invoice_line_id" in columns and "revenue" in columns
    assert page.locator("#sample tbody tr").count() == 20
    assert page.console_errors == []


def test_the_compare_page_lists_the_planted_change(server: Server, page: Any) -> None:
    _open(page, server.url + PAGES["compare"])
    summary = page.locator("#summary").inner_text()
    assert "different" in summary
    changed = page.locator("#sample-changed").inner_text()
    assert "revenue" in changed and re.search(r"^\s*1\b", changed.split("\n", 2)[-1], re.M)
    assert "5" in page.locator("#sample-removed").inner_text()
    assert page.console_errors == []


@pytest.fixture(scope="module")
def keyed(shop: Path) -> Iterator[tuple[Server, str]]:
    created = _gristmill("keys", "create", "--name", "ui-test", cwd=shop)
    token = re.search(r"gmk_[0-9a-f]+_[A-Za-z0-9_-]+", created)
    assert token, created
    running = Server(shop, args=())
    try:
        yield running, token.group(0)
    finally:
        running.stop()


def test_with_keys_a_page_asks_for_login_and_a_forged_post_is_refused(
    keyed: tuple[Server, str], page: Any
) -> None:
    server, token = keyed
    _open(page, server.url + "/runs?status=failed")
    assert "/login" in page.url
    page.fill("input[name=key]", "gmk_000000000000_not-a-real-key-at-all")
    page.click("form button")
    assert "not a live key" in page.content()
    page.fill("input[name=key]", token)
    page.click("form button")
    page.wait_for_url("**/runs?status=failed")
    assert token not in page.content()  # the key is never written into a page
    cookie = next(c for c in page.context.cookies() if c["name"] == "gristmill_ui_key")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    with httpx.Client(base_url=server.url, follow_redirects=False) as client:
        assert client.get("/").status_code == 303
        forged = client.post("/runs", data={"csrf": "forged", "select": "marts.dim_date"})
        assert forged.status_code == 303 and "/login" in forged.headers["location"]  # no key: login
        client.cookies.set("gristmill_ui_key", token)
        assert client.get("/").status_code == 200
        refused = client.post("/runs", data={"csrf": "forged", "select": "marts.dim_date"})
        assert refused.status_code == 403
        before = client.get("/runs").text.count('href="/runs/')
        assert client.post("/runs/1/retry", data={}).status_code == 403
        assert client.get("/runs").text.count('href="/runs/') == before  # nothing was started
