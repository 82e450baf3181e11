"""OpenLineage events from a run of the demo project's real plan: pairing, parents, datasets, schema
and column lineage, and that every event validates against the OpenLineage model with jsonschema.

The published OpenLineage JSON Schema files are not shipped in any package this project can install,
so the schema is derived from openlineage-python's model classes (generated from that JSON Schema):
every field, which are required (plus ``_producer``/``_schemaURL`` on facets, and ``eventTime``,
``producer``, ``schemaURL`` on events, which the spec requires), their types, enums, the uuid /
date-time / uri formats, and each object's exact ``_schemaURL``, so a facet under the wrong key fails.
"""

from __future__ import annotations

import enum
import json
import logging
import socket
import threading
import types
import typing
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attr
import jsonschema
import pytest
from openlineage.client.event_v2 import RunEvent
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    documentation_dataset,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    parent_run,
    schema_dataset,
    sql_job,
    tags_run,
)
from openlineage.client.generated import base

from gristmill.config import secrets
from gristmill.config.settings import LineageSettings
from gristmill.errors import ConfigError
from gristmill.plan.planner import Plan
from gristmill.runtime.notify.openlineage import GIVE_UP_AFTER, LineageEmitter, lineage_listener
from gristmill.runtime.run.events import RunFinished, RunStarted, StepFinished, StepRetrying, StepStarted
from gristmill.runtime.run.executor import RunResult, StepResult
from gristmill.sql.lineage import ROWS
from gristmill.workspace import Workspace

# -- the OpenLineage model as a JSON Schema ---------------------------------------------------------

FACETS: dict[type, dict[str, type]] = {
    base.RunFacet: {
        "parent": parent_run.ParentRunFacet,
        "errorMessage": error_message_run.ErrorMessageRunFacet,
        "tags": tags_run.TagsRunFacet,
    },
    base.JobFacet: {"jobType": job_type_job.JobTypeJobFacet, "sql": sql_job.SQLJobFacet},
    base.DatasetFacet: {
        "schema": schema_dataset.SchemaDatasetFacet,
        "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet,
        "documentation": documentation_dataset.DocumentationDatasetFacet,
    },
    base.OutputDatasetFacet: {
        "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet
    },
    base.InputDatasetFacet: {},
}
"""The facets each facet map may hold, by the key the spec gives them; any other key is an error."""

FORMATS = {"runId": "uuid", "eventTime": "date-time", "producer": "uri", "_producer": "uri"}
SPEC_REQUIRED = {
    base.BaseEvent: ("eventTime", "producer", "schemaURL"),
    base.BaseFacet: ("_producer", "_schemaURL"),
}


def openlineage_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}

    def ref(cls: type) -> dict[str, Any]:
        key = f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__qualname__}"
        if key not in defs:
            defs[key] = {}
            defs[key] = define(cls)
        return {"$ref": f"#/$defs/{key}"}

    def of(hint: Any, name: str) -> dict[str, Any]:
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            (inner,) = [a for a in args if a is not type(None)]
            return of(inner, name)
        if origin is list:
            return {"type": "array", "items": of(args[0], name)}
        if origin is dict:
            facet_base = args[1]
            if facet_base in FACETS:
                known = {key: ref(cls) for key, cls in FACETS[facet_base].items()}
                return {"type": "object", "properties": known, "additionalProperties": False}
            return {"type": "object", "additionalProperties": of(args[1], name)}
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return {"enum": [member.value for member in hint]}
        if attr.has(hint):
            return ref(hint)
        simple = {str: "string", int: "integer", float: "number", bool: "boolean"}[hint]
        return {"type": simple, **({"format": FORMATS[name]} if name in FORMATS else {})}

    def define(cls: type) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        fields = attr.fields(cls)
        properties = {f.name: of(hints[f.name], f.name) for f in fields}
        required = {f.name for f in fields if f.default is attr.NOTHING}
        required |= {n for parent, names in SPEC_REQUIRED.items() if issubclass(cls, parent) for n in names}
        for url_field in ("schemaURL", "_schemaURL"):
            if url_field in properties:
                properties[url_field] = {"const": cls._get_schema()}  # type: ignore[attr-defined]
        return {
            "type": "object",
            "properties": properties,
            "required": sorted(required),
            "additionalProperties": False,
        }

    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **ref(RunEvent), "$defs": defs}


