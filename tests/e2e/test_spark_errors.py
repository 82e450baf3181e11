"""A model's SQL that fails on the engine names the model's file and the line in THAT file (not the
rendered SQL's), with the engine's message (its first line on Spark, no JVM stack): one project
built on a DuckDB target and on a spark target, the culprit always at line 7 of models/marts/x.sql.

A typo'd column is caught when the project is validated (before any SQL runs); an unknown function
or a type mismatch only when the engine runs the model (Spark quotes the expression it could not
type in its own spelling -- ``date_add(…)`` for the model's ``+`` -- and the model's node over the
same columns is named)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.support.pg_engine import schema_prefix
from tests.support.spark_engine import MASTER, start_shared_session

TARGETS = ("duck", "spark")
MODEL = (
    "-- kind: table\n\n-- doubled amounts\nselect\n    order_id,\n    amount,\n    {} as doubled\n"
    "from raw.shop__orders\n"
)


@pytest.fixture(scope="module", autouse=True)
def _spark(tmp_path_factory: pytest.TempPathFactory) -> None:
    start_shared_session(tmp_path_factory.mktemp("spark"))


def project(make_project: Callable[..., Path], culprit: str) -> Path:
    toml = (
        f'name = "errs"\ntarget = "duck"\n\n[targets.duck]\nengine = "duckdb"\n\n'
        f'[targets.spark]\nengine = "spark"\nmaster = "{MASTER}"\nschema_prefix = "{schema_prefix()}"\n'
    )
    files = {
        "sources/shop.yml": "kind: files\ntables:\n  orders: {path: data/orders.csv}\n",
        "data/orders.csv": "order_id,amount,name\n1,2.5,a\n2,3.0,b\n",
        "models/marts/x.sql": MODEL.format(culprit),
    }
    return make_project(files, toml=toml)


@pytest.mark.parametrize(
    ("culprit", "said"),
    [
        ("amout * 2", {"duck": "amout", "spark": "amout"}),
        ("foo_bar(amount) * 2", {"duck": "foo_bar", "spark": "foo_bar"}),
        ("order_id + date '2024-01-01'", {"duck": "+", "spark": "DATATYPE_MISMATCH"}),
    ],
    ids=["typo", "unknown_function", "type_mismatch"],
)
def test_a_failing_model_names_its_file_and_line(
    make_project: Callable[..., Path], cli: Cli, culprit: str, said: dict[str, str]
) -> None:
    root = project(make_project, culprit)
    for target in TARGETS:
        code, out = cli("run", "--target", target, project=root)
        assert code != 0, (target, out)
        flat = " ".join(out.split())
        assert "models/marts/x.sql:7:" in flat, (target, out)
        assert said[target].lower() in flat.lower(), (target, flat)
        # the engine's own position is in the rendered SQL: never shown
        for rendered in ("LINE 1:", "line 1 pos", "SQLSTATE", "org.apache.spark", "\tat ", "Py4J"):
            assert rendered not in out, (target, rendered, out)
