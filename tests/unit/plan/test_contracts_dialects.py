"""Schema contracts decide on types, not on how an engine spells them: the same column types
read from DuckDB's text and from PostgreSQL's give the same changes, widenings and merges."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from gristmill.plan.contracts import SchemaChange, compare, evolved, fits, kind_of, may_fit
from gristmill.sql import types

# Types PostgreSQL has too, as DuckDB prints them (no unsigned integers, HUGEINT or structs there).
LEAVES = st.one_of(
    st.sampled_from(
        [
            "SMALLINT",
            "INTEGER",
            "BIGINT",
            "FLOAT",
            "DOUBLE",
            "VARCHAR",
            "BOOLEAN",
            "DATE",
            "TIMESTAMP",
            "TIMESTAMP WITH TIME ZONE",
            "TIME",
            "INTERVAL",
            "UUID",
            "BLOB",
            "JSON",
        ]
    ),
    st.integers(1, 38).flatmap(lambda p: st.integers(0, p).map(lambda s: f"DECIMAL({p},{s})")),
)
TYPES = st.recursive(LEAVES, lambda inner: inner.map(lambda t: f"{t}[]"), max_leaves=3)


def both(text: str) -> tuple[exp.DataType, exp.DataType]:
    """The type read from DuckDB's text, and from the text PostgreSQL spells it with."""
    duck = types.parse(text, "duckdb")
    return duck, types.parse(types.render(duck, "postgres"), "postgres")


def decisions(changes: list[SchemaChange]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.kind, c.column, c.field) for c in changes]


@settings(max_examples=400, deadline=None)
@given(TYPES, TYPES, st.booleans())
def test_duckdb_and_postgres_spellings_of_the_same_types_decide_alike(
    held: str, arriving: str, nested: bool
) -> None:
    (old_d, old_p), (new_d, new_p) = both(held), both(arriving)
    assert fits(new_d, old_d) == fits(new_p, old_p)
    assert kind_of(new_d) == kind_of(new_p)
    assert may_fit(new_d, old_d) == may_fit(new_p, old_p)
    in_duckdb = compare([("c", old_d)], [("c", new_d)], dialect="duckdb", nested=nested)
    in_postgres = compare([("c", old_p)], [("c", new_p)], dialect="postgres", nested=nested)
    assert decisions(in_duckdb) == decisions(in_postgres)
    if not any(c.kind == "type_drift" for c in in_duckdb):
        assert evolved(old_d, new_d).sql("postgres") == evolved(old_p, new_p).sql("postgres")


# How PostgreSQL prints types (format_type, information_schema), and DuckDB's same type.
SPELLINGS = [
    ("smallint", "SMALLINT"),
    ("integer", "INTEGER"),
    ("bigint", "BIGINT"),
    ("real", "FLOAT"),
    ("double precision", "DOUBLE"),
    ("numeric(18,3)", "DECIMAL(18,3)"),
    ("numeric(9,0)", "DECIMAL(9,0)"),
    ("text", "VARCHAR"),
    ("character varying", "VARCHAR"),
    ("boolean", "BOOLEAN"),
    ("date", "DATE"),
    ("timestamp without time zone", "TIMESTAMP"),
    ("timestamp with time zone", "TIMESTAMP WITH TIME ZONE"),
    ("jsonb", "JSON"),
    ("uuid", "UUID"),
    ("integer[]", "INTEGER[]"),
    ("bigint[]", "BIGINT[]"),
    ("text[]", "VARCHAR[]"),
]


@pytest.mark.parametrize(
    ("held", "arriving"), list(itertools.product(SPELLINGS, SPELLINGS)), ids=lambda s: s[0]
)
def test_postgres_own_spelling_decides_as_duckdb_does(
    held: tuple[str, str], arriving: tuple[str, str]
) -> None:
    old_p, new_p = types.parse(held[0], "postgres"), types.parse(arriving[0], "postgres")
    old_d, new_d = types.parse(held[1], "duckdb"), types.parse(arriving[1], "duckdb")
    assert fits(new_p, old_p) == fits(new_d, old_d)
    for nested in (False, True):
        in_postgres = compare([("c", old_p)], [("c", new_p)], dialect="postgres", nested=nested)
        in_duckdb = compare([("c", old_d)], [("c", new_d)], dialect="duckdb", nested=nested)
        assert decisions(in_postgres) == decisions(in_duckdb)


def test_a_change_is_shown_as_the_engine_spells_its_types() -> None:
    held = types.parse('STRUCT(a INTEGER, "b c" STRUCT(x DECIMAL(18,3)))', "duckdb")
    arriving = types.parse(
        'STRUCT(a BIGINT, "b c" STRUCT(x DECIMAL(18,3), y TIMESTAMP WITH TIME ZONE), meta VARCHAR[])',
        "duckdb",
    )
    shown = [str(c) for c in compare([("s", held)], [("s", arriving)], dialect="duckdb", nested=True)]
    assert shown == [
        'field "s.a" widened INTEGER -> BIGINT',
        'new field "s.b c.y" TIMESTAMP WITH TIME ZONE',
        'new field "s.meta" VARCHAR[]',
    ]
    in_postgres = compare(
        [("n", types.parse("integer", "postgres"))],
        [("n", types.parse("bigint", "postgres"))],
        dialect="postgres",
    )
    assert [str(c) for c in in_postgres] == ['column "n" widened integer -> bigint']


def test_a_length_limited_text_takes_only_shorter_text() -> None:
    short, long, any_length = (
        types.parse(t, "postgres") for t in ("character varying(10)", "character varying(20)", "text")
    )
    assert fits(short, long) and fits(short, any_length) and fits(long, any_length)
    assert not fits(long, short) and not fits(any_length, long)


def test_a_numeric_without_limits_takes_any_whole_or_decimal_number() -> None:
    numeric = types.parse("numeric", "postgres")
    for value in ("bigint", "integer", "numeric(38,10)"):
        assert fits(types.parse(value, "postgres"), numeric)
    assert not fits(numeric, types.parse("numeric(38,10)", "postgres"))
    assert kind_of(numeric) == "number" and kind_of(types.parse("jsonb", "postgres")) == "json"
