"""The DuckDB reader's fixture path: CSV text and files read as a files source reads them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from gristmill.connectors.duckdb_reader import READER_DIALECT, read_fixture, sql
from gristmill.errors import SourceError


def test_csv_text_is_sniffed_and_declared_columns_stay_text() -> None:
    table = read_fixture("id,price\n1,10.50\n2,3\n", inline=True, text_columns=["price"])
    assert table.column("id").to_pylist() == [1, 2]
    assert table.schema.field("price").type == pa.string()
    assert table.column("price").to_pylist() == ["10.50", "3"]


def test_a_file_is_read_by_its_suffix(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text('[{"a": 1}, {"a": 2}]')
    assert read_fixture(path.as_posix(), inline=False, text_columns=()).column("a").to_pylist() == [1, 2]


def test_an_unreadable_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        read_fixture((tmp_path / "missing.parquet").as_posix(), inline=False, text_columns=())


def test_the_reader_renders_in_its_own_dialect() -> None:
    from sqlglot import exp

    assert READER_DIALECT == "duckdb"
    assert sql(exp.column("a b", quoted=True)) == '"a b"'
