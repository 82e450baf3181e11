"""``gristmill compile``: each model's SQL as a target's engine runs it, or for another dialect
(``--dialect redshift``, ahead of a Redshift engine), compared with golden files in
``tests/fixtures/sql/compile/``; every output parses with sqlglot's parser for its dialect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill.errors import ConfigError
from gristmill.workspace import Workspace
from tests.conftest import Cli
from tests.golden import assert_golden_text

TOML = """name = "shop"
target = "dev"

[targets.dev]
engine = "duckdb"

[targets.prod]
engine = "postgres"
url = "postgresql://loader@db.host:5432/analytics"
schema_prefix = "analytics_"
"""
FILES = {
    "sources/shop.yml": "kind: files\npath: data/orders.csv\ntables:\n  orders: {}\n",
    "data/orders.csv": "order_id,customer,amount,ordered_at,status\n1,Ann,5.5,2024-01-01 10:00:00,paid\n",
    "models/staging/orders.sql": """
        -- kind: view
        select order_id, lower(trim(customer)) as customer, cast(amount as decimal(10, 2)) as amount,
               cast(ordered_at as timestamp) as ordered_at, coalesce(status, 'unknown') as status
        from raw.shop__orders
        where status <> 'cancelled'
    """,
    "models/marts/monthly.sql": """
        with paid as (
            select * from staging.orders where status = 'paid'
        )
        select date_trunc('month', ordered_at) as month, customer, count(*) as orders,
               sum(amount) as revenue,
               case when sum(amount) > 100 then 'big' else 'small' end as size
        from paid
        group by all
    """,
    "models/marts/ranked.sql": """
        select customer, month, revenue,
               row_number() over (partition by month order by revenue desc) as rank_in_month,
               md5(customer) as customer_hash
        from marts.monthly
        qualify rank_in_month <= 3
    """,
}
MODELS = ("staging.orders", "marts.monthly", "marts.ranked")


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project(FILES, toml=TOML)


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "redshift", "spark"])
def test_compiled_sql_for_each_dialect(project: Path, dialect: str) -> None:
    workspace = Workspace(project, target="prod")
    compiled = workspace.compile(dialect=dialect)
    assert [c.model for c in compiled] == list(MODELS)
    for model in compiled:
        assert model.sql is not None and model.problem is None, model
        assert_golden_text(f"compile/{model.model.replace('.', '_')}", dialect, model.sql)


def test_the_target_gives_the_dialect_and_the_schema_prefix(project: Path) -> None:
    prod = {c.model: c.sql for c in Workspace(project, target="prod").compile(["marts.monthly"])}
    assert '"analytics_staging"."orders"' in (prod["marts.monthly"] or "")
    assert "GROUP BY ALL" not in (prod["marts.monthly"] or "")  # postgres: the groups spelled out
    dev = {c.model: c.sql for c in Workspace(project).compile(["marts.monthly"], env="ci")}
    assert '"staging__ci"."orders"' in (dev["marts.monthly"] or "") and "GROUP BY ALL" in (
        dev["marts.monthly"] or ""
    )


def test_what_a_dialect_cannot_spell_is_a_problem_not_sql(
    make_project: Callable[..., Path], cli: Cli
) -> None:
    series = "select unnest(generate_series(1, 3)) as n\n"
    root = make_project({"models/m/series.sql": series, "models/m/plain.sql": "select 1 as x\n"}, toml=TOML)
    compiled = {c.model: c for c in Workspace(root).compile(dialect="redshift")}
    assert compiled["m.series"].sql is None
    assert compiled["m.series"].problem == "redshift cannot run it as written: Unsupported EXPLODE() function"
    code, out = cli("compile", "--dialect", "redshift", project=root)
    assert code == 1
    assert "-- m.plain\nSELECT 1 AS x;" in out
    assert "models/m/series.sql: redshift cannot run it as written" in out


def test_compile_prints_the_target_and_needs_no_engine(project: Path, cli: Cli) -> None:
    code, out = cli("compile", "-t", "prod", "-s", "marts.monthly", "-d", "redshift", project=project)
    assert code == 0, out
    assert "target prod (postgres loader@db.host:5432/analytics)" in out  # its engine is never opened
    assert 'FROM "analytics_staging"."orders" AS orders' in out


def test_an_unknown_dialect_is_refused(project: Path) -> None:
    with pytest.raises(ConfigError, match="--dialect oracle: unknown dialect"):
        Workspace(project).compile(dialect="oracle")
