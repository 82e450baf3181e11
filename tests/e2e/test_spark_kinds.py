"""Every model kind built on a DuckDB target and on a spark target (local Spark, embedded Derby
metastore, DuckDB ledger) of the same project, over runs of changing source data: every table
equals across the two engines. The same project and normalisation as test_postgres_kinds.py.

One Spark session serves the whole test session (tests/support/spark_engine.py): each CLI call
opens the engine on it, with the target's own schema prefix and ledger."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill.workspace.facade import create_demo
from tests.conftest import Cli
from tests.e2e.test_postgres_kinds import FILES, TABLES, table
from tests.support.pg_engine import schema_prefix
from tests.support.spark_engine import MASTER, start_shared_session

pytestmark = pytest.mark.services
TARGETS = ("duck", "spark")


@pytest.fixture(scope="module", autouse=True)
def _spark(tmp_path_factory: pytest.TempPathFactory) -> None:
    start_shared_session(tmp_path_factory.mktemp("spark"))


def _spark_target(prefix: str) -> str:
    return f'[targets.spark]\nengine = "spark"\nmaster = "{MASTER}"\nschema_prefix = "{prefix}"\n'


def run(cli: Cli, root: Path, *args: str) -> None:
    for target in TARGETS:
        code, out = cli("run", "--target", target, *args, project=root)
        assert code == 0, (target, out)


def assert_equal(cli: Cli, root: Path, *env: str) -> None:
    for name in TABLES:
        duck, spark = (table(cli, root, target, name, *env) for target in TARGETS)
        assert duck == spark, name
        assert duck, name


def test_every_kind_builds_equal_on_duckdb_and_spark(make_project: Callable[..., Path], cli: Cli) -> None:
    duck = 'name = "shop"\ntarget = "duck"\n\n[targets.duck]\nengine = "duckdb"\n\n'
    toml = duck + _spark_target(schema_prefix())
    root = make_project(FILES, toml=toml)
    run(cli, root)
    assert_equal(cli, root)

    # Ada moves; an order after the move; an order of a customer not landed yet; a late order
    customers = root / "data" / "customers.csv"
    customers.write_text(customers.read_text().replace("1,Ada,Oslo,2024-01-01", "1,Ada,Bergen,2024-01-10"))
    orders = root / "data" / "orders.csv"
    orders.write_text(
        orders.read_text()
        + "12,1,2024-01-12,north,3.0\n13,3,2024-01-12,south,4.0\n14,2,2024-01-05,north,1.0\n"
    )
    run(cli, root)
    assert_equal(cli, root)

    # write-audit-publish: a failing error check rolls the build back, the old table stays served
    before = table(cli, root, "spark", "marts.guarded")
    customers.write_text(customers.read_text() + ",Nobody,Nowhere,2024-01-01\n")
    code, out = cli("run", "--target", "spark", project=root)
    assert code != 0, out
    assert table(cli, root, "spark", "marts.guarded") == before

    # gc drops what nothing serves, and the tables still read
    code, out = cli("gc", "--target", "spark", project=root)
    assert code == 0, out
    for name in TABLES:
        assert table(cli, root, "spark", name), name


def test_the_demo_builds_every_mart_equal_on_a_duckdb_and_a_spark_target(tmp_path: Path, cli: Cli) -> None:
    root = create_demo(tmp_path / "shop")
    toml = root / "gristmill.toml"
    text = toml.read_text()
    storage = text[text.index("[storage]") : text.index("[engine]")]
    text = text.replace(storage, "").replace('[engine]\nkind = "duckdb"\n', "")
    text = text.replace('name = "shop"\n', 'name = "shop"\ntarget = "duck"\n', 1)
    duck = '[targets.duck]\nengine = "duckdb"\n\n' + storage.replace("[storage]", "[targets.duck.storage]")
    toml.write_text(f"{text}\n{duck}\n{_spark_target(schema_prefix())}")
    run(cli, root)
    marts = sorted(
        str(p.relative_to(root / "models")).replace("/", ".")[:-4] for p in root.glob("models/marts/*.sql")
    )
    assert marts
    for name in marts:
        on_duck, on_spark = (_numbers(table(cli, root, target, name)) for target in TARGETS)
        assert on_duck == on_spark, name
        assert on_duck, name


_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def _numbers(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """Numbers compared by value: DuckDB sums integers as HUGEINT, which JSON carries as a string,
    where Spark's sum is a BIGINT (documented in docs/engines.md's type mapping)."""

    def value(v: object) -> object:
        return float(v) if isinstance(v, str) and _NUMBER.fullmatch(v) else v

    return sorted((tuple((k, value(v)) for k, v in row) for row in rows), key=repr)  # type: ignore[misc]
