"""Model functions (DuckDB's spelling, the project's dialect) as PostgreSQL spells them,
computing the same value of the same type.

``sql.functions`` lowers what the platform's own statements use; this module lowers what models
commonly call (date parts, names of days and months, string tests, regular expressions, list
helpers, ``arg_max`` and friends) where sqlglot's generator for the engine writes a function the
engine lacks or one that returns another type (PostgreSQL's ``EXTRACT`` is ``numeric``, DuckDB's
``year()`` a ``BIGINT``). ``sql.functions.LOWERINGS`` merges these tables into its own.

What has no form at all on an engine is named by ``NO_FORM``: a strict render (planning a run,
``gristmill compile``) reports it as the construct the model must not use, rather than sending
the engine SQL it rejects mid-run (or, for ``TRY_CAST``, SQL that fails where DuckDB gave NULL).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp, transforms

Lowering = Callable[[exp.Expr], exp.Expr]

_PARTS: dict[type[exp.Expr], str] = {
    exp.Year: "YEAR",
    exp.Quarter: "QUARTER",
    exp.Month: "MONTH",
    exp.Week: "WEEK",  # ISO week in both engines
    exp.WeekOfYear: "WEEK",
    exp.Day: "DAY",
    exp.DayOfMonth: "DAY",
    exp.DayOfWeek: "DOW",  # Sunday = 0 in both engines
    exp.DayOfWeekIso: "ISODOW",
    exp.DayOfYear: "DOY",
    exp.Hour: "HOUR",
    exp.Minute: "MINUTE",
    exp.Second: "SECOND",
}
_PART_NAMES = {"DAYOFWEEK": "DOW", "WEEKDAY": "DOW", "DAYOFYEAR": "DOY", "DAYOFMONTH": "DAY"}
_FRACTIONAL = {"EPOCH", "JULIAN"}
"""Parts whose value has a fraction in DuckDB too (``DOUBLE``): left as PostgreSQL computes them."""


def _whole_part(part: str, value: exp.Expr) -> exp.Expr:
    """A date part as DuckDB gives it: a whole number (``second`` drops the fraction)."""
    extract = exp.Extract(this=exp.var(part), expression=value)
    return exp.cast(exp.Floor(this=extract) if part == "SECOND" else extract, "BIGINT")


def _date_part(node: exp.Expr) -> exp.Expr:
    return _whole_part(_PARTS[type(node)], node.this)


def _extract(node: exp.Expr) -> exp.Expr:
    part = node.this.name.upper()
    if part in _FRACTIONAL:
        return node
    return _whole_part(_PART_NAMES.get(part, part), node.expression)


def _date_part_call(node: exp.Expr) -> exp.Expr:
    """``date_part('year', x)`` / ``datepart('month', x)`` with a literal part."""
    part, value = node.expressions[0], node.expressions[1] if len(node.expressions) > 1 else None
    if value is None or not part.is_string or part.name.upper() in _FRACTIONAL:
        return node
    name = part.name.upper()
    return _whole_part(_PART_NAMES.get(name, name), value)


def _to_char(pattern: str) -> Lowering:
    def lower(node: exp.Expr) -> exp.Expr:
        return exp.Anonymous(this="TO_CHAR", expressions=[node.this, exp.Literal.string(pattern)])

    return lower


def _series_rows(node: exp.Expr) -> exp.Expr:
    """``unnest(generate_series(…))``: PostgreSQL's ``generate_series`` already returns rows."""
    return node.this if isinstance(node.this, exp.GenerateSeries) else node


def _make_date(node: exp.Expr) -> exp.Expr:
    parts = [node.args[k] for k in ("year", "month", "day")]
    return exp.Anonymous(this="MAKE_DATE", expressions=parts)


def _ends_with(node: exp.Expr) -> exp.Expr:
    suffix = node.expression
    tail = exp.Anonymous(this="RIGHT", expressions=[node.this, exp.Length(this=suffix.copy())])
    return exp.EQ(this=tail, expression=suffix)


def _contains(node: exp.Expr) -> exp.Expr:
    found = exp.Anonymous(this="STRPOS", expressions=[node.this, node.expression])
    return exp.GT(this=found, expression=exp.Literal.number(0))


def _split(node: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this="STRING_TO_ARRAY", expressions=[node.this, node.expression])


