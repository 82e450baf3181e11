"""The DuckDB engine over DuckLake: atomic replace, rollback, and readers in other processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from sqlglot import exp

from gristmill._util.duckdb_extensions import _packaged_file
from gristmill.config.settings import ProjectSettings
from gristmill.engines import Relation, open_engine
from gristmill.engines.duckdb import DuckDBEngine
from gristmill.errors import EngineError

T = Relation("raw", "t")


@pytest.fixture
def engine(tmp_path: Path) -> DuckDBEngine:
    made = open_engine(ProjectSettings(name="t"), tmp_path)
    assert isinstance(made, DuckDBEngine)
    return made


def ids(n: int) -> pa.RecordBatchReader:
    return pa.table({"id": list(range(n))}).to_reader()


def count(engine: DuckDBEngine) -> int:
    return int(engine.query("select count(*) as n from raw.t").column("n")[0].as_py())


def test_lands_arrow_as_parquet_files_under_the_lake(engine: DuckDBEngine, tmp_path: Path) -> None:
    assert engine.write_arrow(T, ids(1000)) == 1000
    assert engine.write_arrow(T, ids(5), mode="append") == 5
    assert count(engine) == 1005
    assert (tmp_path / ".gristmill" / "catalog.sqlite").exists()
    assert engine.columns()[T] == [("id", exp.DataType.build("BIGINT"))]


def test_a_failed_transaction_leaves_the_previous_version(engine: DuckDBEngine) -> None:
    engine.write_arrow(T, ids(10))
    with pytest.raises(RuntimeError), engine.transaction():
        engine.write_arrow(T, ids(3))
        assert count(engine) == 3  # the new version is visible inside the transaction (for checks)
        raise RuntimeError("a blocking check failed")
    assert count(engine) == 10


def test_view_and_table_replace_each_other(engine: DuckDBEngine) -> None:
    engine.write_arrow(T, ids(4))
    v = Relation("marts", "v")
    engine.create_view_as(v, exp.select("id").from_(engine.table(T)))
    assert engine.create_table_as(v, exp.select("id").from_(engine.table(T))) == 4
    engine.create_view_as(v, exp.select("id").from_(engine.table(T)).where("id > 1"))
    assert engine.query("select count(*) as n from marts.v").column("n")[0].as_py() == 2


READER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gristmill.config.settings import ProjectSettings
    from gristmill.engines import open_engine
    engine = open_engine(ProjectSettings(name="t"), Path(sys.argv[1]), read_only=True)
    print(engine.query("select count(*) as n from raw.t").column("n")[0].as_py(), flush=True)
    """
)


