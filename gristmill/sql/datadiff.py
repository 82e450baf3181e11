"""The statements of a data diff: one table as two sides (``base``, the reference, and ``head``,
the side under review) compared by key, in the engine, as sqlglot ASTs.

Three statements, each a bounded result:

- ``key_probe``: per side, the rows whose key has a NULL part and the keys held by more than one
  row (one GROUP BY per side). Such rows cannot be matched one to one, so they are counted and
  sampled (``key_sample``) and left out of the comparison rather than joined many-to-many.
- ``summary``: one pass over ``base FULL OUTER JOIN head ON key``: rows added, removed, changed
  and unchanged and the changed count of every compared column, by conditional aggregation.
- ``sample``: up to ``n`` rows of each kind (added, removed, changed), smallest keys first.

Every column and key is addressed by position in the statements' aliases (``_k0``, ``_b1``,
``_h1``), so no user column name can collide with them; the caller maps positions back to names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlglot import exp

Side = Literal["base", "head"]
Comparison = Literal["exact", "tolerance", "text"]

KINDS = ("added", "removed", "changed")
"""The kinds of differing row, in the order results list them."""

_KIND = "_kind"
_TEXT = exp.DataType.build("text")


@dataclass(frozen=True)
class Compared:
    """One column present on both sides, and how its two values are compared: ``exact`` (IS
    DISTINCT FROM: NULL against NULL is unchanged), ``tolerance`` (floats: changed when they
    differ by more than the tolerance, or one is NULL), ``text`` (the column changed type
    between families: both sides cast to text first)."""

    name: str
    how: Comparison = "exact"


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True), table=table)


def _alias(expression: exp.Expr, name: str) -> exp.Expr:
    return exp.alias_(expression, name, quoted=False)


def _key_present(key: Sequence[str], table: str | None = None) -> exp.Expr:
    return exp.and_(*(exp.Not(this=exp.Is(this=_col(k, table), expression=exp.Null())) for k in key))


def _key_has_null(key: Sequence[str]) -> exp.Expr:
    return exp.or_(*(exp.Is(this=_col(k), expression=exp.Null()) for k in key))


def _duplicated(table: exp.Table, key: Sequence[str]) -> exp.Select:
    """The keys of ``table`` held by more than one row (NULL keys aside), with their row count."""
    return (
        exp.select(*(_col(k) for k in key), _alias(exp.Count(this=exp.Star()), "_n"))
        .from_(table.copy())
        .where(_key_present(key))
        .group_by(*(_col(k) for k in key))
        .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
    )


def _zero(expression: exp.Expr) -> exp.Expr:
    return exp.Coalesce(this=expression, expressions=[exp.Literal.number(0)])


def _key_counts(table: exp.Table, key: Sequence[str], side: str) -> exp.Select:
    """One row for one side from one GROUP BY on the key (NULL keys form a group of their own)."""
    groups = (
        exp.select(*(_col(k) for k in key), _alias(exp.Count(this=exp.Star()), "_n"))
        .from_(table.copy())
        .group_by(*(_col(k) for k in key))
        .subquery("g")
    )
    n, null = _col("_n"), _key_has_null(key)
    repeated = exp.and_(exp.Not(this=null.copy()), exp.GT(this=n.copy(), expression=exp.Literal.number(1)))
    return exp.select(
        _alias(_zero(exp.func("SUM", n.copy())), f"{side}_rows"),
        _alias(_zero(exp.func("SUM", exp.Case().when(null, n.copy()))), f"{side}_null_keys"),
        _alias(_count_where(repeated), f"{side}_duplicate_keys"),
        _alias(_zero(exp.func("SUM", exp.Case().when(repeated.copy(), n.copy()))), f"{side}_duplicate_rows"),
    ).from_(groups)


def key_probe(base: exp.Table, head: exp.Table, key: Sequence[str]) -> exp.Select:
    """One row: per side, its rows, rows with a NULL in the key, keys held by several rows and
    those rows; one GROUP BY per side."""
    return (
        exp.select(exp.Star())
        .from_(_key_counts(base, key, "base").subquery("pb"))
        .join(_key_counts(head, key, "head").subquery("ph"), join_type="cross")
    )


def key_sample(table: exp.Table, key: Sequence[str], n: int) -> exp.Select:
    """Up to ``n`` keys of ``table`` held by several rows, with their count, smallest first."""
    return _duplicated(table, key).order_by(*(_col(k) for k in key)).limit(n)


def _side(
    table: exp.Table, key: Sequence[str], columns: Sequence[Compared], exclude: exp.Query | None
) -> exp.Select:
    """One side's rows with a whole key: key and compared columns by position, a presence flag;
    without the keys in ``exclude`` (duplicated on either side) when there are any."""
    select = (
        exp.select(
            *(_alias(_col(k, "t"), f"_k{i}") for i, k in enumerate(key)),
            *(_alias(_col(c.name, "t"), f"_c{i}") for i, c in enumerate(columns)),
            _alias(exp.Literal.number(1), "_present"),
        )
        .from_(exp.alias_(table.copy(), "t", table=True))
        .where(_key_present(key, "t"))
    )
    if exclude is None:
        return select
    on = exp.and_(*(exp.EQ(this=_col(k, "t"), expression=_col(k, "x")) for k in key))
    return select.join(exp.alias_(exclude.subquery(), "x"), on=on, join_type="left").where(
        exp.Is(this=_col(key[0], "x"), expression=exp.Null())
    )


def _differs(base: exp.Expr, head: exp.Expr, how: Comparison, tolerance: float | None) -> exp.Expr:
    if how == "text":
        base, head = exp.cast(base, _TEXT), exp.cast(head, _TEXT)
    if how != "tolerance" or tolerance is None:
        return exp.NullSafeNEQ(this=base, expression=head)
    both_null = exp.and_(
        exp.Is(this=base.copy(), expression=exp.Null()), exp.Is(this=head.copy(), expression=exp.Null())
    )
    one_null = exp.or_(
        exp.Is(this=base.copy(), expression=exp.Null()), exp.Is(this=head.copy(), expression=exp.Null())
    )
    apart = exp.GT(
        this=exp.Abs(this=exp.Sub(this=base, expression=head)), expression=exp.Literal.number(tolerance)
    )
    return exp.Case().when(both_null, exp.false()).when(one_null, exp.true()).else_(apart)


def _classified(
    base: exp.Table,
    head: exp.Table,
    key: Sequence[str],
    columns: Sequence[Compared],
    tolerance: float | None,
    exclude_duplicates: bool,
) -> exp.Select:
    """Every key once: its kind, its key, both sides' values and a changed flag per column."""
    exclude = None
    if exclude_duplicates:
        exclude = exp.union(
            exp.select(*(_col(k) for k in key)).from_(_duplicated(base, key).subquery("db")),
            exp.select(*(_col(k) for k in key)).from_(_duplicated(head, key).subquery("dh")),
            distinct=True,
        )
    b_side = _side(base, key, columns, exclude).subquery("b")
    h_side = _side(head, key, columns, exclude.copy() if exclude is not None else None).subquery("h")
    on = exp.and_(
        *(exp.EQ(this=_col(f"_k{i}", "b"), expression=_col(f"_k{i}", "h")) for i in range(len(key)))
    )
    both = exp.and_(
        exp.Not(this=exp.Is(this=_col("_present", "b"), expression=exp.Null())),
        exp.Not(this=exp.Is(this=_col("_present", "h"), expression=exp.Null())),
    )
    flags = [
        exp.and_(both.copy(), _differs(_col(f"_c{i}", "b"), _col(f"_c{i}", "h"), c.how, tolerance))
        for i, c in enumerate(columns)
    ]
    kind = (
        exp.Case()
        .when(exp.Is(this=_col("_present", "b"), expression=exp.Null()), exp.Literal.string("added"))
        .when(exp.Is(this=_col("_present", "h"), expression=exp.Null()), exp.Literal.string("removed"))
    )
    if flags:
        kind = kind.when(exp.or_(*(f.copy() for f in flags)), exp.Literal.string("changed"))
    kind = kind.else_(exp.Literal.string("same"))
    return (
        exp.select(
            _alias(kind, _KIND),
            *(
                _alias(exp.Coalesce(this=_col(f"_k{i}", "b"), expressions=[_col(f"_k{i}", "h")]), f"_k{i}")
                for i in range(len(key))
            ),
            *(_alias(_col(f"_c{i}", "b"), f"_b{i}") for i in range(len(columns))),
            *(_alias(_col(f"_c{i}", "h"), f"_h{i}") for i in range(len(columns))),
            *(_alias(flag, f"_d{i}") for i, flag in enumerate(flags)),
        )
        .from_(b_side)
        .join(h_side, on=on, join_type="full outer")
    )


