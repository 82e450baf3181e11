"""The reading facade of ``gristmill serve``: ``Workspace.reader(env)`` returns a ``TableReader``.

Its API is documented where the routers import it from, ``gristmill/server/reading.py``; in short::

    reader = workspace.reader("prod")
    with reader.pin(as_of=None) as pinned:         # newest state; "42" or an ISO time travels
        catalog = pinned.relations()               # {"schema.name": ServedRelation}
        key = pinned.version(["marts.orders"])     # data-version key (cache keys, ETags)
        batches = pinned.read(sqlglot_query)       # pa.RecordBatchReader

How it pins: on DuckLake storage (the default) each pin names a lake snapshot; the reader keeps
a few engines attached read-only *at* a snapshot (DuckLake's ``SNAPSHOT_VERSION``: every table
and view as it was), shared by the requests that pinned it, each on a cursor of its own. A run
that publishes makes a new snapshot, which the next ``pin()`` sees (read from the catalog without
attaching it), so the server never restarts to see new data and never sees half a run. Other
storage (a DuckDB file, PostgreSQL, Spark) is read live, one engine per pin, without time travel.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

from sqlglot import exp

from gristmill.engines import Relation, lake_snapshot, no_data_yet, open_engine
from gristmill.engines.base import Engine, LocalCopies, StreamedReads
from gristmill.engines.registry import open_at_snapshot
from gristmill.errors import GristmillError
from gristmill.plan.planner import view_schema
from gristmill.runtime.planning import check_env
from gristmill.server.reading import PinnedRead, ReadError, ServedColumn, ServedRelation
from gristmill.sql import types
from gristmill.state import read_versions
from gristmill.state.lake.environments import read_pointers

if TYPE_CHECKING:
    import pyarrow as pa

    from gristmill.plan import AssetGraph
    from gristmill.project import Project

KEPT_SNAPSHOTS = 4
"""Engines kept attached at a snapshot: the newest, and a few that paginating clients still read."""


LIVE = "live"
"""The snapshot of a read on storage without snapshots: what is there when it reads."""

_DIALECTS = {"duckdb": "duckdb", "postgres": "postgres", "spark": "spark"}


class _Snapshot:
    """One engine attached at one snapshot, its catalog computed once, shared by its pins."""

    def __init__(self, engine: Engine, snapshot: str) -> None:
        self.engine = engine
        self.snapshot = snapshot
        self.users = 0
        self.retired = False
        self.catalog: dict[str, ServedRelation] | None = None
        self.physical: dict[str, Relation] = {}
        self.lock = threading.Lock()
        self._cursors = threading.Lock()
        self._copies: dict[str, exp.Table | None] = {}  # None: being copied, or over the budget
        self._copied_bytes = 0

    def served_table(self, engine: Engine, name: str, served: ServedRelation, budget: int) -> exp.Table:
        """Where a read finds ``name``: its in-memory copy when the engine keeps copies and the
        table fits what is left of ``budget`` bytes (copied by the first read that wants it; reads
        meanwhile go to the lake), else the lake's table."""
        relation = self.physical[name]
        if budget <= 0 or not isinstance(engine, LocalCopies) or served.rows is None:
            return engine.table(relation)
        with self.lock:
            if name in self._copies:
                copy = self._copies[name]
                return copy.copy() if copy is not None else engine.table(relation)
            size = max(served.rows, 1) * len(served.columns) * 8
            fits = self._copied_bytes + size <= budget
            self._copies[name] = None
            if fits:
                self._copied_bytes += size
        if not fits:
            return engine.table(relation)
        try:
            copy = engine.copy_locally(relation, "gm_copy__" + name.replace(".", "__"))
        except GristmillError:
            return engine.table(relation)  # stays None: the lake answers, as before
        with self.lock:
            self._copies[name] = copy
        return copy.copy()

    def cursor(self) -> Engine:
        """A cursor of its own for one pin. Not pooled: a kept cursor can hold the catalog's
        SQLite read lock and stall a run's commit (measured: runs failed with "database is
        locked"), and a new one costs ~0.2 ms against a page's ~30 ms of engine time."""
        with self._cursors:  # the shared connection makes one cursor at a time
            return self.engine.cursor()  # type: ignore[attr-defined]

    def close(self) -> None:
        self.engine.close()


