"""The demo's revenue dashboard (dashboards/revenue.md) after a real run: its numbers equal
hand-written SQL on the Chinook data, with and without the country filter; filter values that
try injection are only values; the router lists and serves it with ETags (304 while nothing
changed, new numbers once a run publishes new data); ``gristmill dashboards build`` writes a
self-contained file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gristmill.dashboards.render import DashboardPages
from gristmill.dashboards.router import dashboards_router
from gristmill.project.scaffold import create_demo
from gristmill.workspace import Workspace
from tests.conftest import Cli

FACT = "marts.fct_invoice_line"
SPEC = re.compile(r'<script type="application/json" id="[^"]+">(.*?)</script>', re.S)
BIG = re.compile(r'<div class="value">([^<]*)</div>')


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = create_demo(tmp_path_factory.mktemp("dashboards") / "shop")
    workspace = Workspace(root)
    assert workspace.run().ok
    yield workspace
    workspace.close()


def specs(html: str) -> dict[str, dict[str, Any]]:
    """Each Vega-Lite spec of a page by its x field."""
    found = [json.loads(text) for text in SPEC.findall(html)]
    return {s["encoding"]["x"]["field"]: s for s in found}


def table_rows(html: str) -> list[list[str]]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in body.split("</tr>") if "<td" in row]


def money(value: object) -> str:
    return "$" + format(Decimal(str(value)), ",.2f")


def page(workspace: Workspace, **values: str) -> str:
    tables = workspace.reader()
    try:
        return DashboardPages(workspace.project, tables).page("revenue", values).html
    finally:
        tables.close()


def scalar(workspace: Workspace, sql: str) -> Any:
    return workspace.query(sql).column(0)[0].as_py()


@pytest.mark.parametrize("country", [None, "Germany"])
def test_the_numbers_equal_hand_written_sql(built: Workspace, country: str | None) -> None:
    html = page(built, **({"country": country} if country else {}))
    where = f"where billing_country = '{country}'" if country else ""
    assert "card error" not in html
    assert BIG.findall(html) == [money(scalar(built, f"select sum(revenue) from {FACT} {where}"))]

    charts = specs(html)
    by_country = built.query(
        f"select billing_country, sum(revenue) from {FACT} {where} group by 1 order by 2 desc"
    )
    got = [(v["country"], round(v["revenue"], 2)) for v in charts["country"]["data"]["values"]]
    assert got == [(c, round(float(r), 2)) for c, r in zip(*by_country.to_pydict().values(), strict=True)]
    assert len(got) == (1 if country else 24)

    months = built.query(
        f"select date_trunc('month', invoice_date) as m, sum(revenue) from {FACT} {where} "
        "group by 1 order by 1"
    )
    got_months = [
        (v["metric_time"][:10], round(v["revenue"], 2)) for v in charts["metric_time"]["data"]["values"]
    ]
    assert got_months == [
        (m.isoformat()[:10], round(float(r), 2)) for m, r in zip(*months.to_pydict().values(), strict=True)
    ]

    top = built.query(
        f"select t.track_name, t.artist_name, sum(f.revenue) as revenue, sum(f.quantity) from {FACT} f "
        f"join marts.dim_track t on t.track_key = f.track_key {where.replace('billing', 'f.billing')} "
        "group by 1, 2 order by 3 desc, 1 limit 10"
    )
    expected = [
        [str(t), str(a), str(r), f"{u:,}"] for t, a, r, u in zip(*top.to_pydict().values(), strict=True)
    ]
    assert [
        [cell.replace("&#39;", "'").replace("&amp;", "&") for cell in row] for row in table_rows(html)
    ] == expected


INJECTIONS = [
    "Germany' OR '1'='1",
    "Germany'; DROP TABLE marts.fct_invoice_line; --",
    "') OR 1=1 --",
    "x' UNION SELECT 1e9 --",
    "$1",
    "{{ filters.country }}",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_a_filter_value_that_tries_injection_matches_nothing(built: Workspace, value: str) -> None:
    html = page(built, country=value)
    assert "card error" not in html
    assert BIG.findall(html) == ["-"]  # no country is called that
    assert specs(html)["country"]["data"]["values"] == []
    assert scalar(built, f"select count(*) from {FACT}") == 2240


def test_an_unchanged_page_is_served_from_memory_and_a_new_filter_is_not(built: Workspace) -> None:
    tables = built.reader()
    try:
        pages = DashboardPages(built.project, tables)
        first = pages.page("revenue", {"country": "France"})
        assert pages.page("revenue", {"country": "France"}) is first
        assert pages.page("revenue", {"country": "Brazil"}).etag != first.etag
    finally:
        tables.close()


def test_a_project_with_no_data_yet_starts_and_answers_503(tmp_path: Path) -> None:
    workspace = Workspace(create_demo(tmp_path / "shop"))
    tables = workspace.reader()
    app = FastAPI()
    app.include_router(dashboards_router(workspace.project, tables))
    try:
        with TestClient(app) as client:
            answer = client.get("/dashboards/revenue")
            assert answer.status_code == 503 and "no data yet" in answer.text
            assert client.get("/dashboards/revenue", params={"country": "x\x01"}).status_code == 400
    finally:
        tables.close()
        workspace.close()


def test_the_router_lists_serves_and_answers_304_until_a_run_publishes(built: Workspace) -> None:
    tables = built.reader()
    app = FastAPI()
    app.include_router(dashboards_router(built.project, tables))
    try:
        with TestClient(app) as client:
            listing = client.get("/dashboards")
            assert listing.status_code == 200 and 'href="/dashboards/revenue"' in listing.text
            assert client.get("/dashboards/nope").status_code == 404
            assert client.get("/dashboards/static/vega.min.js").status_code == 200
            assert client.get("/dashboards/static/..%2Fspecs.py").status_code == 404

            first = client.get("/dashboards/revenue", params={"country": "Germany"})
            etag = first.headers["etag"]
            assert first.status_code == 200 and 'src="/dashboards/static/vega-embed.min.js"' in first.text
            assert (
                client.get(
                    "/dashboards/revenue", params={"country": "Germany"}, headers={"If-None-Match": etag}
                ).status_code
                == 304
            )
            other = client.get("/dashboards/revenue", params={"country": "France"})
            assert other.headers["etag"] != etag  # the filter is part of the key

            before = BIG.findall(client.get("/dashboards/revenue").text)
            _more_sales(built.root)
            _run(built.root)  # another process publishes, as beside `gristmill serve`
            again = client.get(
                "/dashboards/revenue", params={"country": "Germany"}, headers={"If-None-Match": etag}
            )
            assert again.status_code == 200 and again.headers["etag"] != etag
            after = BIG.findall(client.get("/dashboards/revenue").text)
            assert after != before
            assert after == [money(scalar(built, f"select sum(revenue) from {FACT}"))]
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
    """Invoice line 1 sells 1000 more copies (its invoice's total too, which a check compares):
    a new version of the fact table."""
    path = root / "data" / "chinook_export.json"
    data = json.loads(path.read_text())
    line = data["InvoiceLine"][0]
    line["Quantity"] += 1000
    (invoice,) = [i for i in data["Invoice"] if i["InvoiceId"] == line["InvoiceId"]]
    invoice["Total"] = round(invoice["Total"] + 1000 * line["UnitPrice"], 2)
    path.write_text(json.dumps(data))


def test_build_writes_a_self_contained_file(built: Workspace, cli: Cli, tmp_path: Path) -> None:
    code, output = cli("dashboards", "build", "--out", str(tmp_path / "site"), project=built.root)
    assert code == 0, output
    html = (tmp_path / "site" / "revenue.html").read_text()
    assert "<script src=" not in html and "vegaEmbed" in html and "http://" not in html.split("<main", 1)[1]
    assert BIG.findall(html) == [money(scalar(built, f"select sum(revenue) from {FACT}"))]
    code, output = cli("dashboards", "list", project=built.root)
    assert code == 0 and "revenue" in output
