"""Loads into PostgreSQL land what DuckDB lands: the same project, run once on each engine, gives
equal tables (sorted rows, with the normalisation below) and equal run-summary counts, and a rerun
changes nothing.

Normalisation (what differs by engine and is not a difference to a user):
- JSON text is compared as the value it spells (``jsonb`` prints ``{"a": 1}``, DuckDB ``{"a":1}``);
- row ids are each engine's digest of the row's text: a child row is compared by the parent row
  its ``_gm_parent_id`` points to, so the links are checked, not the ids' values;
- integers of any width compare equal (a list index is ``integer`` on PostgreSQL, ``BIGINT`` on
  DuckDB); UUIDs compare as their text;
- an scd2 table's validity timestamps are the load's clock, and its row hash is a digest of the
  row as the engine spells it in text (``f`` against ``false``): only whether they are set is
  compared (the reruns show each engine's hash is stable);
- a quarantine reason names the held type as the engine spells it (``BIGINT``, ``bigint``): it
  is compared without case.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gristmill.sql import nesting, writes
from gristmill.workspace import Workspace
from tests.conftest import write_files
from tests.support.pg_engine import ADMIN_URL, postgres_database
from tests.support.rest_server import ApiServer
from tests.support.sqldb_servers import mysql_chinook

pytestmark = pytest.mark.services

_CLOCK = {writes.VALID_FROM, writes.VALID_TO, writes.ROW_HASH}
_REASON = "_gm_reason"


def _norm(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


def _rows(table: Any, ids: dict[str, str]) -> list[str]:
    """The rows as sorted JSON text. A child table's link to its parent is shown as the parent
    row it points to (``ids``: row id -> that row's text, filled here), not as the id itself."""
    rows = []
    for row in table.to_pylist():
        shown = {k: (v is not None if k in _CLOCK else _norm(v)) for k, v in row.items()}
        if isinstance(shown.get(_REASON), str):
            shown[_REASON] = shown[_REASON].lower()
        row_id = shown.pop(nesting.ROW_ID, None)
        if nesting.PARENT_ID in shown:
            shown[nesting.PARENT_ID] = ids.get(str(shown[nesting.PARENT_ID]), "no such parent")
        text = json.dumps(shown, sort_keys=True, default=str)
        if row_id is not None:
            ids[str(row_id)] = text
        rows.append(text)
    return sorted(rows)


class Twin:
    """One project, laid out twice: on DuckDB and on PostgreSQL (a database of its own)."""

    def __init__(self, base: Path, url: str, files: dict[str, str]) -> None:
        self.roots = {"duckdb": base / "duckdb", "postgres": base / "postgres"}
        tomls = {
            "duckdb": 'name = "t"\n',
            "postgres": f'name = "t"\n[engine]\nkind = "postgres"\nurl = "{url}"\n',
        }
        for kind, root in self.roots.items():
            root.mkdir(parents=True)
            (root / "gristmill.toml").write_text(tomls[kind])
            write_files(root, files)

    def write(self, files: dict[str, str | bytes]) -> None:
        for root in self.roots.values():
            for name, text in files.items():
                path = root / name
                path.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(text, bytes):
                    path.write_bytes(text)
                else:
                    path.write_text(text)

    def run(self, *, ok: bool = True) -> dict[str, Any]:
        results = {kind: Workspace(root).run() for kind, root in self.roots.items()}
        for kind, result in results.items():
            assert result.ok == ok, (kind, [(s.asset, s.error) for s in result.steps])
        return results

    def tables(self, kind: str) -> dict[str, list[str]]:
        ws = Workspace(self.roots[kind])
        names = ws.query(
            "select table_name from information_schema.tables where table_schema = 'raw' order by 1"
        ).column("table_name")
        ids: dict[str, str] = {}
        # parents before their children: a child table's name extends its parent's
        ordered = sorted((n.as_py() for n in names), key=len)
        return {n: _rows(ws.query(f'select * from raw."{n}"'), ids) for n in ordered}

    def assert_equal(self, results: dict[str, Any] | None = None) -> dict[str, list[str]]:
        duck, pg = self.tables("duckdb"), self.tables("postgres")
        assert pg == duck
        if results is not None:
            counts = {
                kind: sorted(
                    (
                        s.asset,
                        s.load.rows_read,
                        s.load.rows_written,
                        s.load.rows_quarantined,
                        s.load.rows_discarded,
                    )
                    for s in result.steps
                    if s.load is not None
                )
                for kind, result in results.items()
            }
            assert counts["postgres"] == counts["duckdb"]
        return duck

    def idempotent(self) -> None:
        before = {kind: self.tables(kind) for kind in self.roots}
        self.run()
        assert {kind: self.tables(kind) for kind in self.roots} == before


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[Any]:
    with postgres_database("gristmill_load") as url:

        def make(files: dict[str, str]) -> Twin:
            return Twin(tmp_path, url, files)

        yield make


def ndjson(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _files_table(path: str, options: str = "") -> dict[str, str]:
    return {"sources/src.yml": f"kind: files\ntables:\n  t:\n    path: {path}\n{options}"}


ROWS = [
    {"id": i, "name": f"n{i}", "amount": i * 1.5, "at": f"2024-01-{i:02d}T10:00:00", "ok": i % 2 == 0}
    for i in range(1, 8)
]


@pytest.mark.parametrize("fmt", ["ndjson", "csv", "parquet"])
def test_files_land_the_same_tables(twin: Any, fmt: str) -> None:
    t = twin(_files_table(f"data/t.{fmt}"))
    if fmt == "ndjson":
        t.write({"data/t.ndjson": ndjson(ROWS)})
    elif fmt == "csv":
        lines = [
            "id,name,amount,at,ok",
            *(f"{r['id']},{r['name']},{r['amount']},{r['at']},{r['ok']}" for r in ROWS),
        ]
        t.write({"data/t.csv": "\n".join(lines) + "\n"})
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        for root in t.roots.values():
            (root / "data").mkdir(exist_ok=True)
            pq.write_table(pa.Table.from_pylist(ROWS), root / "data" / "t.parquet")
    t.assert_equal(t.run())
    t.idempotent()


def test_late_key_ndjson_lands_the_key_on_both(twin: Any) -> None:
    """A key first met deep in the file (issue #17) becomes a column on PostgreSQL too."""
    rows: list[dict[str, Any]] = [{"id": i} for i in range(3000)]
    rows.append({"id": 3000, "late": "here"})
    t = twin(_files_table("data/t.ndjson"))
    t.write({"data/t.ndjson": ndjson(rows)})
    landed = t.assert_equal(t.run())
    assert any('"late": "here"' in r for r in landed["src__t"])


def test_sqlite_lands_the_same_tables(twin: Any, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    con = sqlite3.connect(db)
    con.execute("create table items (id integer primary key, name text, price real, qty integer)")
    con.executemany("insert into items values (?, ?, ?, ?)", [(i, f"x{i}", i / 4, i * 3) for i in range(50)])
    con.commit()
    con.close()
    t = twin({"sources/db.yml": f"kind: sqlite\npath: {db}\ntables: [items]\n"})
    t.assert_equal(t.run())
    t.idempotent()


def test_postgres_source_lands_the_same_tables(twin: Any) -> None:
    with postgres_database("gristmill_src") as source:
        with psycopg.connect(source, autocommit=True) as con:
            con.execute(
                "create table orders (id int primary key, total numeric(10,2), placed timestamptz, note text)"
            )
            con.execute(
                "insert into orders select g, g * 1.25,"
                " timestamptz '2024-01-01 00:00+00' + g * interval '1 hour',"
                " case when g % 3 = 0 then null else 'n' || g end from generate_series(1, 40) g"
            )
        yml = f"kind: postgres\nconnection: {source}\nsource_schema: public\ntables: [orders]\n"
        t = twin({"sources/shop.yml": yml})
        t.assert_equal(t.run())
        t.idempotent()
    assert ADMIN_URL  # the server the databases were made on


def test_mariadb_source_lands_the_same_tables(twin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with mysql_chinook() as database:
        monkeypatch.setenv("GM_TEST_MARIADB_URL", database.url)
        yml = "kind: mysql\nconnection: ${env:GM_TEST_MARIADB_URL}\ntables: [Invoice, Genre]\n"
        t = twin({"sources/shop.yml": yml})
        t.assert_equal(t.run())
        t.idempotent()


def test_rest_source_lands_the_same_tables(twin: Any) -> None:
    api = ApiServer().start()
    try:
        yml = (
            f"kind: rest\nbase_url: {api.url}/open\nrecords: items\n"
            "paginate: {type: offset, limit: 200}\ntables:\n  invoices: {path: offset/Invoice}\n"
            "  customers: {path: offset/Customer}\n"
        )
        t = twin({"sources/api.yml": yml})
        t.assert_equal(t.run())
        t.idempotent()
    finally:
        api.stop()


@pytest.mark.parametrize(
    "options",
    [
        "    write: replace\n",
        "    write: append\n",
        "    write: append\n    incremental: {cursor: at}\n",
        "    write: merge\n    key: [id]\n",
        "    write: merge\n    key: [id]\n    incremental: {cursor: at}\n",
        "    write: delete_insert\n    key: [id]\n",
        "    write: scd2\n    key: [id]\n",
    ],
    ids=["replace", "append", "append-incremental", "merge", "merge-incremental", "delete_insert", "scd2"],
)
def test_write_dispositions_land_the_same_tables(twin: Any, options: str) -> None:
    t = twin(_files_table("data/t.ndjson", options))
    t.write({"data/t.ndjson": ndjson(ROWS[:4])})
    t.assert_equal(t.run())
    changed = [{**r, "name": r["name"] + "'"} if r["id"] == 2 else r for r in ROWS[1:]]
    t.write({"data/t.ndjson": ndjson(changed)})
    t.assert_equal(t.run())
    t.idempotent()


def test_evolve_adds_a_column_in_the_load(twin: Any) -> None:
    t = twin(_files_table("data/t.ndjson", "    write: append\n"))
    t.write({"data/t.ndjson": ndjson([{"id": 1}])})
    t.run()
    t.write({"data/t.ndjson": ndjson([{"id": 2, "note": "hi"}])})
    results = t.run()
    t.assert_equal(results)
    events = results["postgres"].steps[0].load.events
    assert any('new column "note"' in e for e in events), events


def test_freeze_fails_naming_the_column_and_keeps_the_table(twin: Any) -> None:
    t = twin(_files_table("data/t.ndjson", "    write: append\n    contract: freeze\n"))
    t.write({"data/t.ndjson": ndjson([{"id": 1}])})
    t.run()
    t.write({"data/t.ndjson": ndjson([{"id": 2, "extra": "x"}])})
    results = t.run(ok=False)
    error = results["postgres"].steps[0].error
    assert "contract freeze" in error and '"extra"' in error
    t.assert_equal()


@pytest.mark.parametrize("contract", ["quarantine", "discard"])
def test_quarantine_and_discard_count_every_row(twin: Any, contract: str) -> None:
    t = twin(_files_table("data/t.ndjson", f"    write: append\n    contract: {contract}\n"))
    t.write({"data/t.ndjson": ndjson([{"id": 1, "amount": 5}])})
    t.run()
    t.write(
        {
            "data/t.ndjson": ndjson(
                [{"id": 2, "amount": "7"}, {"id": 3, "amount": "seven"}, {"id": 4, "amount": 4}]
            )
        }
    )
    results = t.run()
    t.assert_equal(results)
    load = results["postgres"].steps[0].load
    assert load.rows_read == 3
    # "7" arrives as a JSON string, and a JSON value fits a column only as its own kind: it is set
    # aside with "seven"; 4 lands.
    assert (load.rows_quarantined, load.rows_discarded) == ((2, 0) if contract == "quarantine" else (0, 2))
    assert t.tables("postgres")["src__t"] == t.tables("duckdb")["src__t"]
    assert len(t.tables("postgres")["src__t"]) == 2


NESTED = [
    {"id": 1, "s": {"a": 1, "b": {"c": "x"}}, "tags": ["p", "q"], "m": {"k": [1, 2]}},
    {"id": 2, "s": {"a": 2, "b": None}, "tags": [], "m": {"k": []}},
    {"id": 3, "s": None, "tags": None, "m": None},
]


@pytest.mark.parametrize("write", ["replace", "append", "merge"])
def test_child_tables_flatten_structs_and_split_lists_as_on_duckdb(twin: Any, write: str) -> None:
    key = "    key: [id]\n" if write == "merge" else ""
    t = twin(_files_table("data/t.ndjson", f"    nested: child_tables\n    write: {write}\n{key}"))
    t.write({"data/t.ndjson": ndjson(NESTED)})
    landed = t.assert_equal(t.run())
    assert set(landed) == {"src__t", "src__t__tags", "src__t__m__k"}
    t.idempotent()


def test_json_lands_nested_values_as_json_as_on_duckdb(twin: Any) -> None:
    t = twin(_files_table("data/t.ndjson", "    nested: json\n"))
    t.write({"data/t.ndjson": ndjson(NESTED)})
    t.assert_equal(t.run())


DEEP = [
    {
        "id": 1,
        "items": [{"p": 1, "q": [3], "subs": [{"z": "a", "w": {"v": 1}}]}, {"p": 2, "q": [], "subs": []}],
        "grid": [[1, 2], [3]],
        "s": {"rows": [{"k": "x"}]},
    },
    {"id": 2, "items": [], "grid": [], "s": {"rows": None}},
    {"id": 3, "items": None, "grid": None, "s": None},
    {"id": 2, "items": [{"p": 9, "q": [8, 7], "subs": None}], "grid": [[5]], "s": {"rows": [{"k": "y"}]}},
]


@pytest.mark.parametrize(
    "options",
    [
        "    write: replace\n",
        "    write: append\n",
        "    write: merge\n    key: [id]\n",
        "    write: append\n    max_depth: 2\n",
    ],
    ids=["replace", "append", "merge", "max_depth"],
)
def test_child_tables_split_lists_of_structs_and_lists_as_on_duckdb(twin: Any, options: str) -> None:
    """Lists of structs, of lists, and lists inside structs inside lists: PostgreSQL stages none
    of them as such, so they are split off in Arrow; the tables are DuckDB's."""
    t = twin(_files_table("data/t.ndjson", f"    nested: child_tables\n{options}"))
    t.write({"data/t.ndjson": ndjson(DEEP)})
    landed = t.assert_equal(t.run())
    if "max_depth" not in options:
        assert {"src__t__items", "src__t__items__subs", "src__t__items__q", "src__t__grid__value"} <= set(
            landed
        )
    t.write({"data/t.ndjson": ndjson([*DEEP, {"id": 4, "items": [{"p": 4, "q": [4], "subs": []}]}])})
    t.assert_equal(t.run())
    t.idempotent()