def _first_element(array: exp.Expr) -> exp.Expr:
    return exp.Bracket(this=exp.paren(array, copy=False), expressions=[exp.Literal.number(1)], offset=1)


def _regexp_extract(node: exp.Expr) -> exp.Expr:
    """The group's text, or '' when the text does not match (NULL for a NULL text), as DuckDB.
    The pattern is wrapped in a group so that group 0 (the whole match) is group 1."""
    pattern, group = node.expression, node.args.get("group")
    if not pattern.is_string or (group is not None and not group.is_int):
        return node
    index = (int(group.name) if group is not None else 0) + 1
    wrapped = exp.Literal.string(f"({pattern.name})")
    match = exp.Anonymous(this="REGEXP_MATCH", expressions=[node.this, wrapped])
    found = exp.Bracket(this=exp.paren(match, copy=False), expressions=[exp.Literal.number(index)], offset=1)
    empty = exp.Substring(this=node.this.copy(), start=exp.Literal.number(1), length=exp.Literal.number(0))
    return exp.Coalesce(this=found, expressions=[empty])


def _sha256(node: exp.Expr) -> exp.Expr:
    length = node.args.get("length")
    if length is not None and length.name != "256":
        return node
    utf8 = exp.Anonymous(this="CONVERT_TO", expressions=[node.this, exp.Literal.string("UTF8")])
    digest = exp.Anonymous(this="SHA256", expressions=[utf8])
    return exp.Anonymous(this="ENCODE", expressions=[digest, exp.Literal.string("hex")])


def _elements(values: exp.Expr, *, distinct: bool = False) -> exp.Select:
    """``SELECT _gm_v FROM UNNEST(values) AS _gm_u(_gm_v)``."""
    element = exp.to_identifier("_gm_v")
    rows = exp.Table(
        this=exp.Unnest(expressions=[values]),
        alias=exp.TableAlias(this=exp.to_identifier("_gm_u"), columns=[element]),
    )
    return exp.select(exp.column(element.copy())).from_(rows).distinct(distinct=distinct)


def _sorted_list(node: exp.Expr) -> exp.Expr:
    """``list_sort``: ascending, NULLs last (DuckDB's defaults)."""
    descending = node.args.get("asc") is not None and node.args["asc"].this is False
    order = exp.Ordered(this=exp.column("_gm_v"), desc=descending, nulls_first=False)
    return exp.Array(expressions=[_elements(node.this).order_by(order)])


def _distinct_list(node: exp.Expr) -> exp.Expr:
    """``list_distinct``: each non-NULL value once (in no particular order, as DuckDB)."""
    query = _elements(node.this, distinct=True).where(exp.column("_gm_v").is_(exp.null()).not_())
    return exp.Array(expressions=[query])


def _list_aggregate(function: type[exp.AggFunc]) -> Lowering:
    def lower(node: exp.Expr) -> exp.Expr:
        values = node.this if isinstance(node.this, exp.Expr) else node.expressions[0]
        query = _elements(values)
        query.set("expressions", [function(this=exp.column("_gm_v"))])
        return query.subquery()

    return lower


def _picked(value: exp.Expr, order: exp.Expr | None, where: exp.Expr) -> exp.Expr:
    """The first ``value`` in ``order`` among the rows where ``where`` holds."""
    collected = exp.ArrayAgg(this=exp.Order(this=value, expressions=[order]) if order is not None else value)
    return _first_element(exp.Filter(this=collected, expression=exp.Where(this=where)))


def _arg_extreme(*, largest: bool) -> Lowering:
    """``arg_max(x, y)``: the ``x`` of a row with the largest ``y``, rows with a NULL ``y`` left out."""

    def lower(node: exp.Expr) -> exp.Expr:
        by = node.expression
        order = exp.Ordered(this=by.copy(), desc=largest)
        return _picked(node.this, order, by.copy().is_(exp.null()).not_())

    return lower


def _any_value(node: exp.Expr) -> exp.Expr:
    """``any_value(x)`` (DuckDB skips NULLs): PostgreSQL 15 has no ``any_value``."""
    inner = node.this
    if not isinstance(inner, exp.AnyValue):
        return node
    return _picked(inner.this, None, inner.this.copy().is_(exp.null()).not_())


