"""Column types at the engine boundary: read from an engine's text, rendered for a dialect."""

from __future__ import annotations

from sqlglot import exp

from gristmill.sql import types


def test_a_type_read_from_an_engine_renders_back_as_it_printed_it() -> None:
    dtype = types.parse("INTEGER", "duckdb")
    assert dtype.this == exp.DataType.Type.INT
    assert types.render(dtype, "duckdb") == "INTEGER"
    assert types.render(dtype.copy(), "duckdb") == "INTEGER"  # the spelling survives a copy


def test_another_dialect_gets_its_own_spelling() -> None:
    assert types.render(types.parse("VARCHAR", "duckdb"), "postgres") == "TEXT"
    assert types.render(types.parse("BLOB", "duckdb"), "postgres") == "BYTEA"
    assert types.render(types.parse("TIMESTAMP WITH TIME ZONE", "duckdb"), "postgres") == "TIMESTAMPTZ"


def test_a_type_unknown_to_the_parser_is_kept_verbatim() -> None:
    dtype = types.parse("VARINT", "duckdb")
    assert isinstance(dtype, exp.DataType)
    assert types.render(dtype, "duckdb") == "VARINT"


def test_the_platforms_own_columns_are_neutral_data_types() -> None:
    columns = types.columns([("id", "BIGINT"), ("at", "TIMESTAMP WITH TIME ZONE")])
    assert [c for c, _ in columns] == ["id", "at"]
    assert columns[1][1].this == exp.DataType.Type.TIMESTAMPTZ
    assert types.texts(columns, "duckdb") == [("id", "BIGINT"), ("at", "TIMESTAMPTZ")]
