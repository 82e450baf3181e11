"""A driver process for the Spark session tests: ``python -m tests.support.spark_client '<json>'``.

Each test session runs in a process of its own, as a user's ``gristmill`` command would: a
process holds one driver JVM (and an embedded Derby metastore locks its folder until the JVM
exits), and "a second process sees the table" is only proven by a second process. The JSON names
the target (``engine`` settings and project ``root``) and an ``action``; the result is one JSON
line on stdout, after any progress lines (``{"progress": ...}``) a test may wait for.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from gristmill.config.settings import ProjectSettings
from gristmill.engines.spark.session import plan_session, start_session
from gristmill.errors import EngineError


def say(value: dict[str, Any]) -> None:
    print(json.dumps(value), flush=True)


def java_children() -> list[int]:
    """Pids of java processes whose parent is this process (none for a Spark Connect client)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if int(rest[1]) == os.getpid() and name == "java":
            found.append(int(entry.name))
    return found


def main(request: dict[str, Any]) -> None:
    settings = ProjectSettings.model_validate({"name": "sparktest", "engine": request["engine"]})
    started = time.monotonic()
    spark = start_session(plan_session(settings, Path(request["root"])))
    say({"progress": "session", "seconds": round(time.monotonic() - started, 1)})
    action = request["action"]
    if action == "write":
        spark.sql("create database if not exists sales")
        spark.sql(
            "create table sales.orders using parquet as "
            "select id, id * 10 as amount from range(1000) as r(id)"
        )
        say({"tables": [row.tableName for row in spark.sql("show tables in sales").collect()]})
    elif action == "read":
        row = spark.sql("select count(*) as n, sum(amount) as total from sales.orders").collect()[0]
        location = spark.sql("describe table extended sales.orders").where("col_name = 'Location'")
        again = start_session(plan_session(settings, Path(request["root"])))
        # Another target in the same process: its own warehouse and metastore, so refused.
        try:
            start_session(plan_session(settings, Path(request["root"]) / "other"))
            refused = ""
        except EngineError as err:
            refused = str(err)
        say(
            {
                "n": row.n,
                "total": row.total,
                "location": location.collect()[0].data_type,
                "same_session": again is spark,
                "other_target": refused,
            }
        )
    elif action == "meet":
        # Two processes on one metastore: each writes its own table, then waits to see the other's.
        me, other = request["me"], request["other"]
        spark.sql(f"create table {me} using parquet as select id from range({request['rows']}) as r(id)")
        say({"progress": "created"})
        deadline = time.monotonic() + 240
        while not spark.catalog.tableExists(other):
            if time.monotonic() > deadline:
                raise SystemExit(f"{other} never appeared")
            time.sleep(0.5)
        say({"other_rows": spark.table(other).count()})
    elif action == "connect":
        table = spark.sql("select 1 as a, 'x' as b union all select 2, 'y'").toArrow()
        spark.sql("create table if not exists items using parquet as select id from range(5) as r(id)")
        count = spark.sql("select count(*) as n from items").collect()[0].n
        from pyspark import SparkContext

        say(
            {
                "arrow": table.to_pydict(),
                "arrow_type": type(table).__module__,
                "count": count,
                "java_children": java_children(),
                "gateway": SparkContext._gateway is not None,
            }
        )
    elif action == "cluster":
        where = _task_sessions(spark, partitions=4, sleep=0)
        executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1
        say(
            {
                "progress": "first job",
                "sessions": where,
                "executors": executors,
                "driver_session": os.getsid(0),
            }
        )
        # A longer job, during which the test kills a worker.
        say({"progress": "long job"})
        say({"sessions": _task_sessions(spark, partitions=request["partitions"], sleep=request["sleep"])})
    spark.stop()


def _task_sessions(spark: Any, partitions: int, sleep: float) -> list[list[int]]:
    """``[partition, session id of the process that ran it, rows]`` for each partition: a task
    on a standalone executor runs in its worker's session (the tests start each worker in a
    session of its own), never in the driver's."""

    def where(index: int, rows: Any) -> Any:
        import os
        import time

        time.sleep(sleep)
        yield [index, os.getsid(0), sum(1 for _ in rows)]

    rdd = spark.sparkContext.parallelize(range(partitions * 10), partitions)
    return sorted(rdd.mapPartitionsWithIndex(where).collect())


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