def _is_uri(value: object) -> bool:
    parts = urlsplit(str(value))
    return bool(parts.scheme and (parts.netloc or parts.path))


FORMAT_CHECKER = jsonschema.FormatChecker()
FORMAT_CHECKER.checks("uri")(_is_uri)
VALIDATOR = jsonschema.Draft202012Validator(openlineage_schema(), format_checker=FORMAT_CHECKER)


def validate(events: list[dict[str, Any]]) -> None:
    for event in events:
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(event)]
        assert not errors, f"{event['eventType']} {event['job']['name']}: {errors}"


def test_the_derived_schema_rejects_what_the_spec_rejects() -> None:
    good = {
        "eventType": "START",
        "eventTime": "2026-01-02T03:04:05+00:00",
        "producer": "https://example.com/producer",
        "schemaURL": RunEvent._get_schema(),
        "run": {"runId": "0190e2a0-0000-7000-8000-000000000000"},
        "job": {"namespace": "n", "name": "j"},
    }
    validate([good])
    bad_facet = {
        "_producer": "https://example.com/p",
        "_schemaURL": schema_dataset.SchemaDatasetFacet._get_schema(),
    }
    for broken in (
        {**good, "run": {"runId": "run-12"}},
        {**good, "eventTime": "yesterday"},
        {**good, "eventType": "DONE"},
        {key: value for key, value in good.items() if key != "producer"},
        {**good, "job": {"namespace": "n", "name": "j", "facets": {"jobType": bad_facet}}},
    ):
        assert list(VALIDATOR.iter_errors(broken)), broken


# -- driving the emitter with a real plan ------------------------------------------------------------

SECRET = "s3cret-warehouse-password"
FAILING = "staging.stg_invoice"


@pytest.fixture
def plan(demo: Path) -> Plan:
    return Workspace(demo).plan()


def _descendants(plan: Plan, name: str) -> set[str]:
    found: set[str] = set()
    for step in plan.steps:
        if name in step.asset.upstream or found & set(step.asset.upstream):
            found.add(step.name)
    return found


