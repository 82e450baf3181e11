"""A plan from the project, the lake's state and the sources: made once per verb.

The lake's state is the expensive input (attaching the catalog, ~0.3-0.5 CPU-s): the run history
keeps the copy the last run read, tagged with the lake's snapshot, and a plan uses it while the lake
has not committed since."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlglot import exp

from gristmill.engines import Engine, lake_snapshot
from gristmill.errors import ConfigError
from gristmill.plan import Asset, AssetGraph, Plan, build_graph, make_plan, select
from gristmill.plan.inputs import gather
from gristmill.plan.spelling import refuse_unspellable
from gristmill.project import Project
from gristmill.project.specs import STREAM_SOURCES, ModelSpec
from gristmill.runtime.run.runner import retrying
from gristmill.runtime.session import Session
from gristmill.sql.lineage import Analysis, analyse
from gristmill.sql.parse import ParsedModel
from gristmill.state import RunHistory
from gristmill.state.lake.lake_state import LakeState

_ENV = re.compile(r"^[a-z][a-z0-9_]*$")

Span = tuple[datetime, datetime]


@dataclass(frozen=True)
class PlanRequest:
    """What to plan: a selection, in an environment, and how (a backfill's chunk restates a
    window of intervals, or builds some declared partitions)."""

    selection: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    env: str = "prod"
    full_refresh: bool = False
    restate: Span | None = None
    window: Span | None = None
    partitions: tuple[str, ...] | None = None

    @classmethod
    def of(
        cls,
        selection: Sequence[str],
        exclude: Sequence[str] = (),
        env: str = "prod",
        full_refresh: bool = False,
        restate: Span | None = None,
        window: Span | None = None,
        partitions: Sequence[str] | None = None,
    ) -> PlanRequest:
        values = tuple(partitions) if partitions is not None else None
        return cls(tuple(selection), tuple(exclude), env, full_refresh, restate, window, values)

    def words(self) -> str:
        """The request as the run history shows it (the arguments of the command line)."""
        words = [*self.selection, *(f"--exclude {e}" for e in self.exclude)]
        words += [f"--env {self.env}"] if self.env != "prod" else []
        words += (
            [f"--restate {self.restate[0].isoformat()}:{self.restate[1].isoformat()}"] if self.restate else []
        )
        words += (
            [f"--window {self.window[0].isoformat()}:{self.window[1].isoformat()}"] if self.window else []
        )
        words += [f"--partition {p}" for p in self.partitions or ()]
        return " ".join(words)


def check_env(env: str) -> None:
    if not _ENV.match(env):
        raise ConfigError(
            f'environment name "{env}" must be lower-case letters, digits and _',
            hint="e.g. dev, prod, feature_x",
        )


def streaming(asset: Asset) -> bool:
    """A stream model, or a message-broker table (landed by a run only when selected by name)."""
    return asset.kind == "stream" or (asset.source is not None and asset.source.kind in STREAM_SOURCES)


def python_fingerprint(asset: Asset) -> str:
    from gristmill.runtime.build.python_models import python_model_fingerprint

    assert asset.model is not None
    return python_model_fingerprint(asset.model)


def run_python_model(engine: Engine, model: ModelSpec, physical: Callable[[str], exp.Table]) -> exp.Query:
    from gristmill.runtime.build.python_models import run_python_model as run

    return run(engine, model, physical)


class CachedAnalyser:
    """Column lineage from the state store when the model and what it reads are unchanged;
    analysed (and validated) with sqlglot otherwise."""

    def __init__(self, history: RunHistory) -> None:
        self._history = history
        self._new: list[tuple[str, str, str]] = []

    def __call__(self, parsed: ParsedModel, schemas: Mapping[str, Sequence[str]]) -> Analysis:
        key = hashlib.sha256(
            json.dumps(
                [parsed.text, parsed.dialect, sorted((k, list(v)) for k, v in schemas.items())]
            ).encode()
        ).hexdigest()
        found = self._history.caches.lineage([key]).get(key)
        if found is not None:
            return Analysis.from_json(found)
        analysis = analyse(parsed, schemas)
        self._new.append((key, parsed.file, analysis.to_json()))
        return analysis

    def save(self) -> None:
        self._history.caches.save_lineage(self._new)
        self._new = []


def load_graph(project: Project, session: Session) -> AssetGraph:
    """The project's assets, with the parse summaries the history kept (unchanged SQL is not
    parsed again)."""
    summaries: dict[str, str] = {}
    if project.path(project.settings.storage.state).exists():
        with session.history() as history:
            summaries = history.caches.parse_summaries()
    return build_graph(project, summaries)


def snapshot(session: Session) -> str | None:
    """The lake's current snapshot (None when it cannot be told cheaply)."""
    return lake_snapshot(session.project.settings, session.root)


def remembered(session: Session, history: RunHistory, at: str | None) -> LakeState | None:
    """The lake state the last run left, if the lake is still at snapshot ``at``."""
    found = history.caches.lake_cache() if at else None
    return LakeState.from_json(found[1]) if found and found[0] == at else None


def remember(session: Session, state: LakeState, history: RunHistory) -> None:
    """Keep the lake state read at the end of a run for the next plan; call after the engine
    closed (closing a database file may still write to it)."""
    at = snapshot(session)
    if at:
        history.caches.save_lake_cache(at, state.to_json())


def make(
    session: Session, graph: AssetGraph, lake: LakeState, history: RunHistory, request: PlanRequest
) -> Plan:
    """The plan for ``request`` over this state of the lake."""
    check_env(request.env)
    chosen = select(graph, request.selection, request.exclude)
    if not request.selection:
        # Streams run continuously under `gristmill stream`; a run builds them only when named.
        chosen = [n for n in chosen if not streaming(graph.assets[n])]
    retry = session.retry()
    inputs = gather(
        graph,
        chosen,
        recorded=lake.versions,
        existing=lake.columns,
        sources=session.source,
        full_refresh=request.full_refresh,
        attempt=lambda read: retrying(read, retry),
    )
    history.caches.save_parse_summaries(dict(graph.parsed_now))
    analyser = CachedAnalyser(history)
    try:
        made = make_plan(
            graph,
            chosen,
            recorded=lake.versions,
            pointers=lake.env(request.env),
            existing_columns=lake.columns,
            source_columns=inputs.source_columns,
            markers=inputs.markers,
            env=request.env,
            baseline=lake.env("prod") if request.env != "prod" else None,
            full_refresh=request.full_refresh,
            analyser=analyser,
            python_fingerprint=python_fingerprint,
            restate=request.restate,
            window=request.window,
            partitions=request.partitions,
        )
    finally:
        analyser.save()
    # The engine kind names its dialect (as `gristmill compile` reads it).
    refuse_unspellable(made.steps, session.project.settings.engine.kind)
    return made


def plan(session: Session, graph: AssetGraph, request: PlanRequest) -> Plan:
    """The plan verb: what a run would do, from the remembered lake state or, when the lake
    committed since, from the lake read once."""
    with session.history() as history:
        lake = remembered(session, history, snapshot(session))
        if lake is None:
            with session.engine(read_only=True) as engine:
                lake = LakeState.read(engine) if engine else LakeState()
        return make(session, graph, lake, history, request)
