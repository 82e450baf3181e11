"""The floor on Spark: the TPC-H project's statements sent raw through ``spark.sql``.

Run as its own process (timed like every tool, interpreter and JVM start included):

    .venv/bin/python bench/engines/spark_raw.py plan.json [--sources-only]

``plan.json`` holds the session (``master`` and the ``conf`` a Gristmill ``spark`` target's
session gets, its own warehouse and metastore folder), the sources (table -> Parquet file) and the
models in dependency order, each its SELECT as ``gristmill compile --dialect spark`` renders it.
One session; the 8 sources land as ``CREATE TABLE raw.<t> USING parquet AS SELECT * FROM
parquet.`<file>``` (a copy into the warehouse, as a ``files`` source lands), then each model is
``CREATE VIEW … AS`` or ``CREATE TABLE … USING parquet AS`` its SELECT, one statement each.
``--sources-only`` lands the sources and stops (dbt's setup: its sources exist before it runs).
Never imports Gristmill.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("plan", type=Path)
    parser.add_argument("--sources-only", action="store_true")
    args = parser.parse_args()
    plan = json.loads(args.plan.read_text())
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(plan["master"])
    for key, value in plan["conf"].items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    started = time.perf_counter()
    schemas = ["raw"] + (
        [] if args.sources_only else list(dict.fromkeys(m["schema"] for m in plan["models"]))
    )
    for schema in schemas:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
    for table, path in plan["sources"].items():
        spark.sql(f"CREATE TABLE raw.{table} USING parquet AS SELECT * FROM parquet.`{path}`")
    landed = time.perf_counter()
    if not args.sources_only:
        for model in plan["models"]:
            if model["kind"] == "view":
                spark.sql(f"CREATE VIEW {model['name']} AS {model['sql']}")
            else:
                spark.sql(f"CREATE TABLE {model['name']} USING parquet AS {model['sql']}")
    done = time.perf_counter()
    print(f"sources seconds: {landed - started:.2f}")
    print(f"models seconds: {done - landed:.2f}")
    spark.stop()


if __name__ == "__main__":
    main()
