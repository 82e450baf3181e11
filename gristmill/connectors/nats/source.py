"""``kind: nats``: JetStream streams, landed continuously by ``gristmill stream`` through
``feed(table)``, or read once from the start by a batch run through ``read(table)``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from gristmill.config.secrets import resolve
from gristmill.connectors.base import parse_options
from gristmill.connectors.nats.config import NatsSourceOptions, NatsTableOptions
from gristmill.connectors.nats.feed import Connection, NatsFeed
from gristmill.connectors.streams.decode import decode
from gristmill.errors import SourceError
from gristmill.project.specs import SourceSpec, SourceTable

READ_BATCH = 10_000
"""Messages per pull and per record batch of a batch read."""
READ_WAIT = 2.0
"""Seconds a batch read waits for the next message it knows exists."""


class Source:
    def __init__(self, spec: SourceSpec, root: Path) -> None:
        self.spec = spec
        self.root = root
        self.options = parse_options(NatsSourceOptions, spec.options, spec.where())
        self.tables = {
            key: parse_options(NatsTableOptions, table.options, table.location)
            for key, table in spec.tables.items()
        }

    def __repr__(self) -> str:
        return f"nats.Source({self.spec.file})"

    # -- the streaming side --------------------------------------------------------------------

    def feed(self, table: SourceTable) -> NatsFeed:
        """The table's stream as a Feed; nothing connects until the loop opens it."""
        options = self.tables[table.key]
        return NatsFeed(self._connection(), options.stream, options.subject, self._what(table))

    # -- the Source protocol -------------------------------------------------------------------

    def schema(self, table: SourceTable) -> pa.Schema:
        """Declared, so known without asking the server."""
        return self.tables[table.key].landed_schema()

    def read(self, table: SourceTable, since: Any = None) -> pa.RecordBatchReader:
        """The stream from its first message up to the last one present when the read starts.

        ``since`` is not used: a stream has no cursor to filter on (the loader filters)."""
        options = self.tables[table.key]
        feed = self.feed(table)
        feed.open(lambda positions: {})

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                while not feed.drained(feed.end):
                    delivery = feed.poll_until(READ_BATCH, READ_WAIT, feed.end)
                    if not len(delivery):
                        if feed.drained(feed.end):
                            break
                        raise SourceError(
                            f"{feed.what}: stream {feed.stream} stopped delivering before sequence "
                            f"{feed.end}",
                            hint="the server may be restarting; run again",
                        )
                    rows, rejected = decode(delivery, options)
                    if rejected.num_rows:
                        raise SourceError(
                            f"{feed.what}: stream {feed.stream}, sequence {rejected['offset'][0]} "
                            f"(subject {rejected['key'][0].as_py().decode()}): {rejected['reason'][0]}",
                            hint="fix or remove the message, or land the table with "
                            "`gristmill stream`, which sets bad messages aside as rejected",
                        )
                    yield from rows.to_batches()
            finally:
                feed.close()

        return pa.RecordBatchReader.from_batches(options.landed_schema(), batches())

    def change_marker(self, table: SourceTable) -> str | None:
        return None  # a batch read always reads the whole stream

    def close(self) -> None:
        pass  # feeds own their connections and close them

    # -- helpers -------------------------------------------------------------------------------

    def _connection(self) -> Connection:
        """The servers and credentials with secret references resolved (so registered for
        redaction), as late as possible."""
        o = self.options
        where = self.spec.where

        def value(text: str | None, key: str) -> str | None:
            return None if text is None else resolve(text, base=self.root, where=where(key))

        creds = value(o.creds, "creds")
        return Connection(
            servers=[resolve(url, base=self.root, where=where("servers")) for url in o.server_list()],
            user=value(o.user, "user"),
            password=value(o.password, "password"),
            token=value(o.token, "token"),
            creds=None if creds is None else str(self.root / creds),
            connect_timeout=o.connect_timeout,
        )

    def _what(self, table: SourceTable) -> str:
        return f"{self.spec.file} ({table.key})"
