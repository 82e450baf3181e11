"""``kind: mqtt``: topic filters landed continuously by ``gristmill stream`` through
``feed(table)``. A broker keeps no history, so there is nothing for a batch run to read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from gristmill.config.secrets import resolve
from gristmill.connectors.base import parse_options
from gristmill.connectors.mqtt.config import MqttSourceOptions, MqttTableOptions, TlsOptions
from gristmill.connectors.mqtt.feed import Broker, MqttFeed
from gristmill.errors import SourceError
from gristmill.project.specs import SourceSpec, SourceTable


class Source:
    def __init__(self, spec: SourceSpec, root: Path) -> None:
        self.spec = spec
        self.root = root
        self.options = parse_options(MqttSourceOptions, spec.options, spec.where())
        self.tables = {
            key: parse_options(MqttTableOptions, table.options, table.location)
            for key, table in spec.tables.items()
        }

    def __repr__(self) -> str:
        return f"mqtt.Source({self.spec.file})"

    # -- the streaming side --------------------------------------------------------------------

    def feed(self, table: SourceTable) -> MqttFeed:
        """The table's topic filter as a Feed; nothing connects until the loop opens it."""
        options = self.tables[table.key]
        client_id = options.client_id or f"gristmill-{self.spec.name}-{table.key}"
        return MqttFeed(self._broker(), options.topic, options.qos, client_id, self._what(table))

    # -- the Source protocol -------------------------------------------------------------------

    def schema(self, table: SourceTable) -> pa.Schema:
        """Declared, so known without asking the broker."""
        return self.tables[table.key].landed_schema()

    def read(self, table: SourceTable, since: Any = None) -> pa.RecordBatchReader:
        raise SourceError(
            f"{self._what(table)}: an MQTT topic has no history to read: a batch run cannot land it",
            hint="land MQTT tables with `gristmill stream`, which stays subscribed and lands "
            "messages as they arrive",
        )

    def change_marker(self, table: SourceTable) -> str | None:
        return None

    def close(self) -> None:
        pass  # feeds own their connections and close them

    # -- helpers -------------------------------------------------------------------------------

    def _broker(self) -> Broker:
        """The broker with secret references resolved (so registered for redaction), and
        certificate paths taken from the project folder."""
        o = self.options
        where = self.spec.where

        def value(text: str | None, key: str) -> str | None:
            return None if text is None else resolve(text, base=self.root, where=where(key))

        def path(text: str | None) -> str | None:
            return None if text is None else str(self.root / str(value(text, "tls")))

        tls = o.tls_options()
        if tls is not None:
            tls = TlsOptions(
                ca_file=path(tls.ca_file),
                cert_file=path(tls.cert_file),
                key_file=path(tls.key_file),
                insecure=tls.insecure,
            )
        return Broker(
            host=str(value(o.host, "host")),
            port=o.port or (8883 if tls is not None else 1883),
            username=value(o.username, "username"),
            password=value(o.password, "password"),
            tls=tls,
            protocol=o.protocol,
            keepalive=o.keepalive,
            connect_timeout=o.connect_timeout,
            session_expiry=o.session_expiry,
            queue_size=o.queue_size,
        )

    def _what(self, table: SourceTable) -> str:
        return f"{self.spec.file} ({table.key})"