class LakeReader:
    """``TableReader`` over a project's engine (see the module docstring)."""

    def __init__(self, project: Project, graph: AssetGraph, env: str) -> None:
        check_env(env)
        self._project = project
        self._graph = graph
        self._env = env
        settings = project.settings
        self._lake = settings.engine.kind == "duckdb" and settings.storage.format != "duckdb"
        self._kept: OrderedDict[int, _Snapshot] = OrderedDict()
        self._lock = threading.Lock()
        self._has_data = False
        self.copies_budget = settings.server.memory_copies_mb * 1024 * 1024

    @property
    def env(self) -> str:
        return self._env

    @property
    def dialect(self) -> str:
        return _DIALECTS.get(self._project.settings.engine.kind, "duckdb")

    @property
    def time_travel(self) -> bool:
        return self._lake

    def pin(self, as_of: str | None = None) -> PinnedRead:
        settings, root = self._project.settings, self._project.root
        if not self._has_data:  # once there, the lake stays: no need to look again
            if no_data_yet(settings, root):
                raise ReadError("this project has no data yet", hint="run `gristmill run` first")
            self._has_data = True
        if not self._lake:
            if as_of not in {None, LIVE}:  # a cursor of a live read says LIVE
                raise ReadError(
                    "as_of needs snapshots, which this project's storage does not keep",
                    hint='time travel works on DuckLake storage ([storage] format = "ducklake")',
                )
            engine = open_engine(settings, root, read_only=True)
            return _Pinned(self, _Snapshot(engine, LIVE), owned=True)
        snapshot_id = self._resolve(as_of)
        return _Pinned(self, self._acquire(snapshot_id), owned=False)

    def close(self) -> None:
        with self._lock:
            for kept in self._kept.values():
                kept.retired = True
                if kept.users == 0:
                    kept.close()
            self._kept.clear()

    # -- snapshots ---------------------------------------------------------------------------------

    def _newest(self) -> int:
        # Asked of the catalog on every pin, not cached by the catalog file's stat: the SQLite
        # connection this opens and closes also ends any lock DuckDB's own SQLite left on the
        # catalog file in this process (POSIX locks are per process), and without it a run's
        # commit failed with "database is locked" (tests/e2e/test_serve_tables.py, measured).
        token = lake_snapshot(self._project.settings, self._project.root)
        if token is None or "#" not in token:
            raise ReadError("the lake's catalog cannot be read", hint="check [storage] in gristmill.toml")
        return int(token.rsplit("#", 1)[1])

    def _resolve(self, as_of: str | None) -> int:
        newest = self._newest()
        if as_of is None:
            return newest
        if as_of.isdigit():
            wanted = int(as_of)
            if wanted > newest:
                raise ReadError(f"as_of: no snapshot {wanted} (the newest is {newest})")
            return wanted
        try:
            moment = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
        except ValueError:
            raise ReadError(
                f"as_of: {as_of!r} is neither a snapshot id nor an ISO 8601 time",
                hint="e.g. as_of=42 or as_of=2026-12-07T21:00:00Z",
            ) from None
        found = self._snapshot_at(newest, moment)
        if found is None:
            raise ReadError(f"as_of: the lake has no snapshot at or before {as_of}")
        return found

    def _snapshot_at(self, newest: int, moment: datetime) -> int | None:
        query: exp.Query = exp.replace_placeholders(  # type: ignore[assignment]  # a SELECT stays one
            exp.maybe_parse(
                "SELECT max(snapshot_id) AS id FROM ducklake_snapshots('lake') "
                "WHERE snapshot_time <= CAST(:moment AS TIMESTAMPTZ)",
                dialect="duckdb",
            ),
            moment=moment.isoformat(),
        )
        with _Pinned(self, self._acquire(newest), owned=False) as pinned:
            row = pinned.engine.row(query)
        return None if row is None or row["id"] is None else int(row["id"])

    def _acquire(self, snapshot_id: int) -> _Snapshot:
        with self._lock:
            kept = self._kept.get(snapshot_id)
            if kept is not None:
                self._kept.move_to_end(snapshot_id)
                kept.users += 1
                return kept
        try:
            engine = open_at_snapshot(self._project.settings, self._project.root, snapshot_id)
        except GristmillError as err:
            raise ReadError(f"as_of: snapshot {snapshot_id} cannot be read: {err.message}") from None
        assert engine is not None  # a lake (checked in pin)
        with self._lock:
            kept = self._kept.setdefault(snapshot_id, _Snapshot(engine, str(snapshot_id)))
            if kept.engine is not engine:
                engine.close()  # another request attached it meanwhile
            kept.users += 1
            while len(self._kept) > KEPT_SNAPSHOTS:
                _, old = self._kept.popitem(last=False)
                old.retired = True
                if old.users == 0:
                    old.close()
            return kept

    def _release(self, kept: _Snapshot, owned: bool) -> None:
        if owned:
            kept.close()
            return
        with self._lock:
            kept.users -= 1
            if kept.retired and kept.users == 0:
                kept.close()

    # -- the catalog -------------------------------------------------------------------------------

    def catalog(self, kept: _Snapshot, engine: Engine) -> dict[str, ServedRelation]:
        if kept.catalog is not None:
            return kept.catalog
        with kept.lock:
            if kept.catalog is None:
                catalog, physical = _catalog(engine, self._graph, self._env, kept.snapshot)
                kept.physical = physical  # first: a pin that sees the catalog (unlocked) needs it
                kept.catalog = catalog
            return kept.catalog


