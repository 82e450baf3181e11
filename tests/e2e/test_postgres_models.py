"""Models written in DuckDB's SQL run on a PostgreSQL engine: the demo builds there with the
same rows as on DuckDB, and a model using what PostgreSQL has no form for is refused when
planning, naming its file, line and the construct, before anything runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gristmill.workspace.facade import create_demo
from tests.conftest import Cli
from tests.support.pg_engine import postgres_database


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_database("gristmill_models") as url:
        yield url


def _on_postgres(root: Path, url: str) -> None:
    toml = root / "gristmill.toml"
    text = toml.read_text()
    assert '[engine]\nkind = "duckdb"' in text
    toml.write_text(text.replace('kind = "duckdb"', f'kind = "postgres"\nurl = "{url}"'))


def _rows(cli: Cli, root: Path, sql: str) -> list[dict[str, object]]:
    code, out = cli("query", sql, "--format", "json", project=root)
    assert code == 0, out
    return json.loads(out)


@pytest.mark.services
def test_the_demo_builds_on_postgres_with_duckdbs_rows(tmp_path: Path, cli: Cli, postgres_url: str) -> None:
    on_duckdb, on_postgres = create_demo(tmp_path / "duck"), create_demo(tmp_path / "pg")
    _on_postgres(on_postgres, postgres_url)
    for root in (on_duckdb, on_postgres):
        code, out = cli("run", project=root)
        assert code == 0, out
    for table, key in [
        ("marts.dim_date", "date_key"),
        ("marts.revenue_by_genre_country_month", "1, 2, 3"),
        ("marts.dim_customer", "1"),
    ]:
        sql = f"select * from {table} order by {key}"
        assert _rows(cli, on_postgres, sql) == _rows(cli, on_duckdb, sql), table


@pytest.mark.services
def test_a_model_postgres_cannot_spell_is_refused_before_anything_runs(
    make_project: Callable[..., Path], cli: Cli, postgres_url: str
) -> None:
    files = {
        "sources/shop.yml": "kind: files\ntables:\n  orders: {path: data/orders.csv}\n",
        "data/orders.csv": "order_id,amount,note\n1,5.0,x\n",
        "models/marts/orders.sql": "select\n    * exclude (note)\nfrom raw.shop__orders\n",
    }
    toml = f'name = "t"\n\n[engine]\nkind = "postgres"\nurl = "{postgres_url}"\n'
    root = make_project(files, toml=toml)
    for verb in ("plan", "run"):
        code, out = cli(verb, project=root)
        assert code == 2, out
        assert "models/marts/orders.sql:2:" in out, out
        assert "marts.orders cannot run on the postgres engine" in out
        assert "SELECT * EXCLUDE (…) has no PostgreSQL form" in out
        assert "[1/" not in out  # no step started: not even the source was loaded
