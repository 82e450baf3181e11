"""Metrics through SQL: each metric of the demo project is a relation in the ``metrics`` schema,
read with psycopg over the PostgreSQL wire door and with ``POST /api/v1/sql``, and the answer is
``gristmill metrics query``'s for the same metric, dimensions, grain and filter."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from gristmill.server.http import BackgroundServer
from gristmill.server.pgwire import PgDoor, start_pg_door
from gristmill.server.sql_api import router
from gristmill.workspace.facade import Workspace
from gristmill.workspace.sql_reading import SqlReader

GRISTMILL = str(Path(sys.executable).parent / "gristmill")
ASKED = (
    "select country, metric_time__month, revenue from metrics.revenue"
    " where country in ('Germany', 'France') group by country, metric_time__month"
    " order by metric_time__month, country"
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    from gristmill.project.scaffold import create_demo

    built = Workspace(create_demo(tmp_path_factory.mktemp("metric_sql") / "shop"))
    built.run()
    yield built
    built.close()


@pytest.fixture(scope="module")
def reader(workspace: Workspace) -> Iterator[SqlReader]:
    sql_reader = SqlReader(workspace)
    yield sql_reader
    sql_reader.close()


@pytest.fixture(scope="module")
def door(reader: SqlReader) -> Iterator[PgDoor]:
    running = start_pg_door(reader, "127.0.0.1", 0)
    yield running
    running.stop()


def _cli(workspace: Workspace, *args: str) -> list[tuple[str, ...]]:
    done = subprocess.run(
        [GRISTMILL, "metrics", "query", *args, "-f", "csv", "--project", str(workspace.root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [tuple(row) for row in csv.reader(io.StringIO(done.stdout))][1:]


def test_a_metric_read_over_the_wire_equals_gristmill_metrics_query(
    workspace: Workspace, door: PgDoor
) -> None:
    expected = _cli(
        workspace, "revenue", "--grain", "month", "--by", "country", "--where", "country:in:Germany,France"
    )
    assert len(expected) > 10
    with psycopg.connect(host=door.host, port=door.port, user="bi", dbname="shop", autocommit=True) as conn:
        rows = conn.execute(ASKED).fetchall()
        # the same without GROUP BY, and a dimension filtered but not selected
        bare = conn.execute(ASKED.replace(" group by country, metric_time__month", "")).fetchall()
        total = conn.execute(
            "select revenue from metrics.revenue where country = %s", ("Germany",)
        ).fetchall()
    assert [(str(m), c, str(v)) for c, m, v in rows] == expected  # the CLI puts metric_time first
    assert bare == rows
    (germany,) = _cli(workspace, "revenue", "--where", "country:eq:Germany")
    assert total == [(Decimal(germany[0]),)]


def test_a_metric_over_http_sql_and_aggregated_by_a_bi_tool(workspace: Workspace, reader: SqlReader) -> None:
    app = FastAPI()
    app.include_router(router(reader))
    expected = _cli(workspace, "revenue", "--by", "country")
    with BackgroundServer(app, port=0) as server:
        answer = httpx.post(f"{server.url}/api/v1/sql", json={"sql": ASKED}).json()
        # what Metabase writes for "sum of revenue by country": one row per group, the metric's value
        summed = httpx.post(
            f"{server.url}/api/v1/sql",
            json={
                "sql": "select country, sum(revenue) as s from metrics.revenue group by country order by 1"
            },
        ).json()
        refused = httpx.post(f"{server.url}/api/v1/sql", json={"sql": "select * from metrics.nothing"})
    months = _cli(
        workspace, "revenue", "--grain", "month", "--by", "country", "--where", "country:in:Germany,France"
    )
    assert [(m, c, v) for c, m, v in answer["rows"]] == months
    assert [tuple(row) for row in summed["rows"]] == sorted(expected)
    assert refused.status_code == 400 and "is not a metric" in refused.json()["error"]


def test_the_catalog_lists_metrics_with_their_dimensions_and_grains(door: PgDoor) -> None:
    with psycopg.connect(host=door.host, port=door.port, user="bi", dbname="shop", autocommit=True) as conn:
        columns = conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema = 'metrics' and table_name = 'revenue' order by ordinal_position"
        ).fetchall()
        # what a BI tool's preview sends: every column, the metric per day labelled with each grain
        preview = conn.execute("select * from metrics.revenue where country = 'France' limit 3").fetchall()
        labelled = conn.execute(
            "select metric_time__year, metric_time__day, revenue from metrics.revenue"
            " where country = 'France' order by metric_time__day limit 1"
        ).fetchone()
    assert len(preview) == 3
    assert labelled is not None and labelled[0] == labelled[1].replace(month=1, day=1)
    names = [c for (c,) in columns]
    assert "country" in names and names[-1] == "revenue"
    assert {"metric_time__day", "metric_time__month", "metric_time__year"} <= set(names)
