"""The PostgreSQL side of change data capture: connections, catalog, publication and replication slot.

Every statement is composed with ``psycopg.sql`` or takes bound parameters; every message that
leaves this module is scrubbed of the connection's password."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from gristmill._util.naming import snake_case
from gristmill._util.suggest import did_you_mean
from gristmill.config.secrets import redact
from gristmill.connectors.postgres_cdc.pgtypes import CHANGE_FIELDS, Column
from gristmill.errors import ConfigError, SourceError, TransientSourceError

# Text output the value conversion relies on (see pgtypes); pgoutput formats with these too.
_SESSION = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET bytea_output = 'hex'"
_PRIVILEGES = (
    "the role needs the REPLICATION attribute, SELECT on the tables, and (to create the publication) "
    "CREATE on the database and ownership of the tables — or create the publication as an owner"
)


def parse_lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


@dataclass(frozen=True)
class TableInfo:
    oid: int
    schema: str
    name: str
    columns: tuple[Column, ...]
    identity: str
    """``relreplident``: d (default: the primary key), i (an index), f (full row), n (nothing)."""
    identity_columns: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


@dataclass(frozen=True)
class SlotInfo:
    confirmed: int
    """``confirmed_flush_lsn``: decoding skips transactions whose commit LSN is below it."""
    plugin: str
    database: str
    wal_status: str | None


class Server:
    """One PostgreSQL database, reached through ``url``; ``where`` prefixes every message."""

    def __init__(self, url: str, where: str) -> None:
        self.where = where
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            raise ConfigError(
                "connection is not a valid PostgreSQL URL or conninfo", location=where
            ) from None
        self.url = url
        password = params.get("password")
        self._password = str(password) if password else None
        self._extra: dict[str, Any] = {} if "connect_timeout" in params else {"connect_timeout": 10}
        self.label = (
            f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"
        )
        self._con: psycopg.Connection[Any] | None = None

    def scrub(self, text: str) -> str:
        text = redact(text)
        return text.replace(self._password, "***") if self._password else text

    @contextmanager
    def translated(self, doing: str) -> Iterator[None]:
        """Driver errors as SourceError, naming what we were doing; busy and unreachable are transient."""
        try:
            yield
        except psycopg.errors.InsufficientPrivilege as err:
            raise SourceError(self._message(doing, err), hint=_PRIVILEGES) from None
        except psycopg.Error as err:
            if _transient(err):
                raise TransientSourceError(self._message(doing, err)) from None
            raise SourceError(self._message(doing, err)) from None

    def _message(self, doing: str, err: psycopg.Error) -> str:
        return self.scrub(f"{self.where}: {doing} on {self.label}: {str(err).strip()}")

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        with self.translated("connecting"):
            con = psycopg.connect(self.url, autocommit=True, **self._extra, **kwargs)
            if kwargs.get("replication") is None:
                con.execute(_SESSION)
            return con

    @property
    def con(self) -> psycopg.Connection[Any]:
        if self._con is None or self._con.closed:
            self._con = self.connect()
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def query(self, doing: str, statement: sql.Composed | str, params: Sequence[Any] = ()) -> list[Any]:
        with self.translated(doing):
            return self.con.execute(statement, params or None).fetchall()

    def execute(self, doing: str, statement: sql.Composed) -> None:
        with self.translated(doing):
            self.con.execute(statement)

    # --- requirements -----------------------------------------------------------------------------

    def check_logical(self) -> None:
        """Logical decoding needs wal_level = logical and a role allowed to use replication slots."""
        level, allowed, user = self.query(
            "checking replication settings",
            "SELECT current_setting('wal_level'), r.rolsuper OR r.rolreplication, current_user"
            " FROM pg_roles r WHERE r.rolname = current_user",
        )[0]
        if level != "logical":
            raise SourceError(
                f"{self.where}: {self.label} has wal_level = {level}; change data capture needs"
                " wal_level = logical",
                hint="set wal_level = logical in postgresql.conf (or ALTER SYSTEM SET wal_level = logical)"
                " and restart PostgreSQL",
            )
        if not allowed:
            raise SourceError(
                f'{self.where}: role "{user}" on {self.label} may not use replication slots',
                hint=f"ALTER ROLE {user} REPLICATION; {_PRIVILEGES}",
            )

    # --- catalog ----------------------------------------------------------------------------------

    def table(self, name: str, location: str) -> TableInfo:
        try:
            found = self.con.execute(
                "SELECT c.oid::int8, n.nspname, c.relname, c.relreplident, c.relkind,"
                " has_table_privilege(c.oid, 'SELECT')"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.oid = to_regclass(%s)",
                [name],
            ).fetchall()
        except psycopg.OperationalError as err:
            raise TransientSourceError(self._message("looking up tables", err)) from None
        except psycopg.Error:
            found = []  # not a valid relation name at all: same answer as a missing table
        if not found or found[0][4] != "r":
            what = "is not a table" if found else "does not exist"
            raise ConfigError(
                f'{self.label}: "{name}" {what}',
                location=location,
                hint=did_you_mean(name, self._candidates(qualified="." in name))
                or "name it as schema.table, e.g. public.invoice",
            )
        oid, schema, relname, identity, _, readable = found[0]
        if not readable:
            raise SourceError(
                f"{self.where}: no SELECT privilege on {schema}.{relname} ({self.label})",
                hint=f"GRANT SELECT ON {schema}.{relname} TO <role>; {_PRIVILEGES}",
            )
        rows = self.query(
            f"reading the columns of {schema}.{relname}",
            # generated columns are not replicated by pgoutput, so they are not landed at all
            "SELECT a.attname,"
            " (CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END)::int8,"
            " CASE WHEN t.typtype = 'd' AND a.atttypmod = -1 THEN t.typtypmod ELSE a.atttypmod END"
            " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
            " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''"
            " ORDER BY a.attnum",
            [oid],
        )
        identity_columns = self.query(
            f"reading the replica identity of {schema}.{relname}",
            "SELECT a.attname FROM pg_index i"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = %s AND CASE %s WHEN 'd' THEN i.indisprimary WHEN 'i' THEN i.indisreplident"
            " ELSE false END ORDER BY array_position(i.indkey::int2[], a.attnum)",
            [oid, identity],
        )
        return TableInfo(
            oid,
            schema,
            relname,
            _columns(rows, f"{self.where}: {schema}.{relname}"),
            identity,
            tuple(r[0] for r in identity_columns),
        )

    def _candidates(self, *, qualified: bool) -> list[str]:
        rows = self.query(
            "listing tables",
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'",
        )
        return [f"{s}.{t}" if qualified else t for s, t in rows]

    # --- publication and slot ---------------------------------------------------------------------

    def ensure_publication(self, name: str, tables: Sequence[TableInfo]) -> None:
        """Create the publication for the tables, or add the ones it lacks; refuse one that drops changes."""
        found = self.query(
            f'reading publication "{name}"',
            "SELECT p.puballtables, p.pubinsert AND p.pubupdate AND p.pubdelete,"
            " ARRAY(SELECT r.prrelid::int8 FROM pg_publication_rel r WHERE r.prpubid = p.oid)"
            " FROM pg_publication p WHERE p.pubname = %s",
            [name],
        )
        if found and not found[0][1]:
            raise SourceError(
                f'{self.where}: publication "{name}" does not publish every insert, update and delete',
                hint=f"ALTER PUBLICATION {name} SET (publish = 'insert, update, delete, truncate')",
            )
        if found and found[0][0]:
            return
        members = set(found[0][2]) if found else set()
        missing = [t for t in tables if t.oid not in members]
        if not missing:
            return
        for table in missing:
            require_identity(table, self.where)
        idents = sql.SQL(", ").join(t.ident for t in missing)
        if found:
            statement = sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(sql.Identifier(name), idents)
        else:
            statement = sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(sql.Identifier(name), idents)
        self.execute(f'creating publication "{name}"', statement)

    def published(self, name: str, table: TableInfo) -> bool:
        return bool(
            self.query(
                f'reading publication "{name}"',
                "SELECT 1 FROM pg_publication_tables"
                " WHERE pubname = %s AND schemaname = %s AND tablename = %s",
                [name, table.schema, table.name],
            )
        )

    def slot(self, name: str) -> SlotInfo | None:
        rows = self.query(
            f'reading replication slot "{name}"',
            "SELECT slot_type, (confirmed_flush_lsn - '0/0'::pg_lsn)::int8, plugin, database, wal_status,"
            " current_database() FROM pg_replication_slots WHERE slot_name = %s",
            [name],
        )
        if not rows:
            return None
        kind, confirmed, plugin, database, wal_status, current = rows[0]
        if kind != "logical" or plugin != "pgoutput":
            raise SourceError(
                f'{self.where}: replication slot "{name}" on {self.label} is a {kind} slot'
                + (f" for {plugin}" if plugin else "")
                + ", not a logical pgoutput slot",
                hint="name another slot in the source, or drop this one if nothing uses it",
            )
        if database != current:
            raise SourceError(
                f'{self.where}: replication slot "{name}" on {self.label} belongs to database "{database}"',
                hint="slots are named per server: give this source a slot name of its own",
            )
        return SlotInfo(confirmed, plugin, database, wal_status)

    def create_slot(self, name: str) -> tuple[int, psycopg.Connection[Any]] | None:
        """Create the slot and return its consistent point with a connection whose open transaction
        sees exactly the data before that point (the slot's exported snapshot); None if another
        process created the slot first."""
        replication = self.connect(replication="database")
        try:
            with self.translated(f'creating replication slot "{name}"'):
                try:
                    row = replication.execute(
                        sql.SQL("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput EXPORT_SNAPSHOT").format(
                            sql.Identifier(name)
                        )
                    ).fetchone()
                except psycopg.errors.DuplicateObject:
                    return None
                assert row is not None
                snapshot = self.connect()
                # The exported snapshot lives only while the replication connection stays idle:
                # import it before closing that connection.
                snapshot.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                snapshot.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(row[2])))
                return parse_lsn(row[1]), snapshot
        finally:
            replication.close()

    def flush_lsn(self) -> int:
        lsn: int = self.query(
            "reading the WAL position", "SELECT (pg_current_wal_flush_lsn() - '0/0')::int8"
        )[0][0]
        return lsn

    def advance(self, slot: str, lsn: int) -> None:
        """Move the slot's confirmed position to ``lsn``: decoding then skips commits below it."""
        current = self.slot(slot)
        if current is None or current.confirmed >= lsn:
            return
        self.query(
            f'advancing replication slot "{slot}"',
            "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)",
            [slot, format_lsn(lsn)],
        )

    def peek(self, slot: str, publication: str, upto: int, batch: int) -> Iterator[bytes]:
        """The slot's pgoutput messages for commits before ``upto``, without consuming them."""
        con = self.connect()
        try:
            with self.translated(f'reading replication slot "{slot}"'), con.cursor(binary=True) as cur:
                rows = cur.stream(
                    "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, NULL,"
                    " 'proto_version', '1', 'publication_names', %s)",
                    [slot, format_lsn(upto), publication],
                    # chunked fetching needs libpq 17; older ones stream row by row
                    size=batch if psycopg.pq.version() >= 170000 else 1,
                )
                for (data,) in rows:
                    yield data
        finally:
            con.close()

    def copy_csv(self, con: psycopg.Connection[Any], table: TableInfo) -> Iterator[bytes]:
        """The table as CSV with every value quoted, so that an unquoted empty field is NULL."""
        statement = sql.SQL("COPY {} ({}) TO STDOUT (FORMAT csv, FORCE_QUOTE *)").format(
            table.ident, sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)
        )
        with self.translated(f"reading {table.qualified}"), con.cursor() as cur, cur.copy(statement) as copy:
            for chunk in copy:
                yield bytes(chunk)

    @staticmethod
    def end(con: psycopg.Connection[Any]) -> None:
        with suppress(psycopg.Error):
            con.close()


