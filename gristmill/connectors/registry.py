"""Source kinds: the module holding each kind's ``Source``, imported only when a project uses it."""

from __future__ import annotations

import importlib
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