def _first(node: exp.Expr) -> exp.Expr:
    """``first(x [ORDER BY …])``: NULLs count, as in DuckDB."""
    return _first_element(exp.ArrayAgg(this=node.this))


def _exact_distinct(node: exp.Expr) -> exp.Expr:
    """``approx_count_distinct``: the exact count, which any estimate is allowed to be."""
    return exp.Count(this=exp.Distinct(expressions=[node.this]))


def _as(kind: str) -> Lowering:
    """The same call with its result cast to ``kind`` (DuckDB's result type)."""

    def lower(node: exp.Expr) -> exp.Expr:
        return exp.cast(node, kind)

    return lower


def _integer_division(node: exp.Expr) -> exp.Expr:
    return exp.cast(exp.Anonymous(this="DIV", expressions=[node.this, node.expression]), "BIGINT")


def _parsed_time(node: exp.Expr) -> exp.Expr:
    """``strptime`` without a zone in its format is a naive timestamp in DuckDB."""
    pattern = node.args.get("format")
    if pattern is None or not pattern.is_string or "%z" in pattern.name or "%Z" in pattern.name:
        return node
    return exp.cast(node, "TIMESTAMP")


def _whole_row_source(select: exp.Select) -> exp.Identifier | None:
    """The name a row of ``select``'s only source goes by (its alias, else its table's name)."""
    source = select.args.get("from_")
    if source is None or select.args.get("joins") or select.args.get("group") or select.args.get("distinct"):
        return None
    relation = source.this
    alias = relation.args.get("alias")
    if alias is not None and alias.this:
        return alias.this.copy()
    return relation.this.copy() if isinstance(relation, exp.Table) and relation.name else None


def _star_except_by_row(node: exp.Select) -> exp.Expr:
    """``SELECT * EXCLUDE (c) FROM (SELECT *, … AS c FROM src) n``, the dedupe idiom (and dbt's
    ``unique``), where every excluded column is one the subquery added: PostgreSQL has no
    ``EXCLUDE``, but the subquery can carry ``src``'s whole row, which ``(n._gm_row).*`` expands
    back into its columns, in order, followed by the added columns kept."""
    star = node.expressions[0] if len(node.expressions) == 1 else None
    source = node.args.get("from_")
    if not isinstance(star, exp.Star) or star.args.get("replace") or source is None or node.args.get("joins"):
        return node
    inner = source.this
    if not (isinstance(inner, exp.Subquery) and isinstance(inner.this, exp.Select)):
        return node
    query, excluded = inner.this, {c.name for c in star.args.get("except_") or []}
    first, added = (query.expressions[0], query.expressions[1:]) if query.expressions else (None, [])
    row = _whole_row_source(query)
    names = [e.alias_or_name for e in added]
    if (
        not excluded
        or row is None
        or type(first) is not exp.Star
        or any(first.args.values())
        or not excluded <= set(names)
    ):
        return node
    lowered = node.copy()
    subquery = lowered.args["from_"].this
    if not subquery.alias:
        subquery.set("alias", exp.TableAlias(this=exp.to_identifier("_gm_n")))
    inner_query = subquery.this
    whole = exp.alias_(exp.column(row), "_gm_row", quoted=True)
    inner_query.set("expressions", [whole, *inner_query.expressions[1:]])
    alias = subquery.args["alias"].this
    expanded = exp.Dot(
        this=exp.paren(exp.column(exp.to_identifier("_gm_row", quoted=True), table=alias.copy())),
        expression=exp.Star(),
    )
    kept = [
        exp.column(_output_name(e), table=alias.copy())
        for e in query.expressions[1:]
        if e.alias_or_name not in excluded
    ]
    lowered.set("expressions", [expanded, *kept])
    return lowered


def _output_name(expression: exp.Expr) -> exp.Identifier:
    """The identifier a select-list item is known by outside, as written (quoted or not)."""
    alias = expression.args.get("alias") if isinstance(expression, exp.Alias) else None
    if isinstance(alias, exp.Identifier):
        return alias.copy()
    return exp.to_identifier(expression.alias_or_name, quoted=True)


