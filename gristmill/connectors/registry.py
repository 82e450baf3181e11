"""Source kinds: the module holding each kind's ``Source``, imported only when a project uses it."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path

from gristmill._util.suggest import did_you_mean
from gristmill.connectors.base import Source
from gristmill.errors import ConfigError
from gristmill.project.specs import SourceSpec

# kind -> module holding a ``Source`` class; imported only when a project uses that kind.
SOURCE_KINDS = {
    "files": "gristmill.connectors.files.source",
    "sqlite": "gristmill.connectors.sqlite.source",
    "postgres": "gristmill.connectors.postgres.source",
    "mysql": "gristmill.connectors.mysql.source",
    "postgres_cdc": "gristmill.connectors.postgres_cdc.source",
    "rest": "gristmill.connectors.rest.source",
    "mongodb": "gristmill.connectors.mongodb.source",
    "python": "gristmill.connectors.python.source",
    "nats": "gristmill.connectors.nats.source",
    "mqtt": "gristmill.connectors.mqtt.source",
    "kafka": "gristmill.connectors.kafka.source",
}

# kind -> the DuckDB extensions its native reads have the engine load (the ``setup`` of its
# ``NativeRead``), known without importing the kind's module. The other database kinds read
# through a DuckDB connection of their own, which loads its extensions as it connects.
ENGINE_EXTENSIONS: dict[str, tuple[str, ...]] = {"postgres": ("postgres",)}


def announce_native_reads(specs: Iterable[SourceSpec]) -> None:
    """Before a writing verb opens the engine: the extensions these sources' native reads will
    ask it for, so that it loads them as it connects (loaded later, DuckDB checks each file's
    signature by hashing all of it: ~0.2 CPU-s for the postgres scanner)."""
    wanted = {name for spec in specs for name in ENGINE_EXTENSIONS.get(spec.kind, ())}
    if wanted:
        from gristmill._util.duckdb_extensions import engine_extensions  # it imports duckdb

        engine_extensions.update(wanted)


def open_source(spec: SourceSpec, root: Path) -> Source:
    module_name = SOURCE_KINDS.get(spec.kind)
    if module_name is None:
        raise ConfigError(
            f'unknown source kind "{spec.kind}"',
            location=spec.where("kind"),
            hint=did_you_mean(spec.kind, SOURCE_KINDS) or "kinds: " + ", ".join(SOURCE_KINDS),
        )
    source: Source = importlib.import_module(module_name).Source(spec, root)
    return source
