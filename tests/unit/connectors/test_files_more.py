"""The files source beyond plain local files: an S3 server, compression, Excel, only-new-files."""

from __future__ import annotations

import gzip
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer

from gristmill._util.duckdb_extensions import connect, load
from gristmill.workspace import Workspace


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """A real S3 API (moto's server) on loopback; yields its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    yield endpoint
    server.stop()


def test_reads_parquet_and_csv_from_an_s3_bucket(
    s3: str, make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=s3,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="landing")
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"id": [1, 2, 3], "amount": [1.5, 2.5, 3.0]}), sink)
    client.put_object(Bucket="landing", Key="orders/part-1.parquet", Body=sink.getvalue().to_pybytes())
    client.put_object(Bucket="landing", Key="orders/part-2.parquet", Body=sink.getvalue().to_pybytes())
    client.put_object(Bucket="landing", Key="people.csv", Body=b"id,name\n1,Ann\n2,Bob\n")
    monkeypatch.setenv("LANDING_SECRET", "testing")
    root = make_project(
        {
            "sources/bucket.yml": f"""
        kind: files
        storage: {{key: testing, secret: "${{env:LANDING_SECRET}}", endpoint_url: "{s3}"}}
        tables:
          orders: {{path: "s3://landing/orders/*.parquet"}}
          people: {{path: "s3://landing/people.csv"}}
    """
        }
    )
    result = Workspace(root).run()
    assert result.ok, [s.error for s in result.steps]
    workspace = Workspace(root)
    assert workspace.query("select count(*) as n, sum(amount) as s from raw.bucket__orders").to_pylist() == [
        {"n": 6, "s": 14.0}
    ]
    assert workspace.query("select name from raw.bucket__people order by id").column("name").to_pylist() == [
        "Ann",
        "Bob",
    ]
    assert "0 built, 2 skipped" in _summary(root)  # unchanged objects are not loaded again
    client.put_object(Bucket="landing", Key="people.csv", Body=b"id,name\n1,Ann\n2,Bob\n3,Cy\n")
    assert "1 built, 1 skipped" in _summary(root)


def test_a_missing_bucket_key_is_a_clear_error(s3: str, make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/bucket.yml": f"""
        kind: files
        storage: {{key: testing, secret: testing, endpoint_url: "{s3}"}}
        tables:
          x: {{path: "s3://landing/nothing/*.csv"}}
    """
        }
    )
    with pytest.raises(
        Exception, match=r"sources/bucket.yml \(x\): no file matches s3://landing/nothing/\*\.csv"
    ):
        Workspace(root).plan()


def _summary(root: Path) -> str:
    from gristmill.cli.render import summary_line

    return summary_line(Workspace(root).run()).plain


def test_compressed_files_are_read_by_their_inner_format(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/src.yml": "kind: files\ntables:\n  a: {path: data/a.csv.gz}\n"
            "  b: {path: data/b.ndjson.gz}\n"
        }
    )
    (root / "data").mkdir()
    (root / "data" / "a.csv.gz").write_bytes(gzip.compress(b"id,v\n1,x\n2,y\n"))
    (root / "data" / "b.ndjson.gz").write_bytes(gzip.compress(b'{"id": 1}\n{"id": 2}\n{"id": 3}\n'))
    assert Workspace(root).run().ok
    workspace = Workspace(root)
    assert workspace.query("select count(*) as n from raw.src__a").to_pylist() == [{"n": 2}]
    assert workspace.query("select sum(id) as s from raw.src__b").to_pylist() == [{"s": 6}]


def test_excel_sheets(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/src.yml": "kind: files\ntables:\n"
            "  sales: {path: data/sales.xlsx, options: {sheet: Sales}}\n"
        }
    )
    (root / "data").mkdir()
    con = connect()
    load(con, "excel")
    target = (root / "data" / "sales.xlsx").as_posix()
    con.execute(
        f"COPY (SELECT range AS id, range * 1.5 AS amount FROM range(4)) TO '{target}' "
        "(FORMAT xlsx, HEADER true, SHEET 'Sales')"
    )
    con.close()
    assert Workspace(root).run().ok
    rows = Workspace(root).query("select id, amount from raw.src__sales order by id").to_pylist()
    assert [r["amount"] for r in rows] == [0.0, 1.5, 3.0, 4.5]


def test_only_new_files_are_loaded(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/src.yml": """
        kind: files
        tables:
          events:
            path: data/events_*.ndjson
            write: append
            incremental: {cursor: _gm_file_modified}
    """
        }
    )
    (root / "data").mkdir()
    first = root / "data" / "events_1.ndjson"
    first.write_text('{"id": 1}\n{"id": 2}\n')
    os.utime(first, (time.time() - 100, time.time() - 100))
    result = Workspace(root).run()
    assert result.ok and result.steps[0].load.rows_read == 2
    (root / "data" / "events_2.ndjson").write_text('{"id": 3}\n')
    result = Workspace(root).run()
    assert result.ok
    assert result.steps[0].load.rows_read == 1  # the old file was not read again
    rows = Workspace(root).query("select id, _gm_file from raw.src__events order by id").to_pylist()
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert rows[2]["_gm_file"].endswith("events_2.ndjson")
