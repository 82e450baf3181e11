"""The Quality, Schedules & streams and Explore pages in a real browser (Debian's Chromium through
Playwright) against a real ``gristmill serve --allow-sql`` on the demo project, with a planted
quarantine check (``revenue <= 10`` on the monthly revenue mart: 13 rows of known data go to
quarantine at each of two runs) and a nightly schedule.

Each page loads without console errors (screenshots in ``screenshots/``); Quality lists the
failing check linking to its run and asset, draws the check timelines and the anomaly band, and
shows the quarantined rows with their reason; a schedule is paused and resumed with its buttons
(a forged CSRF token is refused); Explore runs a query with Ctrl+Enter, pages it, keeps decimals
exact, draws the chart chosen, shows the dashboard block, and reopens the same view from the
pasted address; with SQL off it says how to turn it on."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from gristmill.workspace import Workspace
from tests.e2e.test_serve_tables import GRISTMILL, Server

pytest_plugins = ["tests.support.browser"]
pytestmark = pytest.mark.slow

QUARANTINE = "  - unique: [month, genre, country]\n"
SCHEDULE = '\n[schedules.nightly]\nselect = ["marts.dim_date"]\ncron = "0 3 * * *"\n'
BY_GENRE = (
    "select genre, sum(revenue) as revenue, count(*) as months"
    " from marts.revenue_by_genre_country_month group by genre order by revenue desc"
)
PAGES = {
    "quality": "/quality",
    "schedules": "/schedules",
    "explore": "/explore?sql=" + quote(BY_GENRE) + "&type=bar&x=genre&y=revenue",
}


def _gristmill(*args: str, cwd: Path) -> str:
    done = subprocess.run([GRISTMILL, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("uipages")
    _gristmill("init", "shop", cwd=folder)
    root = folder / "shop"
    checks = root / "checks/marts.yml"
    text = checks.read_text()
    assert QUARANTINE in text
    rule = "  - range: {column: revenue, max: 10, severity: quarantine}\n"
    checks.write_text(text.replace(QUARANTINE, QUARANTINE + rule))
    with (root / "gristmill.toml").open("a") as toml:
        toml.write(SCHEDULE)
    _gristmill("run", "--quiet", cwd=root)
    _gristmill("run", "--quiet", "--full-refresh", cwd=root)
    _stream_reports(root)
    return root


def _stream_reports(root: Path) -> None:
    """Two stream processes' reports, written by the writer ``gristmill stream`` uses: one running
    (this test process's pid, a fresh heartbeat) and one that stopped on an error."""
    figures = {
        "target": "raw.clicks",
        "started_at": time.time() - 60,
        "batches": 12,
        "events": 4200,
        "rows_out": 4100,
        "late": 3,
        "rejected": 1,
        "watermark": "2026-12-08T01:00:00+00:00",
        "lag": {"0": 3, "1": 5},
        "host": socket.gethostname(),
        "max_wait": 1.0,
        "events_per_second": 70.0,
    }
    Workspace(root).stream_status("raw.clicks").write(
        {**figures, "model": "raw.clicks", "pid": os.getpid(), "updated_at": time.time()}
    )
    stopped = {**figures, "model": "raw.orders_feed", "pid": 1, "updated_at": time.time() - 30}
    stopped.update(stopped=True, error="broker went away", lag={})
    (root / ".gristmill/streams/raw.orders_feed-1.json").write_text(json.dumps(stopped))


@pytest.fixture(scope="module")
def server(shop: Path) -> Iterator[Server]:
    # With a schedule, serve says "Scheduler running: nightly, http://…".
    running = Server(shop, r"(http://127\.0\.0\.1:\d+)", args=("--no-auth", "--allow-sql"))
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
    assert page.locator("header.top nav a.active").inner_text() != ""
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    assert page.console_errors == []


def test_quality_shows_the_failing_check_its_quarantined_rows_and_the_charts(
    server: Server, page: Any
) -> None:
    _open(page, server.url + "/quality")
    failures = page.locator("#failure-list").inner_text()
    assert "marts.revenue_by_genre_country_month" in failures and "range(revenue <= 10)" in failures
    assert "13" in failures
    row = page.locator("#failure-list tbody tr", has_text="range(revenue <= 10)").first
    assert row.locator("a[href^='/runs/']").count() == 1
    assert row.locator("a[href='/catalog/marts/revenue_by_genre_country_month']").count() == 1

    quarantine = page.locator("[data-table='marts.revenue_by_genre_country_month__quarantine']")
    assert "26 rows" in quarantine.locator("h3").inner_text()  # 13 from each of the two runs
    reasons = quarantine.locator("table.reasons tbody tr")
    assert reasons.count() == 2 and all(r.endswith("13") for r in reasons.all_inner_texts())
    assert quarantine.locator("table.sample tbody tr").count() == 20  # the latest rows
    assert '"revenue":14.85' in quarantine.inner_text()  # the largest monthly revenue, exact

    page.wait_for_selector("[data-asset='marts.revenue_by_genre_country_month'] [data-chart=checks] svg")
    page.wait_for_selector("#anomalies [data-chart=anomaly] svg")
    assert "raw.chinook_export__invoice_line" in page.locator("#anomalies").inner_text()

    _open(page, server.url + "/quality?status=fail")
    assert page.locator("#timelines .asset-quality").count() == 1
    assert page.console_errors == []


def test_a_schedule_is_paused_and_resumed_and_a_forged_post_is_refused(server: Server, page: Any) -> None:
    _open(page, server.url + "/schedules")
    row = page.locator("#schedules tr[data-schedule=nightly]")
    assert "cron 0 3 * * *" in row.inner_text() and "03:00:00" in row.inner_text()
    row.locator("button.pause").click()
    page.wait_for_url("**/schedules")
    row = page.locator("#schedules tr[data-schedule=nightly]")
    assert "paused" in row.inner_text()
    with httpx.Client(base_url=server.url) as client:
        forged = client.post("/schedules/nightly/resume", data={"csrf": "forged"})
        assert forged.status_code == 403
    _open(page, server.url + "/schedules")
    assert "paused" in page.locator("#schedules tr[data-schedule=nightly]").inner_text()
    page.locator("#schedules tr[data-schedule=nightly] button.resume").click()
    page.wait_for_url("**/schedules")
    assert "paused" not in page.locator("#schedules tr[data-schedule=nightly] td").first.inner_text()
    assert page.locator("#schedules-live[hx-trigger]").count() == 1  # it polls
    running = page.locator("#streams tbody tr", has_text="raw.clicks").inner_text()
    assert "running" in running and "4,200" in running and "0=3" in running and "1=5" in running
    assert "2026-12-08 01:00:00" in running  # the watermark
    failed = page.locator("#streams tbody tr", has_text="raw.orders_feed").inner_text()
    assert "failed" in failed and "broker went away" in failed
    assert page.console_errors == []


def test_explore_runs_with_ctrl_enter_draws_the_chart_and_exports_a_block(server: Server, page: Any) -> None:
    _open(page, server.url + "/explore")
    page.fill("#sql", BY_GENRE)
    page.press("#sql", "Control+Enter")
    page.wait_for_selector("#result")
    assert "sql=" in page.url
    header = page.locator("#result thead").inner_text()
    assert "genre" in header and "decimal" in header  # types shown
    first = page.locator("#result tbody tr").first.inner_text()
    assert first.split("\t")[0].strip() == "Rock"
    assert "742.50" in first  # the decimal as the engine holds it, not a float's 742.5
    page.select_option("#chart-x", "genre")
    page.select_option("#chart-y", "revenue")
    page.select_option("#chart-type", "bar")
    page.fill("input[name=name]", "Revenue by genre")
    page.click("#draw")
    page.wait_for_selector("[data-chart=explore] svg")
    block = page.locator("#dashboard-block").inner_text()
    assert "```sql name=revenue_by_genre" in block
    assert "type: bar\ndata: revenue_by_genre\nx: genre\ny: revenue" in block
    pasted = page.url
    assert re.search(r"[?&]x=genre", pasted) and re.search(r"[?&]y=revenue", pasted)
    _open(page, pasted)  # the link alone gives the same view
    page.wait_for_selector("[data-chart=explore] svg")
    assert page.locator("#dashboard-block").inner_text() == block
    assert page.console_errors == []


def test_explore_pages_a_long_result_and_refuses_what_the_guard_refuses(server: Server, page: Any) -> None:
    _open(page, server.url + "/explore?sql=" + quote("select * from marts.fct_invoice_line order by 1"))
    assert page.locator("#result tbody tr").count() == 50
    page.click("#next-page")
    page.wait_for_selector("#result")
    assert "page 2 of" in page.locator("#pager").inner_text()
    _open(page, server.url + "/explore?sql=" + quote("delete from marts.dim_date"))
    assert page.locator("#sql-error").count() == 1
    assert page.locator("#result").count() == 0
    assert page.console_errors == []


@pytest.fixture(scope="module")
def no_sql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # A project of its own: one scheduler per project, and the first server runs the nightly one.
    folder = tmp_path_factory.mktemp("nosql")
    _gristmill("init", "shop", cwd=folder)
    running = Server(folder / "shop", args=("--no-auth", "--no-sql"))
    try:
        yield running
    finally:
        running.stop()


def test_explore_without_sql_says_how_to_turn_it_on(no_sql: Server, page: Any) -> None:
    _open(page, no_sql.url + "/explore?sql=" + quote("select 1"))
    off = page.locator("#sql-off").inner_text()
    assert "--allow-sql" in off and "allow_sql = true" in off
    assert page.locator("#result").count() == 0
    assert page.console_errors == []


@pytest.fixture(scope="module")
def scoped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A keyed server (its own project: one scheduler per project) and a key that may read ``raw``
    only."""
    folder = tmp_path_factory.mktemp("scoped")
    _gristmill("init", "shop", cwd=folder)
    root = folder / "shop"
    _gristmill("run", "--quiet", cwd=root)
    created = _gristmill("keys", "create", "--name", "raw-only", "--schemas", "raw", cwd=root)
    token = re.search(r"gmk_[0-9a-f]+_[A-Za-z0-9_-]+", created)
    assert token, created
    running = Server(root, args=("--allow-sql",))
    try:
        yield running, token.group(0)
    finally:
        running.stop()


def test_explore_reads_only_what_the_key_may_read(scoped: tuple[Server, str]) -> None:
    server, token = scoped
    marts = "/explore?sql=" + quote("select count(*) as n from marts.dim_date")
    raw = "/explore?sql=" + quote("select count(*) as n from raw.chinook_db__customer")
    with httpx.Client(base_url=server.url, follow_redirects=False) as client:
        assert client.get(marts).status_code == 303  # no key: login, nothing run
        client.cookies.set("gristmill_ui_key", token)
        refused = client.get(marts).text
        assert 'id="sql-error"' in refused and 'id="result"' not in refused
        allowed = client.get(raw).text
        assert 'id="result"' in allowed and '<td class="num">59</td>' in allowed  # Chinook's customers