def _transient(err: psycopg.Error) -> bool:
    """Unreachable, shutting down, out of resources, or the slot busy in another session."""
    state = err.sqlstate
    if state is None:
        return isinstance(err, psycopg.OperationalError)  # failed before the server said anything
    return state == "55006" or state.startswith(("08", "53", "57P", "40"))


def require_identity(table: TableInfo, where: str) -> None:
    """Once published, a table without a replica identity refuses UPDATE and DELETE at the origin."""
    if table.identity == "n" or (table.identity in "di" and not table.identity_columns):
        raise SourceError(
            f"{where}: {table.qualified} has no replica identity, so publishing it would make PostgreSQL"
            " refuse its UPDATEs and DELETEs",
            hint=f"add a primary key, or ALTER TABLE {table.qualified} REPLICA IDENTITY FULL",
        )


def _columns(rows: Sequence[Any], what: str) -> tuple[Column, ...]:
    seen: dict[str, str] = {}
    columns = []
    reserved = {f.name for f in CHANGE_FIELDS}
    for name, type_oid, typmod in rows:
        landed = snake_case(name)
        if landed in seen or landed in reserved:
            other = f'"{seen[landed]}" and ' if landed in seen else ""
            raise SourceError(
                f'{what}: columns {other}"{name}" both land as "{landed}"'
                if other
                else f'{what}: column "{name}" lands as "{landed}", which change data capture reserves',
                hint="rename one of them in the source",
            )
        seen[landed] = name
        columns.append(Column(name, landed, type_oid, typmod))
    return tuple(columns)
