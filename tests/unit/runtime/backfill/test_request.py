"""A backfill's request is kept as data, and backfills recorded as command lines still resume."""

from __future__ import annotations

import json

from gristmill.runtime.backfill.request import BackfillRequest


def test_a_request_round_trips_as_json() -> None:
    request = BackfillRequest(("+daily", "monthly"), ("eu", "us"), "failed", 3, "dev")
    text = request.to_json()
    assert json.loads(text)["selection"] == ["+daily", "monthly"]
    assert BackfillRequest.stored(text) == request
    assert BackfillRequest.from_json(BackfillRequest().to_json()) == BackfillRequest()


def test_unknown_keys_of_a_newer_version_are_kept() -> None:
    text = json.dumps({"selection": ["a"], "env": "prod", "since": "later"})
    request = BackfillRequest.stored(text)
    assert request.selection == ("a",)
    assert json.loads(request.to_json())["since"] == "later"


def test_an_older_backfills_command_line_is_read_back() -> None:
    old = "+daily monthly --partition eu --partition us --reprocess all --chunk 3 --env dev"
    request = BackfillRequest.stored(old)
    assert request == BackfillRequest(("+daily", "monthly"), ("eu", "us"), "all", 3, "dev")
    assert request.describe() == old
    assert BackfillRequest.stored("summary") == BackfillRequest(("summary",))
    assert BackfillRequest.stored("") == BackfillRequest()


def test_a_listing_shows_the_request_as_its_arguments() -> None:
    request = BackfillRequest(("daily",), None, "missing", None, "prod")
    assert request.describe() == "daily"
    assert BackfillRequest.stored(request.to_json()).describe() == "daily"
