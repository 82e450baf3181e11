"""The demo's metrics on a PostgreSQL engine: every metric type, rendered for PostgreSQL, gives the
numbers DuckDB gives on the same project; filter values stay values there too."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from gristmill.errors import BadQuery
from gristmill.workspace import Workspace
from gristmill.workspace.facade import create_demo
from tests.e2e.test_metrics_joins import materialized
from tests.support.pg_engine import postgres_database

pytestmark = pytest.mark.services

QUERIES = [
    ("revenue", ["country"], "month", ["country:in:Germany,France"]),
    ("buyers", [], "quarter", []),
    ("revenue_per_invoice", [], "year", ["metric_time:gte:2023-01-01"]),
    ("revenue_per_buyer_minus_invoice", ["country"], None, []),
    ("revenue_running", [], "month", []),
    ("revenue_ytd", ["country"], "week", ["country:eq:Germany"]),
    ("revenue_last_90_days", [], "month", []),
    ("revenue_last_90_days", [], "quarter", []),
    ("revenue", ["customer__support_rep"], "year", ["city:in:Berlin,Paris"]),
    ("revenue_per_invoice", ["support_rep"], None, []),
    ("revenue_germany", [], "quarter", []),
    ("units", ["country"], "month", ["country:in:Germany,Norway"]),
    ("average_unit_price", ["country"], "quarter", ["country:in:Germany,USA"]),
]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, Workspace]]:
    folder = tmp_path_factory.mktemp("metrics_pg")
    duck, pg = (materialized(create_demo(folder / name)) for name in ("duck", "pg"))
    with postgres_database("gristmill_metrics") as url:
        toml: Path = pg / "gristmill.toml"
        toml.write_text(toml.read_text().replace('kind = "duckdb"', f'kind = "postgres"\nurl = "{url}"'))
        workspaces = Workspace(duck), Workspace(pg)
        for workspace in workspaces:
            assert workspace.run().ok
        yield workspaces
        for workspace in workspaces:
            workspace.close()


def plain(value: object) -> object:
    """Numbers compared to 9 significant digits: the engines' doubles and decimals differ in the
    last places, not in the answer."""
    if isinstance(value, Decimal | float):
        return float(f"{float(value):.9g}")
    return value


@pytest.mark.parametrize(("name", "by", "grain", "where"), QUERIES)
def test_postgres_answers_as_duckdb_does(
    both: tuple[Workspace, Workspace], name: str, by: list[str], grain: str | None, where: list[str]
) -> None:
    duck, pg = (w.metric(name, by=by, grain=grain, where=where) for w in both)
    assert "DATE_TRUNC" in pg.sql or grain is None
    rows = [[tuple(plain(v) for v in r.values()) for r in a.table.to_pylist()] for a in (duck, pg)]
    assert rows[0] == rows[1] and rows[0]
    assert duck.preaggregation == pg.preaggregation  # both read the pre-aggregation, or neither


def test_injection_is_a_value_on_postgres(both: tuple[Workspace, Workspace]) -> None:
    _, pg = both
    for value in ["Germany' OR '1'='1", "x'); DROP TABLE marts.fct_invoice_line; --", "$$ or 1=1 $$"]:
        answer = pg.metric("invoices", where=[f"country:eq:{value}"])
        assert answer.table.to_pylist() == [{"invoices": 0}]
    with pytest.raises(BadQuery) as caught:
        pg.metric("invoices", where=["metric_time:gte:2024' or 1=1 --"])
    assert caught.value.parameter == "where"
    assert pg.query("select count(*) as n from marts.fct_invoice_line").to_pylist() == [{"n": 2240}]
