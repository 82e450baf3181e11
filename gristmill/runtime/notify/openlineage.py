"""OpenLineage run events for every run and every step, so lineage catalogs (Marquez, DataHub,
OpenMetadata…) see what ran, what it read and wrote, and which columns feed which.

Jobs live in the namespace ``[lineage] namespace`` (the project name when unset). A run is one job
named after the project; each step is a job named after its asset, whose runs carry a ``parent``
facet pointing at the run. Every step attempt is a run of its own (a retried step: a FAIL, then a
new START), each with a fresh UUID kept from its START to its end.

Datasets: an embedded DuckDB/DuckLake lakehouse has no host and port to name it by, so (following
the OpenLineage naming convention of ``scheme://authority`` namespaces naming the data source and
hierarchical dataset names) the project is the data source: namespace ``gristmill://<project>``,
dataset name the asset's ``schema.table``, the name readers query in prod. Another environment has
views of its own and gets ``gristmill://<project>/<env>``, so a dev run never writes onto the lineage
of prod datasets.

A step that runs nothing (skipped, switched to an existing version, or not run because an upstream
step failed) emits nothing: it has no run, and its dataset keeps the lineage of the run that built
it. Emitting never fails a run: problems are logged (secrets blanked) on ``gristmill.lineage``, and
after a few failures in a row the emitter stops trying until the next run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
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
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.transport.transport import Transport
from openlineage.client.uuid import generate_new_uuid

from gristmill._util.version import VERSION as __version__
from gristmill.config import secrets
from gristmill.config.settings import LineageSettings
from gristmill.errors import ConfigError
from gristmill.runtime.run.events import (
    Event,
    RunFinished,
    RunStarted,
    StepFinished,
    StepRetrying,
    StepStarted,
)
from gristmill.sql.lineage import ROWS

if TYPE_CHECKING:
    from gristmill.plan.planner import Step
    from gristmill.runtime.run.executor import RunResult, StepResult

log = logging.getLogger("gristmill.lineage")

PRODUCER = f"https://pypi.org/project/gristmill/{__version__}/"
"""Who produced the events (a URI, as OpenLineage asks): this package at this version."""

INTEGRATION = "GRISTMILL"
MARQUEZ_ENDPOINT = "api/v1/lineage"
"""Where an OpenLineage HTTP receiver given as a bare ``http://host:port`` listens (Marquez's path)."""
HTTP_TIMEOUT = 5.0
HTTP_RETRY = {
    "total": 2,
    "connect": 2,
    "read": 1,
    "backoff_factor": 0.2,
    "status_forcelist": [500, 502, 503, 504],
    "allowed_methods": ["POST"],
}
"""Short on purpose: events are sent while the run waits."""
GIVE_UP_AFTER = 3
"""Failed emissions in a row before the emitter stops trying for the rest of the run."""

_OK = ("success", "switched", "skipped")
_RAN_NOTHING = ("skipped", "switched", "upstream_failed")


@dataclass
class _Run:
    """What one gristmill run needs to tie its events together."""

    run_id: str
    gristmill_id: int
    env: str
    steps: dict[str, Step] = field(default_factory=dict)
    attempts: dict[str, str] = field(default_factory=dict)
    """asset -> the OpenLineage run id of its attempt that started and has not ended."""


