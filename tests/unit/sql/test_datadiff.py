"""The data diff's statements against a plain Python diff of the same generated tables, on DuckDB:
NULLs in values and keys, duplicated keys on either side, a column whose type changed, floats
compared exactly and within a tolerance."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from gristmill.sql import datadiff as d
from gristmill.sql.render import render

pytestmark = pytest.mark.slow  # the property test generates 80 pairs of tables

COLUMNS = [d.Compared("n"), d.Compared("s"), d.Compared("f", "tolerance"), d.Compared("t", "text")]
"""``n`` integers, ``s`` text, ``f`` doubles, ``t`` integers in base and text in head (retyped)."""

Row = tuple[Any, ...]  # (id, n, s, f, t)

keys = st.one_of(st.none(), st.integers(0, 12))
ints = st.one_of(st.none(), st.integers(-3, 3))
texts = st.one_of(st.none(), st.sampled_from(["a", "b", "", "é"]))
floats = st.one_of(st.none(), st.sampled_from([0.0, 0.25, 1.0, 1.05, -2.5, 1e9]))
rows = st.tuples(keys, ints, texts, floats, ints)
tables = st.lists(rows, max_size=25)


def _arrow(data: list[Row], retyped: bool) -> pa.Table:
    ids, n, s, f, t = (list(c) for c in zip(*data, strict=True)) if data else ([], [], [], [], [])
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "n": pa.array(n, pa.int64()),
            "s": pa.array(s, pa.string()),
            "f": pa.array(f, pa.float64()),
            "t": pa.array([None if v is None else str(v) for v in t], pa.string())
            if retyped
            else pa.array(t, pa.int64()),
        }
    )


def _differs(column: d.Compared, old: Any, new: Any, tolerance: float | None) -> bool:
    if column.how == "text":
        old, new = (None if v is None else str(v) for v in (old, new))
    if column.how == "tolerance" and tolerance is not None:
        if old is None and new is None:
            return False
        return old is None or new is None or abs(old - new) > tolerance
    return bool(old != new)  # None == None: unchanged


def reference(base: list[Row], head: list[Row], tolerance: float | None) -> dict[str, Any]:
    """The diff in plain Python: what the statements must agree with."""
    counts = {
        side: Counter(r[0] for r in rows if r[0] is not None)
        for side, rows in (("base", base), ("head", head))
    }
    duplicated = {k for c in counts.values() for k, n in c.items() if n > 1}
    mine = {
        side: {r[0]: r[1:] for r in rows if r[0] is not None and r[0] not in duplicated}
        for side, rows in (("base", base), ("head", head))
    }
    old, new = mine["base"], mine["head"]
    kinds: dict[Any, str] = {}
    per_column = [0] * len(COLUMNS)
    for k in old.keys() | new.keys():
        if k not in old:
            kinds[k] = "added"
        elif k not in new:
            kinds[k] = "removed"
        else:
            flags = [_differs(c, old[k][i], new[k][i], tolerance) for i, c in enumerate(COLUMNS)]
            per_column = [p + f for p, f in zip(per_column, flags, strict=True)]
            kinds[k] = "changed" if any(flags) else "same"
    found = Counter(kinds.values())
    return {
        "probe": {
            f"{side}_{name}": value
            for side, rows in (("base", base), ("head", head))
            for name, value in (
                ("rows", len(rows)),
                ("null_keys", sum(r[0] is None for r in rows)),
                ("duplicate_keys", sum(n > 1 for n in counts[side].values())),
                ("duplicate_rows", sum(n for n in counts[side].values() if n > 1)),
            )
        },
        "summary": {kind: found[kind] for kind in (*d.KINDS, "same")}
        | {f"_d{i}": n for i, n in enumerate(per_column)},
        "kinds": kinds,
        "exclude": bool(duplicated),
    }


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


def _run(con: duckdb.DuckDBPyConnection, query: exp.Expr) -> list[dict[str, Any]]:
    result = con.sql(render(query, "duckdb"))
    names = [c[0] for c in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=tables, head=tables, tolerance=st.sampled_from([None, 0.1]), n=st.integers(0, 3))
def test_the_statements_agree_with_a_python_diff(
    con: duckdb.DuckDBPyConnection, base: list[Row], head: list[Row], tolerance: float | None, n: int
) -> None:
    con.register("base_t", _arrow(base, retyped=False))
    con.register("head_t", _arrow(head, retyped=True))
    old, new, key = exp.to_table("base_t"), exp.to_table("head_t"), ["id"]
    expected = reference(base, head, tolerance)

    probe = _run(con, d.key_probe(old, new, key))[0]
    assert probe == expected["probe"]
    # Duplicates are left out, never joined many-to-many, whether or not the caller says so
    # (leaving them in is what the fast path does when the probe found none).
    summary = _run(con, d.summary(old, new, key, COLUMNS, tolerance=tolerance, exclude_duplicates=True))[0]
    assert summary == expected["summary"]
    if not expected["exclude"]:
        assert _run(con, d.summary(old, new, key, COLUMNS, tolerance=tolerance))[0] == expected["summary"]

    sample = _run(con, d.sample(old, new, key, COLUMNS, n, tolerance=tolerance, exclude_duplicates=True))
    for kind in d.KINDS:
        wanted = sorted(k for k, v in expected["kinds"].items() if v == kind)[:n]
        assert [r["_k0"] for r in sample if r["_kind"] == kind] == wanted


def test_duplicated_keys_are_sampled_with_their_row_count(con: duckdb.DuckDBPyConnection) -> None:
    con.register("dups", _arrow([(1, 0, "a", 0.0, 0), (1, 1, "b", 0.0, 0), (2, 0, "a", 0.0, 0)] * 2, False))
    assert _run(con, d.key_sample(exp.to_table("dups"), ["id"], 1)) == [{"id": 1, "_n": 4}]


def test_a_composite_key_matches_on_every_part() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE a AS SELECT * FROM (VALUES (1, 'x', 10), (1, 'y', 20), (2, 'x', 30)) t(k1, k2, v)"
    )
    con.execute(
        "CREATE TABLE b AS SELECT * FROM (VALUES (1, 'x', 10), (1, 'y', 21), (2, 'z', 30)) t(k1, k2, v)"
    )
    query = d.summary(exp.to_table("a"), exp.to_table("b"), ["k1", "k2"], [d.Compared("v")])
    assert _run(con, query) == [{"added": 1, "removed": 1, "changed": 1, "same": 1, "_d0": 1}]


def test_the_statements_render_for_every_engine_dialect() -> None:
    query = d.sample(exp.to_table("s.a"), exp.to_table("s.b"), ["id"], COLUMNS, 5, tolerance=0.5)
    for dialect in ("duckdb", "postgres", "spark"):
        text = render(query, dialect)
        assert "FULL OUTER JOIN" in text and "ROW_NUMBER()" in text
