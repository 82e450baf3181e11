"""The postgres engine against the loopback server: what the conformance suite cannot say of every
engine (schema prefixes, the server's type names, readers on another connection, cancelling a
running statement, messages naming the server without its password)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psycopg
import pyarrow as pa
import pytest
from sqlglot import exp

from gristmill.engines.base import Relation
from gristmill.engines.postgres.engine import PostgresEngine
from gristmill.errors import ConfigError, EngineError
from gristmill.sql import types
from tests.support.servers import free_port

pytestmark = pytest.mark.services

T = Relation("marts", "orders")
Opener = Callable[..., PostgresEngine]


def test_schema_prefix_places_every_managed_schema_and_columns_strips_it(
    open_engine: Opener, postgres_url: str
) -> None:
    mine, theirs = open_engine(prefix="alpha_"), open_engine(prefix="beta_")
    mine.write_arrow(T, pa.table({"id": [1]}).to_reader())
    theirs.write_arrow(T, pa.table({"other": ["x"]}).to_reader())
    assert mine.table(T).sql(dialect="postgres") == '"alpha_marts"."orders"'
    assert [name for name, _ in mine.columns()[T]] == ["id"]
    assert [name for name, _ in theirs.columns()[T]] == ["other"]
    with psycopg.connect(postgres_url) as con:
        schemas = {
            row[0] for row in con.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE '%marts'")
        }
    assert {"alpha_marts", "beta_marts"} <= schemas and "marts" not in schemas


def test_types_are_the_servers_own_names(engine: PostgresEngine) -> None:
    engine.execute("CREATE SCHEMA IF NOT EXISTS " + engine.table(T).args["db"].sql(dialect="postgres") + ";")
    engine.execute(
        f"CREATE TABLE {engine.table(T).sql(dialect='postgres')}"
        " (price numeric(10,2), code varchar(20), tags text[], doc jsonb, at timestamptz)"
    )
    described = [(n, types.render(t, "postgres")) for n, t in engine.describe(engine.table(T))]
    expected = [
        ("price", "numeric(10,2)"),
        ("code", "character varying(20)"),
        ("tags", "text[]"),
        ("doc", "jsonb"),
        ("at", "timestamp with time zone"),
    ]
    assert described == expected
    assert [(n, types.render(t, "postgres")) for n, t in engine.columns()[T]] == expected
    assert engine.describe(exp.select("price").from_(engine.table(T)).subquery("q"))[0][1].this == (
        exp.DataType.Type.DECIMAL
    )


def test_a_reader_on_another_connection_never_sees_a_half_replaced_table(
    engine: PostgresEngine, postgres_url: str
) -> None:
    """The swap holds the table's lock until the commit: a reader waits, then reads the new rows
    (never a missing table, never an empty one)."""
    engine.write_arrow(T, pa.table({"id": [1, 2]}).to_reader())
    name = engine.table(T).sql(dialect="postgres")
    read: list[object] = []

    def reader() -> None:
        with psycopg.connect(postgres_url, autocommit=True) as con:
            read.extend(con.execute(f"SELECT id FROM {name}").fetchall())

    thread = threading.Thread(target=reader)
    with engine.transaction():
        engine.create_table_as(T, exp.select(exp.Literal.number(9).as_("id")))
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # waiting for the commit
    thread.join(10)
    assert read == [(9,)]


def test_interrupt_cancels_a_running_statement(engine: PostgresEngine) -> None:
    def stop_soon() -> None:
        time.sleep(0.3)
        engine.interrupt()

    stopper = threading.Thread(target=stop_soon)
    started = time.monotonic()
    stopper.start()
    with pytest.raises(EngineError, match="cancel"), engine.transaction():
        engine.execute("SELECT pg_sleep(30)")
    stopper.join()
    assert time.monotonic() - started < 10
    with engine.transaction():  # the next step runs as usual
        assert engine.row(exp.select(exp.Literal.number(1).as_("one"))) == {"one": 1}


def test_server_errors_are_one_line_and_never_show_the_password(
    open_engine: Opener, postgres_url: str
) -> None:
    host = postgres_url.split("@", 1)[1]
    engine = open_engine(url=f"postgresql://postgres:s3cret-Pw@{host}")  # trust auth: accepted
    with pytest.raises(EngineError) as caught:
        engine.execute("SELECT 's3cret-Pw' + 1")
    assert "\n" not in str(caught.value)
    assert "s3cret-Pw" not in str(caught.value) and "***" in str(caught.value)


def test_an_unreachable_server_is_named_without_its_password(open_engine: Opener) -> None:
    port = free_port()
    with pytest.raises(EngineError) as caught:
        open_engine(url=f"postgresql://app:hidden-Pw@127.0.0.1:{port}/warehouse")
    message = str(caught.value)
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{port}/warehouse" in message
    assert "hidden-Pw" not in message
    assert "start the server" in message


def test_the_url_may_be_a_secret_reference(
    open_engine: Opener, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GM_TEST_WAREHOUSE_URL", postgres_url)
    engine = open_engine(url="${env:GM_TEST_WAREHOUSE_URL}")
    assert engine.row(exp.select(exp.Literal.number(1).as_("one"))) == {"one": 1}
    monkeypatch.delenv("GM_TEST_WAREHOUSE_URL")
    with pytest.raises(ConfigError, match="GM_TEST_WAREHOUSE_URL is not set"):
        open_engine(url="${env:GM_TEST_WAREHOUSE_URL}")


def test_execute_reports_rows_changed(engine: PostgresEngine) -> None:
    engine.write_arrow(T, pa.table({"id": [1, 2, 3]}).to_reader())
    name = engine.table(T).sql(dialect="postgres")
    assert engine.execute(f"DELETE FROM {name} WHERE id > 1") == 2
    assert engine.execute(f"SELECT * FROM {name}") is None
    assert engine.write_arrow(T, pa.table({"id": [4]}).to_reader(), mode="append") == 1
    assert engine.rows(exp.select("id").from_(engine.table(T)).order_by("id")) == [{"id": 1}, {"id": 4}]


def test_threads_bound_the_parallel_workers_of_a_query(open_engine: Opener) -> None:
    engine = open_engine(threads=3)
    assert engine.rows(
        exp.select(
            exp.func("current_setting", exp.Literal.string("max_parallel_workers_per_gather")).as_("w")
        )
    ) == [{"w": "2"}]


def test_closing_with_grouped_steps_open_rolls_them_back(open_engine: Opener, postgres_url: str) -> None:
    prefix = "closing_"
    engine = open_engine(prefix=prefix)
    with engine.transaction(group=True):
        engine.write_arrow(T, pa.table({"id": [1]}).to_reader())
    engine.close()
    assert not open_engine(prefix=prefix).exists(T)


def test_a_rolled_back_build_is_not_believed_to_exist(engine: PostgresEngine) -> None:
    """The engine remembers the relations it made; a rollback must make it forget them again."""
    fresh = Relation("marts", "rolled_back")
    assert not engine.exists(fresh)  # the engine has read the catalog before the build
    with pytest.raises(RuntimeError), engine.transaction():
        engine.create_table_as(fresh, exp.select(exp.Literal.number(1).as_("id")))
        assert engine.exists(fresh)
        raise RuntimeError("the step failed")
    assert not engine.exists(fresh)
    # …so building it again is a plain create, not a swap with a table that is not there.
    assert engine.create_table_as(fresh, exp.select(exp.Literal.number(2).as_("id"))) == 1
    assert engine.rows(exp.select("id").from_(engine.table(fresh))) == [{"id": 2}]


def test_relations_made_or_dropped_by_statements_are_seen(engine: PostgresEngine) -> None:
    other = Relation("marts", "by_hand")
    assert not engine.exists(other)
    engine.execute(f"CREATE SCHEMA IF NOT EXISTS {engine.table(other).args['db'].sql(dialect='postgres')}")
    engine.execute(f"CREATE TABLE {engine.table(other).sql(dialect='postgres')} (id int)")
    assert engine.exists(other)
    engine.execute(exp.Drop(tables=[engine.table(other)], kind="TABLE"))
    assert not engine.exists(other)


def test_replacing_a_table_keeps_the_views_over_it(engine: PostgresEngine) -> None:
    view, reader = Relation("marts", "orders_view"), Relation("marts", "orders_reader")
    engine.create_table_as(T, exp.select(exp.Literal.number(1).as_("id")))
    engine.create_view_as(view, exp.select("id").from_(engine.table(T)))
    engine.create_view_as(reader, exp.select("id").from_(engine.table(view)))
    for value in (2, 3):
        with engine.transaction():
            engine.create_table_as(T, exp.select(exp.Literal.number(value).as_("id")))
        assert engine.rows(exp.select("id").from_(engine.table(reader))) == [{"id": value}]
    engine.create_view_as(
        view, exp.select(exp.column("id").as_("id"), exp.Literal.number(0).as_("x")).from_(engine.table(T))
    )
    assert engine.rows(exp.select("*").from_(engine.table(reader))) == [{"id": 3}]
    engine.drop(reader)
    engine.drop(view)
    assert not engine.exists(view) and engine.exists(T)