class LineageEmitter:
    """A run listener turning run events into OpenLineage events."""

    def __init__(self, settings: LineageSettings, project: str, root: Path) -> None:
        """Raises ConfigError when ``[lineage]`` can never work (an unknown scheme, a missing secret)."""
        if not settings.openlineage:
            raise ConfigError("openlineage is not set", location="gristmill.toml [lineage]")
        self.project = project
        self.namespace = settings.namespace or project
        transport, self._scrub = _transport(settings.openlineage, root)
        try:
            self._client = OpenLineageClient(transport=transport)
        except Exception as err:  # the client also reads OPENLINEAGE_* variables and openlineage.yml
            raise ConfigError(
                f"cannot set up the OpenLineage client: {self._clean(str(err))}",
                location="gristmill.toml [lineage]",
                hint="check OPENLINEAGE_* environment variables and any openlineage.yml",
            ) from None
        self._lock = threading.Lock()
        self._run: _Run | None = None
        self._failures = 0

    def __call__(self, event: Event) -> None:
        with self._lock:
            try:
                events = list(self._translate(event))
            except Exception as err:  # lineage must never fail the run it describes
                log.warning(
                    "OpenLineage: cannot describe %s: %s", type(event).__name__, self._clean(str(err))
                )
                return
            for lineage_event in events:
                self._emit(lineage_event)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception as err:  # closing a dead connection must not fail the run either
            log.warning("OpenLineage: closing the transport failed: %s", self._clean(str(err)))

    # -- translation -------------------------------------------------------------------------------

    def _translate(self, event: Event) -> Iterator[RunEvent]:
        if isinstance(event, RunStarted):
            self._failures = 0
            run = _Run(str(generate_new_uuid()), event.run_id, event.plan.env)
            run.steps = {step.name: step for step in event.plan.steps}
            self._run = run
            yield self._run_event(RunState.START, run)
        elif isinstance(event, StepStarted):
            yield self._start(event.asset, event.kind, event.attempt)
        elif isinstance(event, StepRetrying):
            current = self._run
            attempt = current.attempts.pop(event.asset, None) if current else None
            if attempt is not None:
                yield self._step_event(RunState.FAIL, event.asset, None, attempt, error=event.error)
        elif isinstance(event, StepFinished):
            yield from self._finish(event.result)
        elif isinstance(event, RunFinished):
            yield from self._end(event.result, event.status)

    def _start(self, asset: str, kind: str, attempt: int) -> RunEvent:
        run_id = str(generate_new_uuid())
        if self._run is not None:
            self._run.attempts[asset] = run_id
        return self._step_event(RunState.START, asset, kind, run_id, attempt=attempt)

    def _finish(self, result: StepResult) -> Iterator[RunEvent]:
        run_id = self._run.attempts.pop(result.asset, None) if self._run else None
        if run_id is None:
            if result.status in _RAN_NOTHING:
                return
            # It did something without a StepStarted (e.g. failed before it could start): give it a run.
            run_id = str(generate_new_uuid())
            yield self._step_event(RunState.START, result.asset, result.kind, run_id)
        state = RunState.COMPLETE if result.status in _OK else RunState.FAIL
        error = None if state is RunState.COMPLETE else (result.error or result.reason)
        yield self._step_event(state, result.asset, result.kind, run_id, result=result, error=error)

    def _end(self, result: RunResult, status: str) -> Iterator[RunEvent]:
        run = self._run
        if run is None or run.gristmill_id != result.run_id:
            return
        for asset, attempt in list(run.attempts.items()):  # steps a cancelled run left running
            yield self._step_event(RunState.ABORT, asset, None, attempt)
        run.attempts.clear()
        if status == "cancelled":
            yield self._run_event(RunState.ABORT, run)
        elif status == "success":
            yield self._run_event(RunState.COMPLETE, run)
        else:
            failed = [s.asset for s in result.steps if s.status == "failed"]
            not_run = sum(s.status == "upstream_failed" for s in result.steps)
            summary = f"{len(failed)} step(s) failed: {', '.join(failed)}" if failed else f"run {status}"
            yield self._run_event(
                RunState.FAIL, run, error=summary + (f"; {not_run} not run" if not_run else "")
            )
        self._run = None

    # -- events ------------------------------------------------------------------------------------

    def _run_event(self, state: RunState, run: _Run, *, error: str | None = None) -> RunEvent:
        facets: dict[str, Any] = {"tags": _tags(run=str(run.gristmill_id), env=run.env)}
        if error is not None:
            facets["errorMessage"] = _error(error, "PYTHON")
        return RunEvent(
            eventType=state,
            eventTime=_now(),
            run=Run(runId=run.run_id, facets=facets),
            job=Job(namespace=self.namespace, name=self.project, facets={"jobType": _job_type("DAG")}),
            producer=PRODUCER,
        )

    def _step_event(
        self,
        state: RunState,
        asset: str,
        kind: str | None,
        run_id: str,
        *,
        attempt: int | None = None,
        result: StepResult | None = None,
        error: str | None = None,
    ) -> RunEvent:
        run = self._run
        step = run.steps.get(asset) if run else None
        kind = kind or (step.asset.kind if step else None)
        run_facets: dict[str, Any] = {}
        if run is not None:
            run_facets["parent"] = self._parent(run)
            run_facets["tags"] = _tags(run=str(run.gristmill_id), env=run.env, attempt=attempt)
        language = "PYTHON" if kind == "source" or (step and step.asset.parsed is None) else "SQL"
        if error is not None:
            run_facets["errorMessage"] = _error(error, language)
        job_facets: dict[str, Any] = {"jobType": _job_type("TASK" if kind == "source" else "MODEL")}
        model = step.asset.model if step else None
        if model is not None and model.sql:
            job_facets["sql"] = sql_job.SQLJobFacet(query=model.sql, dialect=model.dialect, producer=PRODUCER)
        dataset_namespace = self._dataset_namespace(run.env if run else "prod")
        inputs = [InputDataset(dataset_namespace, name) for name in (step.asset.upstream if step else ())]
        output = OutputDataset(
            dataset_namespace,
            asset,
            facets=_dataset_facets(step, dataset_namespace, with_lineage=state is not RunState.START),
            outputFacets=_output_facets(result) if state is RunState.COMPLETE else {},
        )
        return RunEvent(
            eventType=state,
            eventTime=_now(),
            run=Run(runId=run_id, facets=run_facets),
            job=Job(namespace=self.namespace, name=asset, facets=job_facets),
            inputs=inputs,
            outputs=[output],
            producer=PRODUCER,
        )

    def _parent(self, run: _Run) -> parent_run.ParentRunFacet:
        return parent_run.ParentRunFacet(
            run=parent_run.Run(runId=run.run_id),
            job=parent_run.Job(namespace=self.namespace, name=self.project),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=run.run_id),
                job=parent_run.RootJob(namespace=self.namespace, name=self.project),
            ),
            producer=PRODUCER,
        )

    def _dataset_namespace(self, env: str) -> str:
        return f"gristmill://{self.project}" + ("" if env == "prod" else f"/{env}")

    # -- sending -----------------------------------------------------------------------------------

    def _emit(self, event: RunEvent) -> None:
        if self._failures >= GIVE_UP_AFTER:
            return
        try:
            self._client.emit(event)
        except Exception as err:  # a dead receiver must not fail (or stop) the run
            self._failures += 1
            what = f"{event.job.name} {event.eventType.value if event.eventType else ''}".rstrip()
            log.warning("OpenLineage: event for %s not sent: %s", what, self._clean(str(err)))
            if self._failures == GIVE_UP_AFTER:
                log.warning("OpenLineage: %d events in a row not sent; no more for this run", GIVE_UP_AFTER)
        else:
            self._failures = 0

    def _clean(self, text: str) -> str:
        for piece in self._scrub:
            text = text.replace(piece, "***")
        return secrets.redact(text)