def test_another_process_reads_the_last_commit_while_a_write_is_in_flight(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    engine.write_arrow(T, ids(100))
    with engine.transaction():
        engine.write_arrow(T, ids(7))
        seen = subprocess.run(
            [sys.executable, "-c", READER, str(tmp_path)], capture_output=True, text=True, timeout=60
        )
        assert seen.returncode == 0, seen.stderr
        assert seen.stdout.strip() == "100"
    after = subprocess.run(
        [sys.executable, "-c", READER, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert after.stdout.strip() == "7"


def test_extensions_load_without_network(engine: DuckDBEngine) -> None:
    loaded = engine.query(
        "select extension_name from duckdb_extensions()"
        " where loaded and extension_name in ('ducklake', 'sqlite_scanner')"
    )
    assert sorted(loaded.column("extension_name").to_pylist()) == ["ducklake", "sqlite_scanner"]


def test_only_the_packaged_extensions_skip_the_signature_check(engine: DuckDBEngine, tmp_path: Path) -> None:
    """The packaged files load unchecked (their check re-hashed 70 MB per process); anything a
    statement loads afterwards is checked again, so a tampered file is refused."""
    setting = engine.query("select current_setting('allow_unsigned_extensions') as s")
    assert setting.column("s").to_pylist() == [False]
    packaged = _packaged_file("excel", f"v{duckdb.__version__}")
    assert packaged is not None, "duckdb-extension-excel is a dependency"
    body = bytearray(packaged.read_bytes())
    body[len(body) // 2] ^= 0xFF  # one byte changed: the signature no longer matches
    tampered = tmp_path / "excel.duckdb_extension"
    tampered.write_bytes(bytes(body))
    with pytest.raises(EngineError) as failed:
        engine.execute(f"LOAD '{tampered.as_posix()}'")
    assert "signature" in str(failed.value)


def test_text_statements_report_the_rows_they_change(engine: DuckDBEngine) -> None:
    engine.write_arrow(T, pa.table({"a": [1, 2, 3]}).to_reader())
    assert engine.execute(f"DELETE FROM {engine.table(T).sql(dialect='duckdb')} WHERE a > 1") == 2
    assert engine.execute("SET threads = 1") is None


def files(engine: DuckDBEngine) -> list[str]:
    listed = engine.query("select data_file from ducklake_list_files('lake', 't', schema => 'raw')")
    return sorted(listed.column("data_file").to_pylist())


def test_compact_merges_small_files_and_leaves_merged_ones_alone(
    engine: DuckDBEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.write_arrow(T, ids(1000))
    for _ in range(20):
        engine.write_arrow(T, ids(1000), mode="append")
    before = engine.query("select max(snapshot_id) as s from ducklake_snapshots('lake')").column("s")[0]
    assert len(files(engine)) == 21
    engine.compact(Relation("raw", "missing"))  # a table not there is passed over
    engine.compact(T)
    merged = files(engine)
    assert len(merged) == 1
    assert count(engine) == 21_000
    old = engine.query(f"select count(*) as n from raw.t at (version => {before.as_py()})")
    assert old.column("n")[0].as_py() == 21_000  # time travel reads the merged file too

    # Once a merged file is large enough it is not rewritten at every round (a growing table
    # would be copied whole each time): only the new small files are merged.
    sizes = engine.query(
        "select data_file_size_bytes as b from ducklake_list_files('lake', 't', schema => 'raw')"
    )
    monkeypatch.setattr("gristmill.engines.duckdb.engine._MERGED_UP_TO", sizes.column("b")[0].as_py())
    for _ in range(5):
        engine.write_arrow(T, ids(1000), mode="append")
    engine.compact(T)
    again = files(engine)
    assert merged[0] in again and len(again) == 2
    assert count(engine) == 26_000


def test_a_commit_leaves_the_configured_threads_in_place(tmp_path: Path) -> None:
    # DuckLake commits run with one DuckDB thread (its catalog queries are small: more threads
    # only poll each other); the statements after a commit get the threads the project set.
    settings = ProjectSettings.model_validate({"name": "t", "engine": {"threads": 3}})
    made = open_engine(settings, tmp_path)
    assert isinstance(made, DuckDBEngine)
    with made.transaction(group=True):
        made.write_arrow(T, ids(10))
    made.commit()
    with made.transaction():
        made.write_arrow(T, ids(5), mode="append")
    assert count(made) == 15
    assert made.query("select current_setting('threads') as n").column("n")[0].as_py() == 3


def test_a_step_over_few_rows_runs_on_one_thread_and_commits_without_switching(tmp_path: Path) -> None:
    settings = ProjectSettings.model_validate({"name": "t", "engine": {"threads": 3}})
    made = open_engine(settings, tmp_path)
    assert isinstance(made, DuckDBEngine)

    def setting() -> int:
        return int(made.query("select current_setting('threads') as n").column("n")[0].as_py())

    made.expect_rows(10)
    assert setting() == 1
    with made.transaction(group=True):
        made.write_arrow(T, ids(10))
    made.commit()
    assert setting() == 1  # the commit left the small step's setting alone
    made.expect_rows(5_000_000)
    assert setting() == 3
    made.expect_rows(None)  # not known: the project's threads
    assert setting() == 3
    made.expect_rows(0)
    with made.transaction():
        made.write_arrow(T, ids(5), mode="append")
    assert count(made) == 15 and setting() == 1
