"""The metrics SQL that differs most between engines, run on Spark (local, the shared test
session): the generated time spine (``EXPLODE(SEQUENCE(…))``), conversions (a window function
and interval arithmetic) and a join through an entity answer as on DuckDB."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill.workspace import Workspace
from tests.e2e.test_metrics_conversion import FILES
from tests.support.pg_engine import schema_prefix
from tests.support.spark_engine import MASTER, start_shared_session

pytestmark = pytest.mark.services
MORE = """\
  - name: visits_running
    type: cumulative
    type_params: {measure: visits}
  - name: visits_weekly_filled
    type: simple
    type_params:
      measure: {name: visits, join_to_timespine: true, fill_nulls_with: 0}
  - name: buys_by_segment
    type: simple
    type_params: {measure: purchases}
"""
USERS = """\
  - name: users
    model: ref('users')
    entities:
      - {name: user, type: primary, expr: user_id}
    dimensions:
      - {name: segment, type: categorical}
"""
QUERIES = [
    ("visit_buys", ["channel"], "month"),
    ("visit_to_buy", [], "month"),
    ("visits_running", [], "week"),
    ("visits_weekly_filled", ["channel"], "week"),
    ("buys_by_segment", ["user__segment"], "month"),
]


@pytest.fixture(scope="module", autouse=True)
def _spark(tmp_path_factory: pytest.TempPathFactory) -> None:
    start_shared_session(tmp_path_factory.mktemp("spark"))


def test_spark_answers_as_duckdb(make_project: Callable[..., Path]) -> None:
    files = dict(FILES)
    files["metrics/web.yml"] = FILES["metrics/web.yml"].replace("metrics:\n", USERS + "metrics:\n") + MORE
    files["data/users.csv"] = "user_id,segment\n1,new\n2,old\n3,new\n4,old\n5,new\n"
    files["sources/web.yml"] += "  users: {path: data/users.csv}\n"
    files["models/web/users.sql"] = "-- kind: table\nselect user_id, segment from raw.web__users\n"
    toml = (
        'name = "web"\ntarget = "duck"\n\n[targets.duck]\nengine = "duckdb"\n\n'
        f'[targets.spark]\nengine = "spark"\nmaster = "{MASTER}"\nschema_prefix = "{schema_prefix()}"\n'
    )
    root = make_project(files, toml=toml)
    duck, spark = Workspace(root, target="duck"), Workspace(root, target="spark")
    try:
        for workspace in (duck, spark):
            assert workspace.run().ok
        for name, by, grain in QUERIES:
            answers = [w.metric(name, by=by, grain=grain) for w in (duck, spark)]
            plain = [
                [
                    tuple(round(v, 9) if isinstance(v, float) else v for v in r.values())
                    for r in a.table.to_pylist()
                ]
                for a in answers
            ]
            assert plain[0] == plain[1] and plain[0], name
        assert "SEQUENCE(" in spark.metric("visits_running", grain="week", run=False).sql
    finally:
        duck.close()
        spark.close()
