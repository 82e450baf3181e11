"""The demo's revenue dashboard in a real browser (Debian's Chromium through Playwright): the
static build opened from ``file://`` and the page served over HTTP both draw their charts
without a console error and show the right total; the country filter is a link; after a run
publishes new data the page shows it, while an unchanged page is answered 304."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from gristmill.dashboards.build import build_dashboards
from gristmill.dashboards.router import dashboards_router
from gristmill.project.scaffold import create_demo
from gristmill.workspace import Workspace

pytest_plugins = ["tests.support.browser"]

FACT = "marts.fct_invoice_line"
SHOTS = Path(__file__).parent / "screenshots"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = create_demo(tmp_path_factory.mktemp("dashboards-ui") / "shop")
    workspace = Workspace(root)
    assert workspace.run().ok
    yield workspace
    workspace.close()


def total(workspace: Workspace, where: str = "") -> str:
    value = workspace.query(f"select sum(revenue) from {FACT} {where}").column(0)[0].as_py()
    return "$" + format(Decimal(str(value)), ",.2f")


def drawn(page: Any) -> None:
    """Both Vega-Lite charts (line, bar) embedded and drawn as SVG."""
    page.wait_for_selector("[data-rendered=true] >> nth=1", timeout=15_000)
    assert page.locator("[data-rendered=true] svg").count() == 2


def test_the_static_build_opens_from_file_with_no_server(built: Workspace, page: Any, tmp_path: Path) -> None:
    tables = built.reader()
    try:
        (path,) = build_dashboards(built.project, tables, tmp_path / "site")
    finally:
        tables.close()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    drawn(page)
    assert page.locator(".big-number .value").inner_text() == total(built)
    assert page.locator("table.grid tbody tr").count() == 10
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "dashboard-static.png"), full_page=True)
    assert page.console_errors == []
    assert [u for u in requests if not u.startswith("file://")] == []  # no network


class Server:
    def __init__(self, app: FastAPI) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def test_the_served_page_filters_by_link_and_follows_new_data(built: Workspace, page: Any) -> None:
    tables = built.reader()
    app = FastAPI()
    app.include_router(dashboards_router(built.project, tables))
    try:
        with Server(app) as base:
            page.goto(f"{base}/dashboards/revenue")
            drawn(page)
            assert page.locator(".big-number .value").inner_text() == total(built)
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "dashboard-served.png"), full_page=True)

            page.select_option("select[name=country]", "Germany")
            page.wait_for_url("**/dashboards/revenue?country=Germany")
            drawn(page)
            assert page.locator(".big-number .value").inner_text() == total(
                built, "where billing_country = 'Germany'"
            )
            page.screenshot(path=str(SHOTS / "dashboard-germany.png"), full_page=True)

            first = httpx.get(f"{base}/dashboards/revenue")
            etag = first.headers["etag"]
            assert httpx.get(f"{base}/dashboards/revenue", headers={"If-None-Match": etag}).status_code == 304

            before = total(built)
            _more_sales(built.root)
            _run(built.root)
            assert total(built) != before
            page.goto(f"{base}/dashboards/revenue")
            drawn(page)
            assert page.locator(".big-number .value").inner_text() == total(built)
            assert httpx.get(f"{base}/dashboards/revenue", headers={"If-None-Match": etag}).status_code == 200
            assert page.console_errors == []
    finally:
        tables.close()


def _run(root: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "gristmill"), "run", "--project", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _more_sales(root: Path) -> None:
    """Invoice line 1 sells 1000 more copies, and its invoice's total with it (a check compares)."""
    path = root / "data" / "chinook_export.json"
    data = json.loads(path.read_text())
    line = data["InvoiceLine"][0]
    line["Quantity"] += 1000
    (invoice,) = [i for i in data["Invoice"] if i["InvoiceId"] == line["InvoiceId"]]
    invoice["Total"] = round(invoice["Total"] + 1000 * line["UnitPrice"], 2)
    path.write_text(json.dumps(data))