def lineage_listener(settings: LineageSettings, project: str, root: Path) -> LineageEmitter | None:
    """The emitter ``[lineage]`` asks for; None when ``openlineage`` is unset."""
    if not settings.openlineage:
        return None
    return LineageEmitter(settings, project, root)


def _transport(target: str, root: Path) -> tuple[Transport, list[str]]:
    """A file transport (JSON lines, relative to the project) or an HTTP one, and the parts of the
    target to keep out of logs (a password or query token written in the URL as is)."""
    where = "gristmill.toml [lineage] openlineage"
    resolved = secrets.resolve(target, base=root, where=where)
    parts = urlsplit(resolved)
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise ConfigError("the OpenLineage URL has no host", location=where, hint=_HINT)
        # A bare host means Marquez's endpoint; a path is where the receiver listens.
        endpoint = parts.path.strip("/") or MARQUEZ_ENDPOINT
        endpoint += f"?{parts.query}" if parts.query else ""
        config = HttpConfig(
            url=f"{parts.scheme}://{parts.netloc}/", endpoint=endpoint, timeout=HTTP_TIMEOUT, retry=HTTP_RETRY
        )
        return HttpTransport(config), [p for p in (parts.password, parts.query) if p]
    if parts.scheme in ("", "file"):
        path = Path(parts.path if parts.scheme == "file" else resolved).expanduser()
        path = path if path.is_absolute() else root / path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"cannot create {path.parent}: {err.strerror}", location=where) from None
        return FileTransport(FileConfig(log_file_path=str(path), append=True)), []
    raise ConfigError(f"OpenLineage events cannot go to {parts.scheme}://…", location=where, hint=_HINT)


