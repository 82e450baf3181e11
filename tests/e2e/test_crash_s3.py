"""Kill -9 a load that reads NDJSON from S3 (moto's server) with several threads; after a rerun the
lake equals a clean run. Reading S3 NDJSON used to deadlock in DuckDB's JSON auto-detection about
every other time with more than one thread (issue 17, item 7), so every run here must finish."""

from __future__ import annotations

import logging
import random
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.e2e.test_crash import KILLS_PER_MODE, in_child, rows, run, snapshot, start

TABLES = ["raw.bucket__t", "raw.bucket__t__items"]


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_kill_an_s3_load_anywhere_then_rerun_equals_a_clean_run(
    s3: str, make_project: Callable[..., Path], tmp_path: Path
) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=s3,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="crash")

    def put(version: int) -> None:  # three objects, so auto-detection spans several files
        text = rows(version).splitlines(keepends=True)
        third = len(text) // 3 + 1
        for part in range(3):
            body = "".join(text[part * third : (part + 1) * third]).encode()
            client.put_object(Bucket="crash", Key=f"t/part-{part}.ndjson", Body=body)

    put(1)
    base = make_project(
        {
            "sources/bucket.yml": f"""
            kind: files
            storage: {{key: testing, secret: testing, endpoint_url: "{s3}"}}
            tables:
              t:
                path: "s3://crash/t/*.ndjson"
                write: merge
                key: [id]
                nested: child_tables
            """,
        },
        toml='name = "t"\n[engine]\nthreads = 4\n',
    )
    assert in_child(run, base)
    before = in_child(snapshot, base, TABLES)
    put(2)
    clean = tmp_path / "clean"
    shutil.copytree(base, clean)
    started = time.perf_counter()
    assert in_child(run, clean)
    duration = time.perf_counter() - started
    after = in_child(snapshot, clean, TABLES)
    assert after != before

    rng = random.Random("s3-kills")
    outcomes = {"old": 0, "new": 0}
    for point in range(max(2, KILLS_PER_MODE // 2)):
        victim = tmp_path / f"kill{point}"
        shutil.copytree(base, victim)
        child = start(run, victim)
        time.sleep(rng.uniform(0, duration * 1.1))
        child.kill()
        child.join()
        seen = in_child(snapshot, victim, TABLES)
        assert seen in (before, after), f"kill point {point}: the lake holds a mix of two versions"
        outcomes["old" if seen == before else "new"] += 1
        assert in_child(run, victim)
        assert in_child(snapshot, victim, TABLES) == after, f"kill point {point}"
        shutil.rmtree(victim)
    assert outcomes["old"] > 0, outcomes
