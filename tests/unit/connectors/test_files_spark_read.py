"""The files source's reads for a spark engine (connectors/files/spark_read.py), as SQL: what is
offered, in which form, and what keeps the DuckDB reader. Spark itself runs them in
tests/unit/runtime/load/test_spark_file_loads.py."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from gristmill.connectors import open_source
from gristmill.connectors.base import NativeRead
from gristmill.project import load_project
from gristmill.sql.render import render

SOURCE = "kind: files\ntables:\n"


def reads(root: Path, dialect: str = "spark") -> dict[str, NativeRead | None]:
    project = load_project(root)
    source = open_source(project.sources["src"], root)
    try:
        return {key: source.native(table, dialect) for key, table in project.sources["src"].tables.items()}
    finally:
        source.close()


def spark_sql(read: NativeRead) -> list[str]:
    """The read's statements as Spark runs them, each parsed back by sqlglot's Spark parser."""
    assert read.numbered is not None
    texts = [render(s, "spark") for s in (*read.setup, read.query, read.numbered)]
    for text in texts:
        sqlglot.parse_one(text, read="spark")
    return texts


def test_csv_is_read_as_text_and_cast_to_the_sniffed_types_checked(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE + "  c: {path: data/c.csv}\n",
            "data/c.csv": "Id,Customer Name,amount,at\n"
            '1,"Ann, A",1.5,2024-01-01 10:00:00\n2,Bo,2,2024-01-02 11:00:00\n',
        }
    )
    read = reads(root)["c"]
    assert read is not None and read.dialect == "spark" and read.diagnose is not None
    view, query, numbered = spark_sql(read)
    assert view.startswith(
        "CREATE OR REPLACE TEMPORARY VIEW _gm_files_src__c (`Id` STRING, `Customer Name` STRING"
    )
    for option in ("'mode'='FAILFAST'", "'multiLine'='true'", "'header'='true'", "'escape'='\"'"):
        assert option in view
    assert "TRY_CAST(`amount` AS DOUBLE)" in query and "RAISE_ERROR" in query
    assert "TRY_CAST(`at` AS TIMESTAMP_NTZ)" in query and "AS `customer_name`" in query
    assert "MONOTONICALLY_INCREASING_ID()" in numbered and "`_gm_ord`" in numbered
    assert read.diagnose() is None  # DuckDB reads the file: nothing to add to Spark's message


def test_ndjson_takes_the_schema_of_every_record(make_project: Callable[..., Path]) -> None:
    records = [{"id": i, "o": {"a": i}} for i in range(30_001)] + [{"id": 1, "late": "x"}]
    root = make_project({"sources/src.yml": SOURCE + "  j: {path: data/j.ndjson}\n"})
    (root / "data").mkdir()
    (root / "data" / "j.ndjson").write_text("".join(json.dumps(r) + "\n" for r in records))
    read = reads(root)["j"]
    assert read is not None
    view = spark_sql(read)[0]
    assert "USING JSON" in view and "`late` STRING" in view and "`o` STRUCT<a: BIGINT>" in view
    assert "'multiLine'='false'" in view


def test_parquet_keeps_its_types(make_project: Callable[..., Path]) -> None:
    root = make_project({"sources/src.yml": SOURCE + "  p: {path: data/p.parquet}\n"})
    (root / "data").mkdir()
    pq.write_table(
        pa.table({"a": pa.array([1], pa.int32()), "t": pa.array([1], pa.timestamp("us"))}),
        root / "data" / "p.parquet",
    )
    read = reads(root)["p"]
    assert read is not None
    assert "(`a` INT, `t` TIMESTAMP_NTZ) USING PARQUET" in spark_sql(read)[0]


def test_several_files_are_one_path_pattern(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE + "  c: {path: data/**/c_*.csv}\n",
            "data/x/c_1.csv": "a\n1\n",
            "data/y/c_2.csv": "a\n2\n",
        }
    )
    read = reads(root)["c"]
    assert read is not None
    assert f"'path'='{root}/data/{{x/c_1.csv,y/c_2.csv}}'" in spark_sql(read)[0]


def test_what_spark_cannot_read_as_duckdb_does_keeps_the_duckdb_reader(
    make_project: Callable[..., Path],
) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE
            + "  hidden: {path: data/_hidden.csv}\n"
            + "  option: {path: data/c.csv, options: {decimal_separator: ','}}\n"
            + "  document: {path: data/d.json}\n"
            + "  gz: {path: data/z.csv.gz}\n"
            + "  dates: {path: data/dates.csv}\n",
            "data/_hidden.csv": "a\n1\n",
            "data/c.csv": "a\n1\n",
            "data/d.json": '[{"a": 1}]',
            "data/dates.csv": "d\n01/02/2024\n03/04/2024\n",
        }
    )
    (root / "data" / "z.csv.gz").write_bytes(gzip.compress(b"a\n1\n"))
    assert reads(root) == dict.fromkeys(["hidden", "option", "document", "gz", "dates"])
    assert all(
        isinstance(r, NativeRead) and r.dialect == "duckdb"
        for k, r in reads(root, "duckdb").items()
        if k != "gz"
    )
    assert set(reads(root, "postgres").values()) == {None}


def test_a_json_column_of_mixed_values_is_read_as_a_variant(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE + "  j: {path: data/j.ndjson}\n",
            "data/j.ndjson": '{"m": 1}\n{"m": "a"}\n',
        }
    )
    read = reads(root)["j"]
    assert read is not None
    view, query, _ = spark_sql(read)
    assert "`m` VARIANT" in view and "IF(IS_VARIANT_NULL(`m`), NULL, TO_JSON(`m`))" in query
    assert isinstance(read.query, exp.Select)
