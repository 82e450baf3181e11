"""The spark engine's copy-on-write storage and ledger on a real local Spark: what another
session reads while a transaction is open and after it commits or rolls back, statements Parquet
tables cannot run (DELETE, UPDATE, ALTER) as new storage, the ledger's own tables, a commit
whose views were not switched (rolled forward on open), and what ``reclaim`` drops."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from sqlglot import exp

from gristmill.config.settings import ProjectSettings
from gristmill.engines.base import Relation
from gristmill.engines.spark import transactions as spark_engine
from gristmill.engines.spark.engine import SparkEngine
from gristmill.engines.spark.open import open_spark
from gristmill.errors import EngineError
from gristmill.state.lake.versions import read_versions, record_version
from tests.support.spark_engine import spark_settings, start_shared_session

T = Relation("sales", "orders")


@pytest.fixture(scope="module", autouse=True)
def _spark(tmp_path_factory: pytest.TempPathFactory) -> None:
    start_shared_session(tmp_path_factory.mktemp("spark"))


@pytest.fixture
def settings() -> ProjectSettings:
    return ProjectSettings(name="t", engine=spark_settings())


@pytest.fixture
def engine(settings: ProjectSettings, tmp_path: Path) -> Iterator[SparkEngine]:
    opened = open_spark(settings, tmp_path)
    yield opened
    opened.close()


def rows(n: int, start: int = 0) -> pa.RecordBatchReader:
    return pa.table({"id": pa.array(range(start, start + n), pa.int64())}).to_reader()


def other_session_count(engine: SparkEngine, relation: Relation) -> int | None:
    """What a reader in another Spark session sees of ``relation`` (None: nothing there)."""
    from pyspark.sql import SparkSession

    reader = SparkSession.getActiveSession()
    assert reader is not None
    table = engine.table(relation).sql(dialect="spark")
    try:
        return int(reader.newSession().sql(f"SELECT count(*) FROM {table}").collect()[0][0])
    except Exception as err:
        assert "TABLE_OR_VIEW_NOT_FOUND" in str(err)
        return None


def storage(engine: SparkEngine, relation: Relation) -> set[str]:
    """The relation's storage tables (the database is shared with other modules' tables in the
    suite's one session, so only this relation's prefix counts)."""
    spark = start_shared_session()
    db = engine.table(relation).text("db")
    return {
        r["tableName"]
        for r in spark.sql(f"SHOW TABLES IN `{db}`").collect()
        if r["tableName"].startswith(f"_gm_{relation.name}_")
    }


def count(engine: SparkEngine, relation: Relation = T) -> int:
    row = engine.row(exp.select(exp.Count(this=exp.Star()).as_("n")).from_(engine.table(relation)))
    assert row is not None
    return int(row["n"])


def test_another_session_never_sees_uncommitted_rows(engine: SparkEngine) -> None:
    new = Relation("sales", "fresh")
    engine.write_arrow(T, rows(10))
    assert other_session_count(engine, T) == 10
    with engine.transaction(group=True):
        engine.write_arrow(T, rows(3), mode="append")
        engine.execute(exp.delete(engine.table(T), where=exp.condition("id < 2")))
        engine.create_table_as(new, exp.select("id").from_(engine.table(T)))
        assert count(engine) == 9  # 10 + 3 - four below 2: the transaction sees its own writes
        assert other_session_count(engine, T) == 10  # nobody else does
        assert other_session_count(engine, new) is None
    assert other_session_count(engine, T) == 10  # grouped: still open
    engine.commit()
    assert other_session_count(engine, T) == 9
    assert other_session_count(engine, new) == 9


def test_a_rollback_leaves_no_storage_and_no_change(engine: SparkEngine) -> None:
    engine.write_arrow(T, rows(5))
    before = storage(engine, T)
    with pytest.raises(RuntimeError), engine.transaction():
        engine.write_arrow(T, rows(3), mode="append")
        engine.create_table_as(Relation("sales", "made"), exp.select(exp.Literal.number(1).as_("x")))
        raise RuntimeError("a check failed")
    assert storage(engine, T) == before
    assert count(engine) == 5
    assert not engine.exists(Relation("sales", "made"))


def test_deletes_updates_and_alters_rewrite_the_table(engine: SparkEngine) -> None:
    engine.write_arrow(T, pa.table({"id": [1, 2, 3], "name": ["a", "b", None]}).to_reader())
    source = engine.stage(pa.table({"id": [2, 3], "name": ["B", "C"]}).to_reader())
    target = engine.table(T)
    target.set("alias", exp.TableAlias(this=exp.to_identifier("t")))
    update = exp.Update(
        this=target,
        expressions=[exp.EQ(this=exp.column("name"), expression=exp.column("name", table="s"))],
        from_=exp.From(this=exp.alias_(source, "s", table=True)),
        where=exp.Where(this=exp.column("id", table="s").eq(exp.column("id", table="t"))),
    )
    with engine.transaction():
        assert engine.execute(update) == 2
        engine.execute("DELETE FROM " + engine.table(T).sql(dialect="spark") + " AS x WHERE x.id = 3")
        engine.execute(f"ALTER TABLE {engine.table(T).sql(dialect='spark')} ADD COLUMNS (extra STRING)")
        assert engine.execute(f"INSERT INTO {engine.table(T).sql(dialect='spark')} (id) VALUES (9)") == 1
    got = engine.rows(exp.select("id", "name", "extra").from_(engine.table(T)).order_by("id"))
    assert got == [
        {"id": 1, "name": "a", "extra": None},
        {"id": 2, "name": "B", "extra": None},
        {"id": 9, "name": None, "extra": None},
    ]
    assert [name for name, _ in engine.columns()[T]] == ["id", "name", "extra"]


def served_storage(engine: SparkEngine, relation: Relation = T) -> tuple[str, ...]:
    """The storage tables (segments, in arrival order) the relation's committed entry names."""
    entry = engine._state(relation)
    assert entry is not None
    return entry.storage


