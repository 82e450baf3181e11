"""Schemathesis against the OpenAPI document a real `gristmill serve` publishes: generated
requests to every table's path (typed parameters, injection-like strings included) never get a
500 and every answer matches its documented schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import write_files
from tests.e2e.test_serve_tables import FILES, Server, _run


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = write_files(tmp_path_factory.mktemp("openapi"), FILES)
    _run(root)
    running = Server(root)
    try:
        yield running
    finally:
        running.stop()


def test_no_server_errors_and_answers_match_their_schema(server: Server) -> None:
    api = schemathesis.openapi.from_url(f"{server.url}/openapi.json").include(path_regex="^/api/v1/tables")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 3  # the catalog, the generic path, one per served table
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

        call()