_HINT = 'write a file path (".gristmill/openlineage.jsonl") or an http(s) URL ("http://marquez:5000")'


def _dataset_facets(step: Step | None, namespace: str, *, with_lineage: bool) -> dict[str, Any]:
    """Schema (names from the plan, types where a contract declares them), documentation and, once
    the step ran, column lineage from the model's traces."""
    if step is None:
        return {}
    facets: dict[str, Any] = {}
    asset = step.asset
    contract = asset.contract
    declared = contract.columns if contract is not None else {}
    described = asset.model.columns if asset.model is not None else {}
    columns = step.columns or (step.analysis.columns if step.analysis else None) or tuple(declared)
    if columns:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(
                    name=c,
                    type=declared.get(c),
                    description=described.get(c),
                    ordinal_position=i,
                    fields=None,
                )
                for i, c in enumerate(columns, 1)
            ],
            producer=PRODUCER,
        )
    description = (contract.description if contract else None) or (
        asset.model.description if asset.model else asset.source.description if asset.source else None
    )
    if description:
        facets["documentation"] = documentation_dataset.DocumentationDatasetFacet(
            description=description, producer=PRODUCER
        )
    traces = step.analysis.traces if step.analysis else {}
    if with_lineage and traces:

        def fields(reads: tuple[tuple[str, str], ...]) -> list[column_lineage_dataset.InputField]:
            return [
                column_lineage_dataset.InputField(namespace, name, column, transformations=None)
                for name, column in reads
            ]

        rows = traces.get(ROWS)
        facets["columnLineage"] = column_lineage_dataset.ColumnLineageDatasetFacet(
            fields={
                column: column_lineage_dataset.Fields(inputFields=fields(trace.reads))
                for column, trace in traces.items()
                if column != ROWS and trace.reads
            },
            dataset=fields(rows.reads) if rows else [],
            producer=PRODUCER,
        )
    return facets


def _output_facets(result: StepResult | None) -> dict[str, Any]:
    if result is None or result.rows is None:
        return {}
    return {
        "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=result.rows, producer=PRODUCER
        )
    }


def _job_type(job_type: str) -> job_type_job.JobTypeJobFacet:
    return job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration=INTEGRATION, jobType=job_type, producer=PRODUCER
    )


def _tags(**values: object) -> tags_run.TagsRunFacet:
    return tags_run.TagsRunFacet(
        tags=[
            tags_run.TagsRunFacetFields(f"gristmill.{key}", str(value), INTEGRATION)
            for key, value in values.items()
            if value is not None
        ],
        producer=PRODUCER,
    )


def _error(message: str, language: str) -> error_message_run.ErrorMessageRunFacet:
    return error_message_run.ErrorMessageRunFacet(
        message=secrets.redact(message), programmingLanguage=language, producer=PRODUCER
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()