def _select(node: exp.Expr) -> exp.Expr:
    """``QUALIFY`` over ``*`` (sqlglot's own rewrite would add its window column to the output)
    becomes the star-except idiom, which ``_star_except_by_row`` then spells."""
    if not isinstance(node, exp.Select):
        return node
    if node.args.get("qualify") and any(
        type(e) is exp.Star and not any(e.args.values()) for e in node.expressions
    ):
        rewritten = transforms.eliminate_qualify(node.copy())
        added = rewritten.args["from_"].this.this.expressions
        windows = [e.alias for e in added if isinstance(e, exp.Alias) and e.alias.startswith("_w")]
        if windows and isinstance(rewritten, exp.Select):
            rewritten.set("expressions", [exp.Star(except_=[exp.column(w) for w in windows])])
            return _star_except_by_row(rewritten)
    return _star_except_by_row(node)


POSTGRES: dict[type[exp.Expr], Lowering] = {
    **dict.fromkeys(_PARTS, _date_part),
    exp.Extract: _extract,
    exp.Select: _select,
    exp.Monthname: _to_char("FMMonth"),
    exp.Dayname: _to_char("FMDay"),
    exp.Explode: _series_rows,
    exp.DateFromParts: _make_date,
    exp.EndsWith: _ends_with,
    exp.Contains: _contains,
    exp.Split: _split,
    exp.RegexpExtract: _regexp_extract,
    exp.SHA2: _sha256,
    exp.ArraySort: _sorted_list,
    exp.ArrayDistinct: _distinct_list,
    exp.ArrayMax: _list_aggregate(exp.Max),
    exp.ArrayMin: _list_aggregate(exp.Min),
    exp.ArgMax: _arg_extreme(largest=True),
    exp.ArgMin: _arg_extreme(largest=False),
    exp.IgnoreNulls: _any_value,
    exp.First: _first,
    exp.ApproxDistinct: _exact_distinct,
    exp.IntDiv: _integer_division,
    exp.StrToTime: _parsed_time,
    exp.Log: _as("DOUBLE PRECISION"),
    exp.Avg: _as("DOUBLE PRECISION"),
    exp.Stddev: _as("DOUBLE PRECISION"),
    exp.StddevSamp: _as("DOUBLE PRECISION"),
    exp.StddevPop: _as("DOUBLE PRECISION"),
    exp.Variance: _as("DOUBLE PRECISION"),
    exp.VariancePop: _as("DOUBLE PRECISION"),
}
"""PostgreSQL's spelling of model functions, by sqlglot node."""

POSTGRES_BY_NAME: dict[str, Lowering] = {
    "DATE_PART": _date_part_call,
    "DATEPART": _date_part_call,
    "LIST_SUM": _list_aggregate(exp.Sum),
}
"""… and of calls sqlglot keeps as anonymous functions, by name."""


# --- constructs with no form ------------------------------------------------------------------

_DUCKDB_ONLY = {
    "LIST_AGGREGATE",
    "LIST_REDUCE",
    "YEARWEEK",
    "DATE_SUB",
    "EPOCH_MS",
    "EPOCH_US",
    "EPOCH_NS",
    "STRUCT_PACK",
    "LIST_ZIP",
    "MAP_FROM_ENTRIES",
    "HISTOGRAM",
    "BAR",
    "FORMAT",
    "PRINTF",
}
"""DuckDB functions sqlglot keeps by name for which PostgreSQL has no function of that name."""


def postgres_no_form(node: exp.Expr) -> str | None:
    """What in ``node`` (already lowered) PostgreSQL cannot spell, or None."""
    if isinstance(node, exp.Star) and (node.args.get("except_") or node.args.get("replace")):
        which = "EXCLUDE" if node.args.get("except_") else "REPLACE"
        return f"SELECT * {which} (…) has no PostgreSQL form (list the columns)"
    if isinstance(node, exp.TryCast):
        return "TRY_CAST has no PostgreSQL form (a failed cast is an error there, not NULL)"
    if isinstance(node, exp.Anonymous) and str(node.this).upper() in _DUCKDB_ONLY:
        return f"{str(node.this).lower()} has no PostgreSQL form"
    if isinstance(node, exp.Lambda) and not isinstance(node.parent, exp.Transform | exp.ArrayFilter):
        parent = node.parent
        holder = (parent.name or parent.key) if parent is not None else "a lambda"
        return f"{holder.lower()} (with a lambda) has no PostgreSQL form"
    return None
