"""Python models on a spark target: Spark DataFrame models run on the cluster and never bring
their rows to the driver; Arrow models keep working; a Spark model elsewhere is a clear error.

A project with a ``duck`` and a ``spark`` target (local Spark on the test session's JVM,
tests/support/spark_engine.py)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gristmill.engines.spark.engine import SparkEngine
from gristmill.workspace import Workspace
from tests.support.pg_engine import schema_prefix
from tests.support.spark_engine import MASTER, TEST_CONF, start_shared_session

pytestmark = pytest.mark.services

SPARK_MODEL = '''
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from gristmill import model


@model(reads=["raw.src__orders", "raw.src__regions"])
def by_region(spark: SparkSession, orders: DataFrame, regions: DataFrame) -> DataFrame:
    """Revenue per region, on the cluster."""
    assert isinstance(orders, DataFrame) and spark.version
    joined = orders.join(regions, on="region_id")
    return joined.groupBy("region").agg(F.sum("amount").alias("revenue"), F.count("*").alias("orders"))
'''

ARROW_MODEL = """
import pyarrow as pa
import pyarrow.compute as pc

from gristmill import model


@model(reads=["raw.src__orders"])
def big_orders(orders: pa.Table) -> pa.Table:
    return orders.filter(pc.greater(orders["amount"], 20))
"""


@pytest.fixture(scope="module", autouse=True)
def _spark(tmp_path_factory: pytest.TempPathFactory) -> None:
    start_shared_session(tmp_path_factory.mktemp("spark"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    conf = "".join(f'"{k}" = "{v}"\n' for k, v in TEST_CONF.items())
    files = {
        "gristmill.toml": f'name = "t"\ntarget = "spark"\n[targets.duck]\nengine = "duckdb"\n'
        f'[targets.spark]\nengine = "spark"\nmaster = "{MASTER}"\nschema_prefix = "{schema_prefix()}"\n'
        f"[targets.spark.conf]\n{conf}",
        "sources/src.yml": "kind: files\ntables:\n  orders: {path: data/orders.csv}\n"
        "  regions: {path: data/regions.csv}\n",
        "data/orders.csv": "id,region_id,amount\n"
        + "".join(f"{i},{i % 3},{i * 2.5}\n" for i in range(1, 31)),
        "data/regions.csv": "region_id,region\n0,north\n1,south\n2,east\n",
        "models/marts/by_region.py": SPARK_MODEL,
        "models/marts/big_orders.py": ARROW_MODEL,
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return tmp_path


@pytest.fixture
def nothing_to_the_driver(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Reading a table into Python, or sending Arrow rows to Spark, is recorded."""
    calls: list[str] = []
    land, read = SparkEngine._land, SparkEngine.read_arrow

    def landing(self: SparkEngine, *args: Any) -> int:
        calls.append("arrow to spark")
        return land(self, *args)

    def reading(self: SparkEngine, table: Any) -> Any:
        calls.append(f"read {table.name}")
        return read(self, table)

    monkeypatch.setattr(SparkEngine, "_land", landing)
    monkeypatch.setattr(SparkEngine, "read_arrow", reading)
    yield calls


def test_a_spark_model_runs_on_the_cluster_without_collecting(
    root: Path, nothing_to_the_driver: list[str]
) -> None:
    result = Workspace(root, target="spark").run(["+marts.by_region"])
    assert result.ok, [(s.asset, s.error) for s in result.steps]
    assert nothing_to_the_driver == []  # inputs lazy, result staged from its plan
    rows = Workspace(root, target="spark").query("select * from marts.by_region order by region").to_pylist()
    expected = {
        r: (sum(i * 2.5 for i in range(1, 31) if i % 3 == k), 10)
        for k, r in enumerate(["north", "south", "east"])
    }
    assert {r["region"]: (r["revenue"], r["orders"]) for r in rows} == expected


def test_an_arrow_model_runs_on_spark_as_on_duckdb(root: Path) -> None:
    tables = {}
    for target in ("duck", "spark"):
        result = Workspace(root, target=target).run(["+marts.big_orders"])
        assert result.ok, (target, [(s.asset, s.error) for s in result.steps])
        query = "select id, region_id, amount from marts.big_orders order by id"
        tables[target] = Workspace(root, target=target).query(query).to_pylist()
    assert tables["spark"] == tables["duck"]
    assert [r["id"] for r in tables["spark"]] == list(range(9, 31))


def test_a_spark_model_on_another_engine_names_its_file(root: Path) -> None:
    result = Workspace(root, target="duck").run(["+marts.by_region"])
    assert not result.ok
    error = next(s.error for s in result.steps if s.asset == "marts.by_region")
    assert "models/marts/by_region.py" in error
    assert "only a spark engine has" in error and "duckdb" in error