class _Pinned:
    """One pin: a cursor on a snapshot's engine (DuckDB connections are per thread), opened when
    the pin first reads: an answer from the page cache never needs one."""

    def __init__(self, reader: LakeReader, kept: _Snapshot, *, owned: bool) -> None:
        self._reader = reader
        self._kept = kept
        self._owned = owned
        self._cursor: Engine | None = None
        self._closed = False

    @property
    def engine(self) -> Engine:
        if self._cursor is None:
            base = self._kept.engine
            shared = not self._owned and isinstance(base, StreamedReads)
            self._cursor = self._kept.cursor() if shared else base
        return self._cursor

    @property
    def snapshot(self) -> str:
        return self._kept.snapshot

    def relations(self) -> dict[str, ServedRelation]:
        known = self._kept.catalog
        return known if known is not None else self._reader.catalog(self._kept, self.engine)

    def version(self, relations: Iterable[str] | exp.Query) -> str:
        catalog = self.relations()
        if isinstance(relations, exp.Query):
            ctes = {cte.alias_or_name for cte in relations.find_all(exp.CTE)}
            relations = {
                f"{t.db}.{t.name}" for t in relations.find_all(exp.Table) if t.db or t.name not in ctes
            }
        parts = sorted(f"{name}={catalog[name].version if name in catalog else '-'}" for name in relations)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]

    def read(self, query: exp.Query) -> pa.RecordBatchReader:
        catalog = self.relations()
        pointed = query.copy()
        ctes = {cte.alias_or_name for cte in pointed.find_all(exp.CTE)}
        for table in list(pointed.find_all(exp.Table)):
            if not table.db and not table.catalog and table.name in ctes:
                continue
            name = f"{table.db}.{table.name}"
            if table.catalog or name not in catalog:
                raise ReadError(
                    f"{name} is not a table this server serves", hint="GET /api/v1/tables lists them"
                )
            budget = self._reader.copies_budget
            named = self._kept.served_table(self.engine, name, catalog[name], budget)
            if table.args.get("alias") is not None:
                named.set("alias", table.args["alias"])
            table.replace(named)
        if isinstance(self.engine, StreamedReads):
            return self.engine.stream(pointed)
        return self.engine.query(pointed).to_reader()

    # -- for read-only SQL (workspace/sql_reading.py): its statement timeout ----------------------

    def interrupt(self) -> None:
        """Stop the statement this pin is running, from another thread (its engine is this pin's
        own cursor, so other pins on the snapshot go on)."""
        from gristmill.engines.base import Interruptible

        if isinstance(self.engine, Interruptible):
            self.engine.interrupt()

    # ----------------------------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._cursor is not None and self._cursor is not self._kept.engine:
            self._cursor.close()
        self._reader._release(self._kept, self._owned)

    def __enter__(self) -> _Pinned:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def _catalog(
    engine: Engine, graph: AssetGraph, env: str, snapshot: str
) -> tuple[dict[str, ServedRelation], dict[str, Relation]]:
    """Every asset the environment serves that exists in the engine, with its columns' types, its
    documentation and the version of the table it serves (changes only when a run publishes it)."""
    columns = engine.columns()
    pointers = read_pointers(engine, env)
    versions = read_versions(engine)
    catalog: dict[str, ServedRelation] = {}
    physical: dict[str, Relation] = {}
    for name, asset in graph.assets.items():
        schema, table = name.split(".", 1)
        served = Relation(view_schema(schema, env) if asset.model is not None else schema, table)
        found = columns.get(served)
        if found is None:
            continue
        model = asset.model
        target = pointers.get(name, name)
        recorded = versions.get(target)
        version = f"{target}@{recorded.run_id}:{recorded.built_at}" if recorded else f"snapshot:{snapshot}"
        described = model.columns if model is not None else {}
        catalog[name] = ServedRelation(
            schema=schema,
            name=table,
            kind=asset.kind,
            columns=tuple(
                ServedColumn(column, types.render(dtype, "duckdb"), described.get(column))
                for column, dtype in found
            ),
            description=model.description if model is not None else None,
            owner=(asset.contract.owner if asset.contract and asset.contract.owner else None)
            or (model.owner if model is not None else None),
            tags=asset.tags,
            rows=recorded.rows if recorded else None,
            built_at=recorded.built_at if recorded else None,
            key=model.key if model is not None else (),
            version=hashlib.sha256(version.encode()).hexdigest()[:16],
        )
        physical[name] = served
    return catalog, physical
