"""Files loaded on a spark target are read by Spark itself and land what a duckdb target lands.

One project with two targets (``duck``: DuckDB, ``spark``: local Spark on the test session's JVM,
tests/support/spark_engine.py) loads CSV, Parquet and NDJSON files; every table, count, quarantine
and error equals across the two. On the spark target the files source's Arrow path is replaced by
one that fails, so a load passes only if no row went through Python."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gristmill.connectors.files.source import Source as FilesSource
from gristmill.workspace import Workspace
from tests.support.pg_engine import schema_prefix
from tests.support.spark_engine import MASTER, TEST_CONF, start_shared_session

pytestmark = pytest.mark.services
TARGETS = ("duck", "spark")


@pytest.fixture(scope="module", autouse=True)
def _spark(tmp_path_factory: pytest.TempPathFactory) -> None:
    start_shared_session(tmp_path_factory.mktemp("spark"))


@pytest.fixture
def no_rows_through_python(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The files source's Arrow stream fails: only the engine's own read can load a table."""

    def refused(self: Any, table: Any, since: Any = None) -> Any:
        raise AssertionError(f"{table.key}: rows were read through Python")

    monkeypatch.setattr(FilesSource, "read", refused)
    yield


def project(root: Path, sources: str, files: dict[str, str | bytes]) -> Path:
    conf = "".join(f'"{k}" = "{v}"\n' for k, v in TEST_CONF.items())
    (root / "sources").mkdir(parents=True)
    (root / "gristmill.toml").write_text(
        f'name = "t"\ntarget = "duck"\n[targets.duck]\nengine = "duckdb"\n'
        f'[targets.spark]\nengine = "spark"\nmaster = "{MASTER}"\nschema_prefix = "{schema_prefix()}"\n'
        f"[targets.spark.conf]\n{conf}"
    )
    (root / "sources" / "src.yml").write_text(sources)
    write(root, files)
    return root


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)


def run(root: Path, target: str) -> Any:
    return Workspace(root, target=target).run()


def tables(root: Path, target: str) -> dict[str, tuple[list[tuple[str, str]], list[str]]]:
    """Each raw table: its columns with their type family, and its rows as sorted JSON text."""
    ws = Workspace(root, target=target)
    found = {}
    for asset in sorted(a for a in ws.graph.assets if a.startswith("raw.")):
        data = ws.query(f"select * from {asset}")
        rows = sorted(json.dumps(r, sort_keys=True, default=str) for r in data.to_pylist())
        found[asset] = ([(f.name, _family(f.type)) for f in data.schema], rows)
    return found


def _family(kind: pa.DataType) -> str:
    """A type as a user reads it, whichever engine's width (int32 and int64 are both integers)."""
    if pa.types.is_integer(kind):
        return "integer"
    if pa.types.is_floating(kind):
        return "float"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or isinstance(kind, pa.JsonType):
        return "text"
    if pa.types.is_struct(kind):
        return "struct<" + ",".join(f"{f.name}:{_family(f.type)}" for f in kind) + ">"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return f"list<{_family(kind.value_type)}>"
    if pa.types.is_timestamp(kind):
        return f"timestamp[{kind.tz or 'naive'}]"
    return str(kind)


def counts(result: Any) -> list[tuple[Any, ...]]:
    return sorted(
        (s.asset, s.load.rows_read, s.load.rows_written, s.load.rows_quarantined, s.load.rows_discarded)
        for s in result.steps
        if s.load is not None
    )


def csv_lines(n: int) -> list[str]:
    lines = ["Id,Customer Name,amount,at,day,ok,note"]
    for i in range(1, n + 1):
        lines.append(
            f'{i},"n{i}",{i * 1.5},2024-01-01T10:00:{i % 60:02d},2024-01-{i % 28 + 1:02d},'
            f'{str(i % 2 == 0).lower()},"say ""hi"", {i}"'
        )
    return lines


