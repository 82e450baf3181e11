"""Per-statement latency of read-only SQL on the demo project: the same 100-row query through
``SqlReader.select`` in process, through the PostgreSQL wire door (psycopg) and through
``POST /api/v1/sql`` (httpx), after a few warm-up statements. Figures in docs/serving-sql.md.

    .venv/bin/python -m bench.sql_door [--runs 40]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
from fastapi import FastAPI

from gristmill.project.scaffold import create_demo
from gristmill.server.http import BackgroundServer
from gristmill.server.pgwire import start_pg_door
from gristmill.server.sql_api import router
from gristmill.workspace.facade import Workspace
from gristmill.workspace.sql_reading import SqlReader

QUERY = "select track_key, track_name from marts.dim_track where track_key > 100 order by track_key limit 100"


def _timed(statement: Callable[[], object], runs: int) -> str:
    for _ in range(3):
        statement()
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        statement()
        took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return f"p50 {statistics.median(took):6.1f} ms   p90 {took[int(len(took) * 0.9)]:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    runs = parser.parse_args().runs
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as folder:
        workspace = Workspace(create_demo(Path(folder) / "shop"))
        workspace.run()
        reader = SqlReader(workspace)
        door = start_pg_door(reader, "127.0.0.1", 0)
        try:
            print(f"in process      {_timed(lambda: reader.select(QUERY), runs)}")
            with psycopg.connect(host="127.0.0.1", port=door.port, user="bench", autocommit=True) as conn:
                print(f"wire (psycopg)  {_timed(lambda: conn.execute(QUERY).fetchall(), runs)}")
            app = FastAPI()
            app.include_router(router(reader))
            with BackgroundServer(app, port=0) as server, httpx.Client(base_url=server.url) as client:
                ask = lambda: client.post("/api/v1/sql", json={"sql": QUERY}).raise_for_status()  # noqa: E731
                print(f"HTTP            {_timed(ask, runs)}")
        finally:
            door.stop()
            reader.close()
            workspace.close()


if __name__ == "__main__":
    main()