def _count_where(condition: exp.Expr) -> exp.Expr:
    return exp.Count(this=exp.Case().when(condition, exp.Literal.number(1)))


def _is_kind(kind: str) -> exp.Expr:
    return exp.EQ(this=_col(_KIND), expression=exp.Literal.string(kind))


def summary(
    base: exp.Table,
    head: exp.Table,
    key: Sequence[str],
    columns: Sequence[Compared],
    *,
    tolerance: float | None = None,
    exclude_duplicates: bool = False,
) -> exp.Select:
    """One row: ``added``, ``removed``, ``changed``, ``same`` and ``_d<i>`` (rows whose column
    ``i`` changed), counted in one pass over the full outer join of the two sides on ``key``."""
    rows = _classified(base, head, key, columns, tolerance, exclude_duplicates).subquery("j")
    return exp.select(
        *(_alias(_count_where(_is_kind(kind)), kind) for kind in (*KINDS, "same")),
        *(_alias(_count_where(_col(f"_d{i}")), f"_d{i}") for i in range(len(columns))),
    ).from_(rows)


def sample(
    base: exp.Table,
    head: exp.Table,
    key: Sequence[str],
    columns: Sequence[Compared],
    n: int,
    *,
    tolerance: float | None = None,
    exclude_duplicates: bool = False,
) -> exp.Select:
    """Up to ``n`` differing rows of each kind, smallest keys first: ``_kind``, ``_k<i>``, both
    sides' values ``_b<i>``/``_h<i>`` and the changed flags ``_d<i>``."""
    rows = _classified(base, head, key, columns, tolerance, exclude_duplicates)
    order = exp.Order(
        expressions=[exp.Ordered(this=_col(f"_k{i}"), nulls_first=False) for i in range(len(key))]
    )
    numbered = exp.Window(this=exp.RowNumber(), partition_by=[_col(_KIND)], order=order)
    inner = (
        exp.select(exp.Star(), _alias(numbered, "_rn"))
        .from_(rows.subquery("j"))
        .where(exp.NEQ(this=_col(_KIND), expression=exp.Literal.string("same")))
    )
    return (
        exp.select(exp.Star())
        .from_(inner.subquery("s"))
        .where(exp.LTE(this=_col("_rn"), expression=exp.Literal.number(n)))
        .order_by(_col(_KIND), *(_col(f"_k{i}") for i in range(len(key))))
    )
