"""Statements Spark's Parquet tables cannot run, as the query of the table's new contents.

Hive Parquet tables take no DELETE, UPDATE or MERGE, and a change must not show before the
transaction commits anyway: the engine writes each change as new storage (copy-on-write) and
records it in the ledger at commit. These functions turn a DELETE, an UPDATE or an INSERT into
the SELECT whose rows are that new storage, and point a statement's references to relations the
open transaction changed at their new storage (it sees its own writes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlglot import exp

Source = Callable[[exp.Table], exp.Expr | None]
"""What a table reference reads instead (a table or a subquery), None to keep it."""


def tables(statement: exp.Expr) -> list[exp.Table]:
    """The database-qualified tables ``statement`` names (a CTE's name has no database)."""
    return [t for t in statement.find_all(exp.Table) if t.args.get("db") is not None and t.name]


def substitute(statement: exp.Expr, source: Source) -> exp.Expr:
    """A copy of ``statement`` reading ``source(table)`` wherever it names ``table``; the
    replacement keeps the table's alias (or takes its name as one) so qualified columns still
    resolve."""

    def replace(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Table) or node.args.get("db") is None or not node.name:
            return node
        found = source(node)
        if found is None:
            return node
        alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name, quoted=True))
        if isinstance(found, exp.Table):
            found = found.copy()
            found.set("alias", alias.copy())
            return found
        return exp.Subquery(this=found.copy(), alias=alias.copy())

    return statement.copy().transform(replace, copy=False)


def _alias(target: exp.Table) -> str:
    alias = target.args.get("alias")
    return alias.name if alias is not None else target.name


def deleted(delete: exp.Delete) -> exp.Select:
    """The rows a ``DELETE FROM target [AS a] [WHERE c]`` keeps: the target's rows where ``c``
    is not true (a NULL condition deletes nothing, as in SQL)."""
    target = delete.this
    assert isinstance(target, exp.Table)
    where = delete.args.get("where")
    select = exp.select(exp.Star()).from_(target.copy())
    if where is None:
        return select.where(exp.false())
    keep = exp.Not(this=exp.Paren(this=exp.Coalesce(this=where.this.copy(), expressions=[exp.false()])))
    return select.where(keep)


SEGMENT = "_gm_segment"
"""The column numbering a table's segments in :func:`segment_counts`'s queries."""


def segment_counts(delete: exp.Delete, segments: Sequence[exp.Table]) -> tuple[exp.Select, exp.Select]:
    """Two queries over the segments of a ``DELETE``'s table, each ``(segment number, rows)``:
    the rows the condition deletes per segment, and every row per segment (Parquet answers that
    from its footers). The segments are read as the target (its alias), so the condition runs
    unchanged; it stays in WHERE, where Spark takes correlated subqueries (EXISTS) it refuses
    inside an aggregate."""
    target = delete.this
    assert isinstance(target, exp.Table)
    where = delete.args.get("where")
    assert where is not None
    numbered = [
        exp.select(exp.alias_(exp.Literal.number(i), SEGMENT), exp.Star()).from_(part.copy())
        for i, part in enumerate(segments)
    ]
    union: exp.Query = numbered[0]
    for more in numbered[1:]:
        union = exp.union(union, more, distinct=False)
    read = union.subquery(exp.to_identifier(_alias(target), quoted=True))
    per = exp.column(SEGMENT)
    count = exp.Count(this=exp.Star()).as_("n")
    matched = (
        exp.select(per.copy(), count.copy()).from_(read.copy()).where(where.this.copy()).group_by(per.copy())
    )
    total = exp.select(per.copy(), count).from_(read).group_by(per)
    return matched, total


def deleted_from(delete: exp.Delete, segment: exp.Table) -> exp.Select:
    """The rows of one ``segment`` a ``DELETE`` keeps (the segment read under the target's alias)."""
    target = delete.this
    assert isinstance(target, exp.Table)
    read = segment.copy()
    read.set("alias", exp.TableAlias(this=exp.to_identifier(_alias(target), quoted=True)))
    return deleted(exp.Delete(this=read, where=delete.args.get("where")))


def updated(update: exp.Update, columns: Sequence[tuple[str, exp.DataType]]) -> exp.Query:
    """The rows after ``UPDATE target [AS a] SET … [FROM s] WHERE c``: each column of a row the
    condition holds for takes its new value (cast to the column's type, so the table keeps its
    schema). With a FROM, a row matched by the source is updated with its values (a row matched
    by several sources comes out once per match: keep sources unique on the join, as PostgreSQL
    then picks one arbitrarily); rows no source matches are kept as they are."""
    target = update.this
    assert isinstance(target, exp.Table)
    alias = _alias(target)
    sets: dict[str, exp.Expr] = {}
    for assignment in update.expressions:
        assert isinstance(assignment, exp.EQ)
        sets[assignment.this.name] = assignment.expression
    where = update.args.get("where")
    condition = where.this.copy() if where is not None else exp.true()
    source = update.args.get("from_") or update.args.get("from")
    own = {name: exp.column(name, table=alias, quoted=True) for name, _ in columns}

    def value(name: str, dtype: exp.DataType, when: exp.Expr | None) -> exp.Expr:
        if name not in sets:
            return exp.alias_(own[name].copy(), name, quoted=True)
        new: exp.Expr = exp.cast(sets[name].copy(), dtype.copy())
        if when is not None:
            new = exp.Case(ifs=[exp.If(this=when.copy(), true=new)], default=own[name].copy())
        return exp.alias_(new, name, quoted=True)

    if source is None:
        held = exp.Coalesce(this=condition, expressions=[exp.false()])
        return exp.select(*(value(n, t, held) for n, t in columns)).from_(target.copy())
    joined = (
        exp.select(*(value(n, t, None) for n, t in columns))
        .from_(target.copy())
        .join(source.this.copy(), on=condition.copy())
    )
    unmatched = (
        exp.select(*(exp.alias_(own[n].copy(), n, quoted=True) for n, _ in columns))
        .from_(target.copy())
        .where(exp.Not(this=exp.Exists(this=exp.select("1").from_(source.this.copy()).where(condition))))
    )
    return exp.union(joined, unmatched, distinct=False)


