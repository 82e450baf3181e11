"""A backup into S3 (moto's server) and back: the round trip equals the original."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from gristmill.errors import GristmillError
from gristmill.workspace.backups import Backups
from tests.e2e.test_backup import MODELS, fresh_copy, gristmill, tables_at


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_s3_round_trip_equals_the_original(
    s3: str, make_project: Callable[..., Path], tmp_path: Path
) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=s3,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="backups")
    options: dict[str, object] = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": s3, "region_name": "us-east-1"},
    }
    project = make_project(MODELS)
    gristmill(project, "run")
    info = Backups.for_project(project).backup("s3://backups/nightly", options=options)
    [listed] = Backups.list("s3://backups/nightly", options=options)
    assert listed.complete and listed.snapshot == info.snapshot
    assert info.url == f"s3://backups/nightly/{info.name}"
    target = fresh_copy(project, tmp_path)
    Backups.for_project(target).restore(info.url, options=options)
    assert tables_at(target) == tables_at(project)

    victim = next(f for f in info.files if f.path.endswith(".parquet"))
    client.put_object(Bucket="backups", Key=f"nightly/{info.name}/{victim.path}", Body=b"tampered")
    with pytest.raises(GristmillError, match=re.escape(f"{victim.path} does not match")):
        Backups.for_project(target).restore(info.url, force=True, options=options)
    assert tables_at(target) == tables_at(project)