def test_csv_parquet_and_ndjson_land_the_same_tables_read_by_spark(
    tmp_path: Path, no_rows_through_python: None
) -> None:
    lines = csv_lines(40_000)
    lines.append('40001,"two\nlines",,2024-01-01 10:00:00,2024-01-01,true,')  # a break inside quotes, NULLs
    records: list[dict[str, Any]] = [
        {
            "id": i,
            "at": "2024-01-01T10:00:00",
            "o": {"b": i, "tags": ["x", "y"]},
            "mixed": i if i % 2 else "s",
        }
        for i in range(35_000)
    ]
    records.append({"id": 35_000, "late": "first seen after record 35,000", "o": {"b": 1, "new": True}})
    root = project(
        tmp_path,
        "kind: files\ntables:\n  c: {path: data/c_*.csv}\n  p: {path: data/p.parquet}\n"
        "  j: {path: data/j.ndjson}\n",
        {
            "data/c_1.csv": "\n".join(lines) + "\n",
            "data/c_2.csv": f"{lines[0]}\n7,x,2.5,2024-02-01 00:00:00,2024-02-01,false,\n",
            "data/j.ndjson": "".join(json.dumps(r) + "\n" for r in records),
        },
    )
    pq.write_table(
        pa.table(
            {
                "a": pa.array([1, 2, 3], pa.int64()),
                "b": ["x", None, "z"],
                "t": pa.array([1, 2, 3], pa.timestamp("us")),
                "l": [[1], [], None],
            }
        ),
        root / "data" / "p.parquet",
    )
    results = {target: run(root, target) for target in TARGETS}
    for target, result in results.items():
        assert result.ok, (target, [(s.asset, s.error) for s in result.steps])
    assert counts(results["spark"]) == counts(results["duck"])
    duck, spark = tables(root, "duck"), tables(root, "spark")
    assert spark == duck
    columns = dict(spark["raw.src__j"][0])
    assert "late" in columns and columns["o"] == "struct<b:integer,tags:list<text>,new:bool>"
    assert dict(spark["raw.src__c"][0])["at"] == "timestamp[naive]"
    assert len(spark["raw.src__c"][1]) == 40_002


def test_merge_keeps_the_last_row_per_key_in_file_order(tmp_path: Path, no_rows_through_python: None) -> None:
    """A merge needs the rows' arrival order (the last row per key wins): Spark's read numbers
    its rows in file order, then line, across files split over several tasks."""
    first = ["id,v"] + [f"{i % 500},a{i}" for i in range(20_000)]
    second = ["id,v"] + [f"{i % 300},b{i}" for i in range(10_000)]
    root = project(
        tmp_path,
        "kind: files\ntables:\n  m: {path: data/m_*.csv, write: merge, key: id}\n",
        {"data/m_1.csv": "\n".join(first) + "\n", "data/m_2.csv": "\n".join(second) + "\n"},
    )
    for target in TARGETS:
        result = run(root, target)
        assert result.ok, (target, [(s.asset, s.error) for s in result.steps])
    duck, spark = tables(root, "duck"), tables(root, "spark")
    assert spark == duck
    assert '{"id": 0, "v": "b9900"}' in spark["raw.src__m"][1]


def test_a_bad_value_past_the_sniffed_lines_fails_naming_the_file_and_line(
    tmp_path: Path, no_rows_through_python: None
) -> None:
    lines = csv_lines(40_000)
    lines[30_001] = lines[30_001].replace(str(30_001 * 1.5), "abc")
    root = project(
        tmp_path, "kind: files\ntables:\n  c: {path: data/c.csv}\n", {"data/c.csv": "\n".join(lines) + "\n"}
    )
    errors = {}
    for target in TARGETS:
        result = run(root, target)
        assert not result.ok
        errors[target] = next(s.error for s in result.steps if s.error)
    for error in errors.values():
        assert "sources/src.yml (c)" in error and "Line: 30002" in error and '"abc"' in error, error
        assert "Traceback" not in error and "py4j" not in error.lower()
    assert errors["spark"].splitlines()[0] == errors["duck"].splitlines()[0]


def test_quarantine_sets_aside_the_same_rows(tmp_path: Path, no_rows_through_python: None) -> None:
    """A value that does not fit the held type (the CSV's column is text this time) is set aside
    on both engines, with the same counts and reasons."""
    root = project(
        tmp_path,
        "kind: files\ntables:\n  q: {path: data/q.csv, contract: quarantine}\n",
        {"data/q.csv": "id,amount\n1,1.5\n2,2.5\n"},
    )
    for target in TARGETS:
        assert run(root, target).ok
    write(root, {"data/q.csv": "id,amount\n3,3.5\n4,oops\n5,\n"})
    results = {target: run(root, target) for target in TARGETS}
    for target, result in results.items():
        assert result.ok, (target, [(s.asset, s.error) for s in result.steps])
    assert counts(results["spark"]) == counts(results["duck"])
    duck, spark = tables(root, "duck"), tables(root, "spark")
    assert {k: v[1] for k, v in spark.items()} == {k: v[1] for k, v in duck.items()}