def ids(engine: SparkEngine) -> list[int]:
    return [r["id"] for r in engine.rows(exp.select("id").from_(engine.table(T)).order_by("id"))]


def test_a_delete_rewrites_only_the_segments_it_touches(engine: SparkEngine) -> None:
    engine.write_arrow(T, rows(5))  # 0..4, then one segment per append: 100, 101, 102
    for start in range(3):
        engine.write_arrow(T, rows(1, 100 + start), mode="append")
    first, *appended = served_storage(engine)
    table = engine.table(T).sql(dialect="spark")

    with engine.transaction():  # nothing matches: nothing written, nothing changes
        assert engine.execute(f"DELETE FROM {table} AS t WHERE t.id = 999") == 0
    assert served_storage(engine) == (first, *appended)

    with engine.transaction():  # a whole segment matches: dropped unread, the rest untouched
        assert engine.execute(f"DELETE FROM {table} WHERE id = 101") == 1
    assert served_storage(engine) == (first, appended[0], appended[2])

    other = engine.stage(pa.table({"id": [3, 100]}).to_reader())
    with engine.transaction():  # a correlated condition; the first segment only partly matches
        deleted = engine.execute(
            f"DELETE FROM {table} AS t WHERE EXISTS (SELECT 1 FROM {other.sql(dialect='spark')} AS s"
            " WHERE s.id = t.id) OR t.id = 4"
        )
        assert deleted == 3
    now = served_storage(engine)
    assert len(now) == 2 and now[0] != first and now[1] == appended[2]
    assert ids(engine) == [0, 1, 2, 102]
    assert other_session_count(engine, T) == 4

    with engine.transaction():  # every row: an empty table that keeps its columns
        assert engine.execute(f"DELETE FROM {table} WHERE id >= 0") == 4
    assert ids(engine) == [] and [name for name, _ in engine.columns()[T]] == ["id"]