def inserted(insert: exp.Insert, columns: Sequence[tuple[str, exp.DataType]]) -> exp.Select:
    """The rows ``INSERT INTO target [(c, …)] query`` adds, as the target's columns in its order
    and types (a column the insert does not name is NULL; without names, by position)."""
    schema = insert.this
    named = [c.name for c in schema.expressions] if isinstance(schema, exp.Schema) else None
    query = insert.expression
    if isinstance(query, exp.Values):
        width = len(query.expressions[0].expressions) if query.expressions else 0
        query = exp.select(exp.Star()).from_(
            exp.Subquery(this=query.copy(), alias=exp.TableAlias(this=exp.to_identifier("_gm_values")))
        )
    else:
        assert isinstance(query, exp.Query)
        width = len(named) if query.is_star and named else len(query.selects)
        if query.is_star and not named:
            width = len(columns)
    labels = named or [name for name, _ in columns][:width]
    arriving = exp.Subquery(
        this=query.copy(),
        alias=exp.TableAlias(
            this=exp.to_identifier("_gm_in"), columns=[exp.to_identifier(n, quoted=True) for n in labels]
        ),
    )
    by_name = {n.lower(): n for n in labels}
    values = []
    for name, dtype in columns:
        given = by_name.get(name.lower())
        value: exp.Expr = exp.column(given, table="_gm_in", quoted=True) if given is not None else exp.null()
        values.append(exp.alias_(exp.cast(value, dtype.copy()), name, quoted=True))
    return exp.select(*values).from_(arriving)


def altered(alter: exp.Alter, columns: Sequence[tuple[str, exp.DataType]]) -> exp.Select:
    """The rows after ``ALTER TABLE … ADD COLUMN c t`` / ``ALTER COLUMN c TYPE t``: the new
    column NULL, the changed one cast."""
    target = alter.this
    assert isinstance(target, exp.Table)
    added: list[tuple[str, exp.DataType]] = []
    cast: dict[str, exp.DataType] = {}
    actions = [
        part
        for action in alter.args.get("actions") or []
        for part in (action.expressions if isinstance(action, exp.Schema) else [action])  # ADD COLUMNS (…)
    ]
    for action in actions:
        if isinstance(action, exp.ColumnDef):
            kind = action.args.get("kind")
            assert isinstance(kind, exp.DataType)
            added.append((action.name, kind))
        elif isinstance(action, exp.AlterColumn) and action.args.get("dtype") is not None:
            cast[action.name.lower()] = action.args["dtype"]
        else:
            raise ValueError(f"ALTER TABLE {action.sql()}")
    values = [
        exp.alias_(
            exp.cast(exp.column(name, quoted=True), cast[name.lower()].copy())
            if name.lower() in cast
            else exp.column(name, quoted=True),
            name,
            quoted=True,
        )
        for name, _ in columns
    ]
    known = {name.lower() for name, _ in columns}
    values += [
        exp.alias_(exp.cast(exp.null(), dtype.copy()), name, quoted=True)
        for name, dtype in added
        if name.lower() not in known
    ]
    bare = target.copy()
    bare.set("alias", None)
    return exp.select(*values).from_(bare)


def union(parts: Sequence[exp.Table]) -> exp.Query:
    """The rows of several segments with the same columns."""
    selects = [exp.select(exp.Star()).from_(part.copy()) for part in parts]
    query: exp.Query = selects[0]
    for more in selects[1:]:
        query = exp.union(query, more, distinct=False)
    return query


def arrival_order(statement: exp.Expr) -> exp.Expr:
    """``ROW_NUMBER() OVER ()`` (rows numbered as they stream out of a query: the platform's
    arrival order) as Spark can run it: ``monotonically_increasing_id()``, which increases along
    the partitions of the query's output and within each (ids are not consecutive; they are
    only ever compared). A row number over partitions without an order gets a constant one
    (Spark asks for one; any row may come first, as elsewhere)."""

    def lowered(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Window) or not isinstance(node.this, exp.RowNumber):
            return node
        if node.args.get("order") is not None:
            return node
        if not node.args.get("partition_by"):
            return exp.Anonymous(this="monotonically_increasing_id", expressions=[])
        ordered = node.copy()
        ordered.set("order", exp.Order(expressions=[exp.Ordered(this=exp.Literal.number(1))]))
        return ordered

    return statement.transform(lowered, copy=False)
