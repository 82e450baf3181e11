"""Start a stream model: find its broker feed and what it joins in the environment, open the
lake, and hand them to the stream loop, which runs until stopped."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from gristmill._util.suggest import did_you_mean
from gristmill.connectors.base import Deserializing, Publishing, Streaming
from gristmill.engines import Engine
from gristmill.engines.base import Relation
from gristmill.errors import ConfigError, SelectionError
from gristmill.plan import Asset, AssetGraph, select
from gristmill.plan.planner import PHYSICAL_PREFIX, definition, view_schema
from gristmill.runtime import planning
from gristmill.runtime.session import Session
from gristmill.state.lake.lake_state import LakeState

if TYPE_CHECKING:
    from gristmill.streaming.outbox import Sink
    from gristmill.streaming.settings import StreamSettings
    from gristmill.streaming.stats import StreamStats


@dataclass(frozen=True)
class StreamAsk:
    """How to run a stream model (``Workspace.stream``'s arguments)."""

    model: str
    env: str = "prod"
    settings: StreamSettings | None = None
    stop: threading.Event | None = None
    on_commit: Callable[[StreamStats], None] | None = None


def stream_asset(graph: AssetGraph, model: str) -> Asset:
    names = select(graph, [model])
    streams = [n for n in names if graph.assets[n].kind == "stream"]
    if len(streams) != 1:
        raise SelectionError(
            f'"{model}" is not a stream model' if not streams else f'"{model}" names several stream models',
            hint="a stream model has `-- kind: stream` in its header; `gristmill ls` lists the assets",
        )
    return graph.assets[streams[0]]


def run_stream(session: Session, graph: AssetGraph, ask: StreamAsk) -> StreamStats:
    """Run the stream model until ``ask.stop`` is set (or it has been idle as long as its
    settings allow)."""
    from gristmill.connectors.streams.config import StreamTableOptions
    from gristmill.connectors.streams.feed import OptionedFeed
    from gristmill.streaming.loop import StreamLoop
    from gristmill.streaming.settings import StreamSettings

    planning.check_env(ask.env)
    asset = stream_asset(graph, ask.model)
    assert asset.stream_input is not None and asset.model is not None
    source_asset = graph.assets[asset.stream_input]
    assert source_asset.source is not None and source_asset.table is not None
    source = session.source(source_asset.source.name)
    if not isinstance(source, Streaming):
        raise ConfigError(
            f"source kind {source_asset.source.kind} cannot be streamed", location=source_asset.file
        )
    feed = source.feed(source_asset.table)
    # The connector knows its table options (defaults, a list of topics landing raw bytes).
    own = feed.table_options if isinstance(feed, OptionedFeed) else None
    options = own or StreamTableOptions.model_validate(
        {k: v for k, v in source_asset.table.options.items() if k in StreamTableOptions.model_fields}
    )
    deserialize = source.deserializer(source_asset.table) if isinstance(source, Deserializing) else None
    schema, name = asset.name.split(".", 1)
    version = hashlib.sha256(definition(asset).encode()).hexdigest()[:12]
    target = Relation(f"{PHYSICAL_PREFIX}{schema}", f"{name}__live_{version}")
    settings = session.project.settings
    if settings.engine.threads is None:
        # Streams scale by processes sharing the partitions; within one, a batch's statements
        # are too small for a second thread to pay for its hand-offs (~7% more CPU, measured).
        one_thread = settings.engine.model_copy(update={"threads": 1})
        settings = settings.model_copy(update={"engine": one_thread})
    with session.engine(read_only=False, settings=settings) as engine:
        assert engine is not None
        physical = _joined(graph, engine, asset, ask.env)
        loop = StreamLoop(
            engine,
            asset,
            feed,
            options,
            target,
            physical,
            ask.settings or StreamSettings(),
            deserialize,
            ask.on_commit,
            _sink(session, asset),
        )
        loop.prepare(ask.env)
        try:
            return loop.run(ask.stop or threading.Event())
        finally:
            session.close()


def _joined(graph: AssetGraph, engine: Engine, asset: Asset, env: str) -> dict[str, exp.Table]:
    """The tables the stream joins: a landed table where it lands, a model as the environment's
    view, not the table it shows now (a rebuilt model is a new table, which the stream then joins
    from its next batch on)."""
    pointers = LakeState.read(engine).env(env)
    physical: dict[str, exp.Table] = {}
    for upstream in asset.upstream:
        if upstream == asset.stream_input:
            continue
        if upstream not in pointers:
            raise SelectionError(
                f"{asset.name} joins {upstream}, which has never been built in {env}",
                hint=f"build it first: gristmill run -s {upstream}",
            )
        if graph.assets[upstream].kind == "source":
            physical[upstream] = engine.table(Relation.of(pointers[upstream]))
        else:
            schema_of, name_of = upstream.split(".", 1)
            physical[upstream] = engine.table(Relation(view_schema(schema_of, env), name_of))
    return physical


def _sink(session: Session, asset: Asset) -> Sink | None:
    """The Kafka producer a stream model's ``publish: <source>.<topic>`` names."""
    if asset.model is None or asset.model.publish is None:
        return None
    name, topic = asset.model.publish.split(".", 1)
    sources = session.project.sources
    spec = sources.get(name)
    if spec is None or spec.kind != "kafka":
        raise ConfigError(
            f'publish: "{name}" is not a kafka source',
            location=asset.model.file,
            hint=did_you_mean(name, [n for n, s in sources.items() if s.kind == "kafka"])
            or "publish: <kafka source>.<topic>, e.g. shop.alerts for sources/shop.yml",
        )
    source = session.source(name)
    if not isinstance(source, Publishing):
        raise ConfigError(f'publish: source "{name}" cannot be published to', location=asset.model.file)
    sink: Sink = source.sink(topic)
    return sink
