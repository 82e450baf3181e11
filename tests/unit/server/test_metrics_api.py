"""The metrics endpoints on a real uvicorn on loopback, driven by httpx, over the built demo
project: the list, an answer equal to hand-written SQL, its SQL, and a 400 naming the parameter
(never a 500) for every bad input, injection attempts included."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from gristmill.project.scaffold import create_demo
from gristmill.server import metrics_api
from gristmill.server.http import BackgroundServer
from gristmill.workspace import Workspace

FACT = "marts.fct_invoice_line"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = create_demo(tmp_path_factory.mktemp("api") / "shop")
    sales = root / "metrics" / "sales.yml"  # the demo's pre-aggregation, switched on
    sales.write_text(sales.read_text().replace("    # materialize: daily", "    materialize: daily"))
    built = Workspace(root)
    assert built.run().ok
    yield built
    built.close()


@pytest.fixture(scope="module")
def client(workspace: Workspace) -> Iterator[httpx.Client]:
    app = FastAPI()
    app.include_router(metrics_api.router(workspace))  # the one line the serving app adds
    server = BackgroundServer(app, port=0)
    server.start()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http
    server.stop()


def test_the_list_names_each_metric_with_its_dimensions(client: httpx.Client) -> None:
    response = client.get("/api/v1/metrics")
    assert response.status_code == 200
    listed = {m["name"]: m for m in response.json()["metrics"]}
    assert listed["revenue_per_invoice"]["type"] == "ratio"
    assert listed["revenue"]["dimensions"][:2] == ["metric_time", "country"]
    assert listed["revenue"]["grains"] == ["day", "week", "month", "quarter", "year"]


def test_an_answer_equals_the_hand_written_query(client: httpx.Client, workspace: Workspace) -> None:
    response = client.get(
        "/api/v1/metrics/revenue",
        params={"grain": "month", "by": "country", "where": "country:in:Germany,France"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    expected = workspace.query(
        f"select cast(date_trunc('month', invoice_date) as date) as m, billing_country as c,"
        f" sum(revenue) as r from {FACT} where billing_country in ('Germany', 'France')"
        " group by all order by 1, 2"
    ).to_pylist()
    got = [(r["metric_time"], r["country"], Decimal(r["revenue"])) for r in body["rows"]]
    assert got == [(r["m"].isoformat(), r["c"], r["r"]) for r in expected]
    revenue = next(f for f in body["schema"] if f["name"] == "revenue")
    assert revenue["type"].startswith("decimal") and revenue["json"] == "string (exact)"  # decimals exact
    assert body["sql"].startswith("WITH gm_1 AS")


def test_the_sql_endpoint_shows_what_runs_without_running_it(client: httpx.Client) -> None:
    response = client.get(
        "/api/v1/metrics/revenue_ytd/sql", params={"grain": "month", "where": "country:eq:x'y"}
    )
    assert response.status_code == 200
    sql = response.json()["sql"]
    assert "DATE_TRUNC('YEAR', gm_2.gm_bucket)" in sql and "billing_country = 'x''y'" in sql
    assert "GENERATE_SERIES" in sql  # the periods come from a time spine the engine generates
    assert response.json()["preaggregation"] is None
    response = client.get("/api/v1/metrics/average_unit_price/sql", params={"grain": "month"})
    assert response.json()["preaggregation"] == "metrics.average_unit_price_daily"


@pytest.mark.parametrize(
    ("params", "status", "parameter"),
    [
        ({"by": "contry"}, 400, "by"),
        ({"grain": "hour"}, 400, "grain"),
        ({"where": "country:like:%"}, 400, "where"),
        ({"where": "country"}, 400, "where"),
        ({"where": "country:eq:DE\x00"}, 400, "where"),
        ({"where": "metric_time:gte:2024' or 1=1 --"}, 400, "where"),
        ({"by": "country; drop table x"}, 400, "by"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(
    client: httpx.Client, params: dict[str, str], status: int, parameter: str
) -> None:
    response = client.get("/api/v1/metrics/revenue", params=params)
    assert response.status_code == status, response.text
    assert response.json()["parameter"] == parameter and response.json()["error"]


def test_an_unknown_metric_is_a_404(client: httpx.Client) -> None:
    response = client.get("/api/v1/metrics/revenu/sql")
    assert response.status_code == 404 and response.json()["parameter"] == "name"


def test_injection_in_filter_values_is_data(client: httpx.Client, workspace: Workspace) -> None:
    attempts = ["Germany' OR '1'='1", "') OR 1=1 --", "Germany'; DROP TABLE marts.fct_invoice_line; --"]
    for value in attempts:
        response = client.get("/api/v1/metrics/invoices", params={"where": f"country:eq:{value}"})
        assert response.status_code == 200 and response.json()["rows"] == [{"invoices": 0}]
    assert workspace.query(f"select count(*) from {FACT}").column(0)[0].as_py() == 2240