def test_bookkeeping_lives_in_the_ledger(
    engine: SparkEngine, settings: ProjectSettings, tmp_path: Path
) -> None:
    engine.write_arrow(T, rows(2))
    with engine.transaction():
        record_version(engine, "_gm_sales.orders__v1", "sales.orders", "f1", {}, 1, 2)
    assert "_gm_sales.orders__v1" in read_versions(engine)
    mixed = (
        exp.select("*")
        .from_(engine.table(T))
        .join(engine.table(Relation("_gristmill", "versions")), on="1=1")
    )
    with pytest.raises(EngineError, match="_gristmill"):
        engine.rows(mixed)
    engine.close()
    again = open_spark(settings, tmp_path)
    try:
        assert "_gm_sales.orders__v1" in read_versions(again)
        assert count(again) == 2
    finally:
        again.close()


def test_a_commit_whose_views_were_not_switched_is_rolled_forward(
    engine: SparkEngine, settings: ProjectSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.write_arrow(T, rows(4))

    def crash(point: str) -> None:
        if point == "after_ledger_commit":
            raise SystemExit("killed between the ledger's commit and the views' switch")

    monkeypatch.setattr(spark_engine, "fault_hook", crash)
    with pytest.raises(SystemExit):
        engine.write_arrow(T, rows(7))
    monkeypatch.undo()
    assert other_session_count(engine, T) == 4  # committed, not yet switched
    engine.close()
    again = open_spark(settings, tmp_path)  # opening rolls the journal forward
    try:
        assert other_session_count(again, T) == 7
        assert count(again) == 7
    finally:
        again.close()


def test_reclaim_drops_superseded_and_orphaned_storage(engine: SparkEngine) -> None:
    engine.write_arrow(T, rows(5))
    for start in range(3):
        engine.write_arrow(T, rows(1, 100 + start), mode="append")
    engine.compact(T)
    db = engine.table(T).text("db")
    # The process's one session (the active session is per thread: another module may have made it)
    spark = start_shared_session()
    spark.sql(f"CREATE TABLE `{db}`.`_gm_orders_orphan0000` USING parquet AS SELECT 1 AS id")  # a crash's
    assert len(storage(engine, T)) == 6  # 4 superseded segments, the compacted table, the orphan
    engine.reclaim(0)
    assert len(storage(engine, T)) == 1
    assert count(engine) == 8


def test_spark_errors_are_one_line_without_the_jvm_stack(engine: SparkEngine) -> None:
    with pytest.raises(EngineError) as raised:
        engine.query("SELECT * FROM nowhere_at_all")
    assert "TABLE_OR_VIEW_NOT_FOUND" in str(raised.value)
    assert "\tat " not in str(raised.value) and "py4j" not in str(raised.value).lower()


def test_a_postgresql_ledger_commits_like_the_duckdb_one(tmp_path: Path) -> None:
    from tests.support.pg_engine import postgres_database

    with postgres_database("gristmill_spark_ledger") as url:
        settings = ProjectSettings(name="t", engine=spark_settings().model_copy(update={"ledger": url}))
        engine = open_spark(settings, tmp_path)
        try:
            engine.write_arrow(T, rows(3))
            with pytest.raises(RuntimeError), engine.transaction():
                engine.write_arrow(T, rows(1), mode="append")
                raise RuntimeError("rolled back")
            with engine.transaction():
                record_version(engine, "_gm_sales.orders__v1", "sales.orders", "f1", {}, 1, 3)
        finally:
            engine.close()
        assert not (tmp_path / ".gristmill").exists() or not list(tmp_path.rglob("ledger.duckdb"))
        again = open_spark(settings, tmp_path)
        try:
            assert count(again) == 3
            assert "_gm_sales.orders__v1" in read_versions(again)
        finally:
            again.close()
