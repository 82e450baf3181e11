"""PostgreSQL change data capture: a snapshot first, then the slot's changes, peeked until acknowledged.

One source is one publication and one logical replication slot shared by its tables. Each read
peeks the slot (nothing is consumed) and keeps one table's changes; the slot advances only past
what every table of the source has committed, so sharing it cannot lose a table's changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa

from gristmill.config.secrets import resolve
from gristmill.connectors.base import parse_options
from gristmill.connectors.postgres_cdc.config import CDCSourceOptions, CDCTableOptions
from gristmill.connectors.postgres_cdc.decode import Changes, snapshot
from gristmill.connectors.postgres_cdc.pgtypes import LSN, schema
from gristmill.connectors.postgres_cdc.server import Server, TableInfo, format_lsn, require_identity
from gristmill.errors import ConfigError, SourceError
from gristmill.project.specs import SourceSpec, SourceTable


class Source:
    def __init__(self, spec: SourceSpec, root: Path) -> None:
        self.spec = spec
        self.root = root
        self.options = parse_options(CDCSourceOptions, spec.options, spec.where())
        self.tables = {
            key: parse_options(CDCTableOptions, table.options, table.location)
            for key, table in spec.tables.items()
        }
        for table in spec.tables.values():
            incremental = table.load.incremental
            if incremental is None or incremental.cursor != LSN:
                raise ConfigError(
                    f"{table.key}: a postgres_cdc table is incremental on {LSN}, the commit LSN of each"
                    " change",
                    location=table.location,
                    hint=f"add  incremental: {{cursor: {LSN}}}  (with key: [...] and write: merge)",
                )
        self._server: Server | None = None
        # The slot's exported snapshot, while tables of this source still have to be read from it:
        # (LSN its rows carry, the connection holding it open, keys of the tables not yet read).
        self._exported: tuple[int, psycopg.Connection[Any], set[str]] | None = None
        self._born: int | None = None  # the consistent point of a slot this process created
        # Per table key: every change with a commit LSN at or below this is committed by the loader.
        self._safe: dict[str, int] = {}
        # Per table key, after a read that returned changes: (highest LSN returned, LSN scanned up to).
        self._returned: dict[str, tuple[int, int]] = {}

    @property
    def server(self) -> Server:
        if self._server is None:
            url = resolve(self.options.connection, base=self.root, where=self.spec.where("connection"))
            self._server = Server(url, self.spec.file)
        return self._server

    def _info(self, table: SourceTable) -> TableInfo:
        return self.server.table(self.tables[table.key].table or table.key, table.location)

    def schema(self, table: SourceTable) -> pa.Schema:
        return schema(self._info(table).columns)

    def change_marker(self, table: SourceTable) -> str | None:
        return None

    def read(self, table: SourceTable, since: Any = None) -> pa.RecordBatchReader:
        """A snapshot as 'insert' rows when ``since`` is None, else the changes committed at or after it."""
        self.server.check_logical()
        info = self._info(table)
        what = f"{self.spec.file} ({table.key}): {info.qualified}"
        self._check_key(table, info, what)
        if since is None:
            return self._snapshot(table, info, what)
        return self._changes(table, info, int(since), what)

    def acknowledge(self, table: SourceTable, lsn: int) -> None:
        """The loader committed this table's changes up to ``lsn``: let the slot move past them once
        every table of the source is at least that far."""
        lsn = int(lsn)
        returned = self._returned.get(table.key)
        if returned is not None and lsn >= returned[0]:
            # everything the last read handed out is committed, so the table is safe up to where it looked
            self._note(table.key, returned[1])
            del self._returned[table.key]
        else:
            self._note(table.key, lsn)
        self._advance()

    def close(self) -> None:
        if self._exported is not None:
            Server.end(self._exported[1])
            self._exported = None
        if self._server is not None:
            self._server.close()

    # --- snapshot ---------------------------------------------------------------------------------

    def _snapshot(self, table: SourceTable, info: TableInfo, what: str) -> pa.RecordBatchReader:
        server, name = self.server, self.options.slot
        # The publication must exist before the slot: pgoutput looks it up as of each decoded commit.
        server.ensure_publication(
            self.options.publication, [self._info(t) for t in self.spec.tables.values()]
        )
        slot = server.slot(name)
        if slot is None:
            created = server.create_slot(name)
            if created is not None:
                consistent, con = created
                self._born = consistent
                # Rows of the exported snapshot are exactly the commits below the consistent point.
                self._exported = (consistent - 1, con, set(self.spec.tables))
        release: Callable[[], None]
        if self._exported is not None and table.key in self._exported[2]:
            lsn, con, waiting = self._exported
            waiting.discard(table.key)
            release = self._release_exported if not waiting else _nothing
        else:
            # A table added later: snapshot now, replay the slot from its confirmed position. Changes
            # between that position and now are applied twice, which a merge on the key absorbs.
            slot = server.slot(name)
            assert slot is not None
            lsn, con = slot.confirmed - 1, server.connect()
            release = con.close

        def done(rows: int) -> None:
            if rows:
                self._returned[table.key] = (lsn, lsn)
            else:
                self._note(table.key, lsn)

        batches = snapshot(server.copy_csv(con, info), info, lsn, what)
        return pa.RecordBatchReader.from_batches(schema(info.columns), _tracked(batches, done, what, release))

    def _release_exported(self) -> None:
        if self._exported is not None:
            Server.end(self._exported[1])
            self._exported = None

    # --- changes ----------------------------------------------------------------------------------

    def _changes(self, table: SourceTable, info: TableInfo, since: int, what: str) -> pa.RecordBatchReader:
        server, name = self.server, self.options.slot
        slot = server.slot(name)
        lost = f"changes committed after LSN {format_lsn(max(since - 1, 0))} are lost"
        restart = "run a full refresh of the tables of this source: a new slot starts with a new snapshot"
        if slot is None:
            raise SourceError(f'{what}: replication slot "{name}" does not exist, so {lost}', hint=restart)
        if slot.wal_status == "lost":
            raise SourceError(
                f'{what}: replication slot "{name}" lost WAL it needed, so {lost}', hint=restart
            )
        if self._born is not None and since < self._born - 1:
            # the table was loaded from an earlier slot; what happened before this one began is gone
            raise SourceError(
                f'{what}: replication slot "{name}" was created anew at LSN {format_lsn(self._born)}, after'
                f" this table's last loaded change, so the {lost}",
                hint="run a full refresh of this table: it is snapshotted again",
            )
        if not server.published(self.options.publication, info):
            raise SourceError(
                f'{what}: the table is not in publication "{self.options.publication}", so its changes'
                " are not decoded",
                hint="run a full refresh of the table: its first read adds it and takes a snapshot",
            )
        self._note(table.key, since - 1)  # the loader asks from ``since``, so it holds everything before
        upto = server.flush_lsn()
        changes = Changes(info, table.load.key, since, self.options.batch_rows, what)

        def done(rows: int) -> None:
            # the peek saw every commit below ``upto``
            if changes.last is None:
                self._note(table.key, upto - 1)
                self._advance()
            else:
                self._returned[table.key] = (changes.last, upto - 1)

        messages = server.peek(name, self.options.publication, upto, self.options.batch_rows)
        return pa.RecordBatchReader.from_batches(
            changes.schema, _tracked(changes.batches(messages), done, what)
        )

    def _check_key(self, table: SourceTable, info: TableInfo, what: str) -> None:
        """A delete carries only the replica identity, so the loader's key must be inside it."""
        require_identity(info, what)
        if info.identity == "f":
            return
        identity = {c.landed for c in info.columns if c.name in info.identity_columns}
        outside = [k for k in table.load.key if k not in identity]
        if outside:
            noun, verb = ("columns", "are") if len(outside) > 1 else ("column", "is")
            raise SourceError(
                f"{what}: key {noun} {', '.join(outside)} {verb} not in the replica identity"
                f" ({', '.join(info.identity_columns)}), so a delete would not say which row went",
                hint=f"use the primary key as key, or ALTER TABLE {info.qualified} REPLICA IDENTITY FULL",
            )

    # --- the slot's position ----------------------------------------------------------------------

    def _note(self, key: str, lsn: int) -> None:
        self._safe[key] = max(self._safe.get(key, lsn), lsn)

    def _advance(self) -> None:
        """Confirm the slot up to what every table has committed; a table not yet read or
        acknowledged by this process holds it where it is."""
        if set(self._safe) >= set(self.spec.tables):
            self.server.advance(self.options.slot, min(self._safe[k] for k in self.spec.tables) + 1)


def _nothing() -> None:
    return None


def _tracked(
    batches: Iterator[pa.RecordBatch],
    done: Callable[[int], None],
    what: str,
    release: Callable[[], None] = _nothing,
) -> Iterator[pa.RecordBatch]:
    """Pass batches through; call ``done`` with the row count only once the stream is exhausted."""
    rows = 0
    try:
        for batch in batches:
            rows += batch.num_rows
            yield batch
    except pa.ArrowException as err:
        raise SourceError(f"{what}: {err}") from None
    finally:
        release()
    done(rows)
