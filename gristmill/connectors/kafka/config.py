"""Options of a ``kind: kafka`` source and of each of its tables, and the librdkafka settings
they become.

Everything under ``options:`` goes to librdkafka as written (SASL, SSL, timeouts ...), except the
few settings the connector must own for exactly-once delivery: those are refused by name rather
than silently overridden, so a config never means something other than what it says."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from gristmill._util.naming import snake_case
from gristmill.config.secrets import resolve
from gristmill.connectors.base import Options, parse_options
from gristmill.connectors.streams.config import StreamTableOptions
from gristmill.errors import ConfigError
from gristmill.project.specs import SourceSpec, SourceTable

Setting = str | int | float | bool

OWNED = {
    "bootstrap.servers": "write it as brokers:",
    "group.id": "write it as group:",
    "enable.auto.commit": "offsets are committed by gristmill after the lake commits",
    "enable.auto.offset.store": "offsets are committed by gristmill after the lake commits",
    "enable.partition.eof": "gristmill reads up to the high watermark without it",
}
"""librdkafka settings the connector sets itself, and why."""

PREFETCH_KBYTES = 64 * 1024
"""librdkafka's prefetch queue, in KiB (``queued.max.messages.kbytes``): a slow consumer stops
fetching once this much is waiting, so memory stays bounded whatever the topic's backlog."""


class KafkaSourceOptions(Options):
    brokers: str | list[str]
    """Bootstrap servers, ``host:port`` (comma-separated or a list)."""
    group: str | None = None
    """The consumer group of streaming runs; defaults to ``gristmill-<source name>``."""
    options: dict[str, Setting] = {}
    """librdkafka settings passed as they are (``security.protocol``, ``sasl.password`` ...);
    values may be secret references such as ``${env:KAFKA_PASSWORD}``."""
    schema_registry: dict[str, Setting] | None = None
    """Confluent Schema Registry client settings (``url``, ``basic.auth.user.info`` ...), needed
    by ``format: avro`` and ``format: protobuf`` tables. ``url: mock://name`` is an in-process
    registry, for tests."""
    timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for the brokers (metadata, watermarks, a stalled read) before failing;
    also how long a streaming feed tolerates every broker being down."""

    @field_validator("brokers")
    @classmethod
    def _joined(cls, value: str | list[str]) -> str:
        joined = value if isinstance(value, str) else ",".join(str(v).strip() for v in value)
        if not joined.strip():
            raise ValueError("needs at least one host:port")
        return joined

    @field_validator("options")
    @classmethod
    def _not_owned(cls, value: dict[str, Setting]) -> dict[str, Setting]:
        for key in value:
            if key in OWNED:
                raise ValueError(f'"{key}" is set by gristmill: {OWNED[key]}')
        return value

    @field_validator("schema_registry")
    @classmethod
    def _has_url(cls, value: dict[str, Setting] | None) -> dict[str, Setting] | None:
        if value is not None and "url" not in value:
            raise ValueError('needs a "url"')
        return value

    @property
    def bootstrap(self) -> str:
        """The brokers as one string (validated to one, whatever was written)."""
        return str(self.brokers)


class KafkaTableOptions(StreamTableOptions):
    topic: str | None = None
    """The topic to read; defaults to the key under ``tables``."""


def source_options(spec: SourceSpec) -> KafkaSourceOptions:
    return parse_options(KafkaSourceOptions, spec.options, spec.where())


def table_options(spec: SourceSpec, table: SourceTable, source: KafkaSourceOptions) -> KafkaTableOptions:
    """A table's options. ``tables: [events]`` (a list of topics, arriving as ``{table: events}``)
    lands each message's bytes (``format: raw``): there is nowhere to declare columns."""
    options = table.options
    if set(options) == {"table"} and snake_case(str(options["table"])) == table.key:
        return KafkaTableOptions(topic=str(options["table"]), format="raw")  # no columns to decode to
    parsed = parse_options(KafkaTableOptions, options, table.location)
    if parsed.format == "json" and not parsed.columns:
        raise ConfigError(
            "format: json needs columns: (the fields to land and their types)",
            location=table.location,
            hint="declare e.g. columns: {user_id: bigint, amount: double}, or format: raw to land the bytes",
        )
    if parsed.format in ("avro", "protobuf") and source.schema_registry is None:
        line = getattr(options, "key_lines", {}).get("format")
        raise ConfigError(
            f"format: {parsed.format} needs the source's schema_registry",
            location=f"{spec.file}:{line}" if line else table.location,
            hint="add schema_registry: {url: https://...} at the top of " + spec.file,
        )
    return parsed


def topic_of(table: SourceTable, options: KafkaTableOptions) -> str:
    return options.topic or table.key


def group_of(spec: SourceSpec, options: KafkaSourceOptions) -> str:
    return options.group or f"gristmill-{spec.name}"


def resolved_settings(values: dict[str, Setting], root: Path, where: str) -> dict[str, Setting]:
    """Secret references replaced by their values (which ``redact`` then hides everywhere)."""
    return {k: resolve(v, base=root, where=where) if isinstance(v, str) else v for k, v in values.items()}


def consumer_config(
    spec: SourceSpec,
    options: KafkaSourceOptions,
    root: Path,
    *,
    group: str,
    error_cb: Callable[[Any], None],
    logger: Any,
) -> dict[str, Any]:
    """librdkafka settings of a consumer that never commits on its own and starts at the
    earliest message where nothing was committed; the user's ``options`` come last."""
    config: dict[str, Any] = {
        "bootstrap.servers": resolve(options.bootstrap, base=root, where=spec.where("brokers")),
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        "auto.offset.reset": "earliest",
        "queued.max.messages.kbytes": PREFETCH_KBYTES,
        "client.id": f"gristmill-{spec.name}",
        "error_cb": error_cb,
        "logger": logger,
    }
    if options.options.get("group.protocol", "classic") == "classic":  # KIP-848 assigns on the broker
        config["partition.assignment.strategy"] = "cooperative-sticky"
    config.update(resolved_settings(options.options, root, spec.where("options")))
    return config


def incremental(options: KafkaSourceOptions) -> bool:
    """Whether rebalances hand partitions over in increments, moving only those that change
    owner (cooperative-sticky, the default, or the KIP-848 ``group.protocol: consumer``), rather
    than revoking and reassigning everything (the eager range and roundrobin assignors)."""
    settings = options.options
    strategy = str(settings.get("partition.assignment.strategy", "cooperative-sticky"))
    return settings.get("group.protocol") == "consumer" or "cooperative" in strategy


def registry_config(spec: SourceSpec, options: KafkaSourceOptions, root: Path) -> dict[str, Setting]:
    assert options.schema_registry is not None
    return resolved_settings(options.schema_registry, root, spec.where("schema_registry"))