def drive(emitter: LineageEmitter, plan: Plan, *, failing: str | None = FAILING) -> RunResult:
    """A run of ``plan``: the first source is skipped, the second retried once, ``failing`` fails (its
    descendants are not run), and everything else builds."""
    result = RunResult(12)
    emitter(RunStarted(12, plan, "run"))
    sources = [s.name for s in plan.steps if s.asset.kind == "source"]
    held = _descendants(plan, failing) if failing else set()
    for step in plan.steps:
        kind = step.asset.kind
        if step.name == sources[0]:
            outcome = StepResult(step.name, kind, "skip", "skipped", "current")
        elif step.name in held:
            outcome = StepResult(
                step.name, kind, "build", "upstream_failed", f"not run: upstream {FAILING} failed"
            )
        else:
            emitter(StepStarted(step.name, kind, step.reason))
            if step.name == sources[1]:
                emitter(StepRetrying(step.name, 1, "connection reset", 0.01))
                emitter(StepStarted(step.name, kind, step.reason, attempt=2))
            if step.name == failing:
                error = f"Binder Error: column x not found (connecting with {SECRET})"
                outcome = StepResult(step.name, kind, "build", "failed", step.reason, error=error)
            else:
                outcome = StepResult(step.name, kind, "build", "success", step.reason, rows=42)
        result.steps.append(outcome)
        emitter(StepFinished(outcome))
    emitter(RunFinished(result, "failed" if failing else "success"))
    return result


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_run_becomes_paired_events_with_parents_datasets_and_column_lineage(
    demo: Path, plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GM_TEST_WAREHOUSE_PASSWORD", SECRET)
    secrets.resolve("${env:GM_TEST_WAREHOUSE_PASSWORD}")
    emitter = lineage_listener(LineageSettings(openlineage=".gristmill/openlineage.jsonl"), "shop", demo)
    assert emitter is not None
    drive(emitter, plan)
    emitter.close()
    events = read_events(demo / ".gristmill" / "openlineage.jsonl")
    validate(events)

    first, last = events[0], events[-1]
    assert (first["eventType"], first["job"]["namespace"], first["job"]["name"]) == ("START", "shop", "shop")
    assert first["job"]["facets"]["jobType"]["jobType"] == "DAG"
    run_id = first["run"]["runId"]
    assert (last["eventType"], last["job"]["name"], last["run"]["runId"]) == ("FAIL", "shop", run_id)
    assert last["run"]["facets"]["errorMessage"]["message"].startswith(f"1 step(s) failed: {FAILING}; ")
    tags = {t["key"]: t["value"] for t in first["run"]["facets"]["tags"]["tags"]}
    assert tags["gristmill.run"] == "12" and tags["gristmill.env"] == "prod"

    steps = events[1:-1]
    assert all(e["run"]["facets"]["parent"]["run"]["runId"] == run_id for e in steps)
    assert all(e["run"]["facets"]["parent"]["job"]["name"] == "shop" for e in steps)
    assert all(e["run"]["facets"]["parent"]["root"]["run"]["runId"] == run_id for e in steps)
    by_job: dict[str, list[tuple[str, str]]] = {}
    for e in steps:
        by_job.setdefault(e["job"]["name"], []).append((e["eventType"], e["run"]["runId"]))

    # Skipped and not-run steps ran nothing, so they have no runs.
    sources = [s.name for s in plan.steps if s.asset.kind == "source"]
    held = _descendants(plan, FAILING)
    assert held and not (held | {sources[0]}) & set(by_job)
    # Every other step: one START and one end per attempt, sharing the attempt's run id.
    (retried_start, retried_fail, second_start, second_complete) = by_job.pop(sources[1])
    assert [retried_start[0], retried_fail[0], second_start[0], second_complete[0]] == [
        "START",
        "FAIL",
        "START",
        "COMPLETE",
    ]
    assert retried_start[1] == retried_fail[1] != second_start[1] == second_complete[1]
    for name, pair in by_job.items():
        (start, end) = pair
        assert start[0] == "START" and start[1] == end[1], name
        assert end[0] == ("FAIL" if name == FAILING else "COMPLETE"), name
    assert len({pair[0][1] for pair in by_job.values()}) == len(by_job)  # a run id per attempt

    failed = next(e for e in steps if e["job"]["name"] == FAILING and e["eventType"] == "FAIL")
    message = failed["run"]["facets"]["errorMessage"]["message"]
    assert message == "Binder Error: column x not found (connecting with ***)"
    assert SECRET not in (demo / ".gristmill" / "openlineage.jsonl").read_text()


def test_a_completed_step_names_its_inputs_its_output_schema_and_column_lineage(
    demo: Path, plan: Plan
) -> None:
    emitter = LineageEmitter(
        LineageSettings(openlineage="lineage/events.jsonl", namespace="etl"), "shop", demo
    )
    drive(emitter, plan, failing=None)
    events = read_events(demo / "lineage" / "events.jsonl")
    validate(events)
    assert {e["job"]["namespace"] for e in events} == {"etl"}
    complete = {e["job"]["name"]: e for e in events if e["eventType"] == "COMPLETE"}
    assert complete["shop"]["run"]["runId"] == events[0]["run"]["runId"]

    steps = {s.name: s for s in plan.steps}
    step = steps["marts.dim_customer"]
    event = complete[step.name]
    assert [(i["namespace"], i["name"]) for i in event["inputs"]] == [
        ("gristmill://shop", name) for name in step.asset.upstream
    ]
    (output,) = event["outputs"]
    assert (output["namespace"], output["name"]) == ("gristmill://shop", "marts.dim_customer")
    fields = output["facets"]["schema"]["fields"]
    assert [f["name"] for f in fields] == list(step.columns or ())
    assert fields[0] == {
        "name": "customer_key",
        "type": "BIGINT",  # from its contract
        "description": step.asset.model.columns["customer_key"],  # type: ignore[union-attr]
        "ordinal_position": 1,
    }
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 42
    assert event["job"]["facets"]["jobType"] == {
        "_producer": event["producer"],
        "_schemaURL": job_type_job.JobTypeJobFacet._get_schema(),
        "processingType": "BATCH",
        "integration": "GRISTMILL",
        "jobType": "MODEL",
    }
    assert event["job"]["facets"]["sql"]["query"] == step.asset.model.sql  # type: ignore[union-attr]

    assert step.analysis is not None
    lineage = output["facets"]["columnLineage"]
    expected = {
        column: [{"namespace": "gristmill://shop", "name": a, "field": c} for a, c in trace.reads]
        for column, trace in step.analysis.traces.items()
        if column != ROWS and trace.reads
    }
    assert {c: f["inputFields"] for c, f in lineage["fields"].items()} == expected
    assert expected["full_name"]  # the demo's dimension really reads upstream columns
    rows = step.analysis.traces.get(ROWS)
    assert lineage.get("dataset", []) == [
        {"namespace": "gristmill://shop", "name": a, "field": c} for a, c in (rows.reads if rows else ())
    ]

    source = complete[next(s.name for s in plan.steps if s.asset.kind == "source" and s.name in complete)]
    assert source["inputs"] == [] and source["job"]["facets"]["jobType"]["jobType"] == "TASK"
    assert "columnLineage" not in source["outputs"][0]["facets"]
    start = next(e for e in events if e["eventType"] == "START" and e["job"]["name"] == step.name)
    assert "columnLineage" not in start["outputs"][0]["facets"]  # lineage once it ran


def test_other_environments_get_a_dataset_namespace_of_their_own_and_cancelled_runs_abort(
    demo: Path, plan: Plan
) -> None:
    emitter = LineageEmitter(LineageSettings(openlineage=str(demo / "ol.jsonl")), "shop", demo)
    dev = replace(plan, env="dev")
    step = dev.steps[-1]
    emitter(RunStarted(5, dev, "run --env dev"))
    emitter(StepStarted(step.name, step.asset.kind, step.reason))
    emitter(RunFinished(RunResult(5), "cancelled"))
    events = read_events(demo / "ol.jsonl")
    validate(events)
    assert [(e["eventType"], e["job"]["name"]) for e in events] == [
        ("START", "shop"),
        ("START", step.name),
        ("ABORT", step.name),
        ("ABORT", "shop"),
    ]
    assert events[1]["run"]["runId"] == events[2]["run"]["runId"]
    assert {o["namespace"] for e in events[1:3] for o in e["outputs"]} == {"gristmill://shop/dev"}


# -- HTTP --------------------------------------------------------------------------------------------


class Collector:
    """An OpenLineage HTTP receiver on loopback."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                collector.received.append((self.path, json.loads(body)))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()
    thread = threading.Thread(target=found.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


def test_events_go_to_an_http_receiver_at_marquez_s_endpoint_or_the_given_path(
    demo: Path, plan: Plan, collector: Collector
) -> None:
    for target, path in (
        (collector.url, "/api/v1/lineage"),
        (f"{collector.url}/hooks/lineage", "/hooks/lineage"),
    ):
        collector.received.clear()
        emitter = LineageEmitter(LineageSettings(openlineage=target), "shop", demo)
        drive(emitter, plan)
        emitter.close()
        assert {p for p, _ in collector.received} == {path}
        events = [event for _, event in collector.received]
        validate(events)
        assert events[0]["eventType"] == "START" and events[-1]["eventType"] == "FAIL"


def test_a_dead_endpoint_never_fails_the_run_and_logs_without_secrets(
    demo: Path, plan: Plan, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    monkeypatch.setenv("GM_TEST_LINEAGE_TOKEN", "lineage-api-token-77")
    settings = LineageSettings(openlineage=f"http://user:${{env:GM_TEST_LINEAGE_TOKEN}}@127.0.0.1:{dead}")
    emitter = LineageEmitter(settings, "shop", demo)
    with caplog.at_level(logging.WARNING, logger="gristmill.lineage"):
        drive(emitter, plan)  # raises nothing
        emitter.close()
    warnings = [r.getMessage() for r in caplog.records if r.name == "gristmill.lineage"]
    assert len(warnings) == GIVE_UP_AFTER + 1  # then it stops trying for the rest of the run
    assert warnings[0].startswith("OpenLineage: event for shop START not sent: ")
    assert warnings[-1] == f"OpenLineage: {GIVE_UP_AFTER} events in a row not sent; no more for this run"
    assert all("lineage-api-token-77" not in w for w in warnings)


def test_settings_that_can_never_work_are_config_errors(demo: Path) -> None:
    assert lineage_listener(LineageSettings(), "shop", demo) is None
    with pytest.raises(ConfigError) as caught:
        lineage_listener(LineageSettings(openlineage="kafka://broker:9092/lineage"), "shop", demo)
    assert "OpenLineage events cannot go to kafka://" in str(caught.value)
    assert "http(s) URL" in (caught.value.hint or "")
    with pytest.raises(ConfigError, match="GM_TEST_UNSET_LINEAGE_URL is not set"):
        lineage_listener(LineageSettings(openlineage="${env:GM_TEST_UNSET_LINEAGE_URL}"), "shop", demo)
