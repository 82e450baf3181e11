"""Kafka as a sink: a stream model's emitted rows, as JSON, to a topic through an idempotent
producer (``enable.idempotence``: the broker drops the duplicates a retry would make).

The loop writes the rows to an outbox table in the batch's lake transaction and publishes the
outbox after the commit, deleting what the broker acknowledged; a crash in between publishes
those rows again on restart. Delivery to Kafka is therefore at least once, never lossy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from gristmill.config.secrets import redact, resolve
from gristmill.connectors.kafka.config import OWNED, KafkaSourceOptions, resolved_settings
from gristmill.errors import ConfigError, TransientSourceError
from gristmill.project.specs import SourceSpec

_CONSUMER_ONLY = ("group.", "session.timeout", "heartbeat.", "partition.assignment", "auto.offset", "fetch.")


class KafkaSink:
    """Publishes to ``topic`` on the source's brokers, with its security options."""

    def __init__(self, spec: SourceSpec, options: KafkaSourceOptions, root: Path, topic: str) -> None:
        self.topic = topic
        self.where = f"{spec.where('brokers')} (topic {topic})"
        settings = {
            k: v
            for k, v in resolved_settings(options.options, root, spec.where("options")).items()
            if not k.startswith(_CONSUMER_ONLY) and k not in OWNED
        }
        config: dict[str, Any] = {
            "bootstrap.servers": resolve(options.bootstrap, base=root, where=spec.where("brokers")),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "client.id": f"gristmill-{spec.name}-sink",
            **settings,
        }
        try:
            self._producer = Producer(config)
        except KafkaException as err:
            raise ConfigError(
                f"options: {redact(err.args[0].str())}", location=spec.where("options")
            ) from None
        self._timeout = options.timeout

    def publish(self, values: Sequence[bytes], keys: Sequence[bytes | None]) -> None:
        """Send every message and wait until the broker acknowledged all of them."""
        failures: list[KafkaError] = []

        def delivered(error: KafkaError | None, message: object) -> None:
            if error is not None:
                failures.append(error)

        for value, key in zip(values, keys, strict=True):
            while True:
                try:
                    self._producer.produce(self.topic, value, key=key, on_delivery=delivered)
                    break
                except BufferError:  # the local queue is full: let it drain (backpressure)
                    self._producer.poll(0.1)
        left = self._producer.flush(self._timeout)
        if failures or left:
            reason = (
                failures[0].str() if failures else f"{left} messages not acknowledged in {self._timeout:g}s"
            )
            raise TransientSourceError(
                f"{self.where}: publishing failed: {redact(reason)}",
                hint="the rows stay in the outbox and are published again by the next batch or restart",
            )

    def close(self) -> None:
        self._producer.flush(self._timeout)
