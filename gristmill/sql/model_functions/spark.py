"""Model functions (DuckDB's spelling) as Spark SQL 4 spells them, computing DuckDB's values with
DuckDB's types; each is run on Spark against DuckDB in ``tests/unit/sql/test_spark_model_functions.py``.

A target's session keeps Spark's ANSI mode (its default): an overflowing sum or a failing
``CAST`` is an error there as in DuckDB, where a non-ANSI session would give NULL or wrap around
silently. The three operators where DuckDB gives NULL instead of failing are lowered to Spark's
tolerant forms: ``%`` and ``//`` by zero give NULL as in DuckDB, and ``/`` by zero gives NULL
(DuckDB gives ±Infinity or NaN, IEEE's answers; Spark's division has no such result).

Timestamps: DuckDB's ``TIMESTAMP`` is Spark's ``TIMESTAMP_NTZ`` (sqlglot spells casts so), and
Spark functions that hand back a timestamp of their own (``date_trunc``, ``to_timestamp``, date
arithmetic) are made to give the naive type DuckDB gives; ``TIMESTAMPTZ`` is ``TIMESTAMP_LTZ``
(instants, shown in the session's zone, UTC).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp, transforms

Lowering = Callable[[exp.Expr], exp.Expr]

NAIVE = "TIMESTAMP_NTZ"

# DuckDB's date part -> Spark's function giving it (as an INT; DuckDB's is a BIGINT).
_PART_FUNCTIONS: dict[str, str] = {
    "YEAR": "YEAR",
    "QUARTER": "QUARTER",
    "MONTH": "MONTH",
    "WEEK": "WEEKOFYEAR",  # ISO week in both engines
    "DAY": "DAY",
    "DAYOFYEAR": "DAYOFYEAR",
    "DOY": "DAYOFYEAR",
    "HOUR": "HOUR",
    "MINUTE": "MINUTE",
    "SECOND": "SECOND",  # whole seconds, as DuckDB's second()
}
_PARTS: dict[type[exp.Expr], str] = {
    exp.Year: "YEAR",
    exp.Quarter: "QUARTER",
    exp.Month: "MONTH",
    exp.Week: "WEEK",
    exp.WeekOfYear: "WEEK",
    exp.Day: "DAY",
    exp.DayOfMonth: "DAY",
    exp.DayOfWeek: "DOW",
    exp.DayOfWeekIso: "ISODOW",
    exp.DayOfYear: "DOY",
    exp.Hour: "HOUR",
    exp.Minute: "MINUTE",
    exp.Second: "SECOND",
}
_PART_NAMES = {"DAYOFWEEK": "DOW", "WEEKDAY": "DOW", "DAYOFMONTH": "DAY", "ISOWEEK": "WEEK"}


def _part(part: str, value: exp.Expr) -> exp.Expr | None:
    """``part`` of ``value`` as DuckDB gives it (a BIGINT), or None for a part left as written."""
    part = _PART_NAMES.get(part, part)
    if part == "DOW":  # Sunday = 0 in DuckDB, 1 in Spark
        number: exp.Expr = exp.Sub(
            this=exp.Anonymous(this="DAYOFWEEK", expressions=[value]), expression=exp.Literal.number(1)
        )
    elif part == "ISODOW":  # Monday = 1; Spark's WEEKDAY counts from Monday = 0
        number = exp.Add(
            this=exp.Anonymous(this="WEEKDAY", expressions=[value]), expression=exp.Literal.number(1)
        )
    elif part in _PART_FUNCTIONS:
        number = exp.Anonymous(this=_PART_FUNCTIONS[part], expressions=[value])
    else:
        return None
    return exp.cast(number, "BIGINT")


def _date_part(node: exp.Expr) -> exp.Expr:
    return _part(_PARTS[type(node)], node.this) or node


def _extract(node: exp.Expr) -> exp.Expr:
    return _part(node.this.name.upper(), node.expression) or node


def _date_part_call(node: exp.Expr) -> exp.Expr:
    """``date_part('year', x)`` / ``datepart('dow', x)`` with a literal part."""
    if len(node.expressions) != 2 or not node.expressions[0].is_string:
        return node
    return _part(node.expressions[0].name.upper(), node.expressions[1]) or node


def _date_format(pattern: str) -> Lowering:
    def lower(node: exp.Expr) -> exp.Expr:
        return exp.Anonymous(this="DATE_FORMAT", expressions=[node.this, exp.Literal.string(pattern)])

    return lower


def _zoned(value: exp.Expr) -> bool:
    """Whether ``value`` is visibly a ``TIMESTAMPTZ`` (a cast to it, already lowered or not),
    DuckDB's zoned type."""
    zoned = (exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.TIMESTAMPLTZ)
    if isinstance(value, exp.CurrentTimestamp):  # DuckDB's now() is a TIMESTAMPTZ
        return True
    return isinstance(value, exp.Cast) and value.to.is_type(*zoned)


def _naive(node: exp.Expr, value: exp.Expr) -> exp.Expr:
    """``node`` (a timestamp Spark gives as TIMESTAMP_LTZ) as DuckDB's naive TIMESTAMP, unless
    its input is visibly zoned. Spark's session zone is UTC: the wall-clock time is unchanged."""
    return node if _zoned(value) else exp.cast(node, NAIVE)


def _truncated(node: exp.Expr) -> exp.Expr:
    """``date_trunc``: Spark's is always TIMESTAMP_LTZ; DuckDB's is a TIMESTAMP for a date or a
    timestamp."""
    return _naive(node, node.this)


def _shifted(node: exp.Expr) -> exp.Expr:
    """``date ± INTERVAL``: a TIMESTAMP in DuckDB, a DATE in Spark (for day-sized intervals)."""
    value, interval = node.this, node.expression
    if not isinstance(interval, exp.Interval) or _zoned(value):
        return node
    if isinstance(value, exp.Cast) and value.to.is_type(exp.DataType.Type.TIMESTAMPNTZ):
        return node
    lowered = node.copy()
    lowered.set("this", exp.cast(lowered.this, NAIVE))
    return lowered


_BOUNDARY_UNITS = {"YEAR", "QUARTER", "MONTH", "HOUR", "MINUTE", "SECOND"}


def _difference(node: exp.Expr) -> exp.Expr:
    """``date_diff(unit, a, b)``: DuckDB counts the unit's boundaries crossed from ``a`` to ``b``
    (days by date, weeks as whole days over 7); Spark's ``timestampdiff`` counts whole units."""
    unit = node.args.get("unit")
    name = (unit.name if unit is not None else "DAY").upper().rstrip("S")
    start, end = node.expression, node.this
    if name in _BOUNDARY_UNITS:
        bounds = [exp.TimestampTrunc(this=v, unit=exp.var(name)) for v in (start, end)]
        return exp.Anonymous(this="TIMESTAMPDIFF", expressions=[exp.var(name), *bounds])
    days = exp.Anonymous(this="DATEDIFF", expressions=[end, start])
    if name == "DAY":
        return exp.cast(days, "BIGINT")
    if name == "WEEK":
        return exp.cast(exp.IntDiv(this=days, expression=exp.Literal.number(7)), "BIGINT")
    return exp.Anonymous(this="TIMESTAMPDIFF", expressions=[exp.var(name), start, end])


def _parsed_time(node: exp.Expr) -> exp.Expr:
    """``strptime`` without a zone in its format is a naive timestamp in DuckDB."""
    pattern = node.args.get("format")
    if pattern is None or not pattern.is_string or "%z" in pattern.name or "%Z" in pattern.name:
        return node
    return exp.cast(node, NAIVE)


def _element(node: exp.Expr) -> exp.Expr:
    """``l[i]``, 1-based and negative from the end: NULL out of range (and for 0) as in DuckDB,
    where Spark's ANSI mode raises. sqlglot keeps the index 0-based (``i - 1``); an index that
    is not a number (a map's or struct's key) is left alone."""
    if len(node.expressions) != 1:
        return node
    index = node.expressions[0]
    if index.is_string or isinstance(index, exp.Slice):
        return node
    if index.is_int:
        position: exp.Expr = exp.Literal.number(int(index.name) + 1)
    elif isinstance(index, exp.Neg) and index.this.is_int:
        position = exp.Literal.number(1 - int(index.this.name))
    elif isinstance(index, exp.Sub) and index.expression.is_int and index.expression.name == "1":
        position = index.this
    else:
        return node
    if position.is_int and position.name == "0":
        return exp.Null()
    return exp.Anonymous(this="TRY_ELEMENT_AT", expressions=[node.this, position])


def _division(node: exp.Expr) -> exp.Expr:
    """``a / b``: a DOUBLE in DuckDB whatever the operands (Spark keeps decimals decimal); by zero
    NULL, not Spark's error."""
    operands = [exp.cast(side, "DOUBLE") for side in (node.this, node.expression)]
    return exp.Anonymous(this="TRY_DIVIDE", expressions=operands)


def _integer_division(node: exp.Expr) -> exp.Expr:
    """``a // b``: NULL by zero as in DuckDB (Spark's ``DIV`` raises)."""
    divisor = exp.Nullif(this=node.expression, expression=exp.Literal.number(0))
    return exp.IntDiv(this=node.this, expression=divisor)


def _remainder(node: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this="TRY_MOD", expressions=[node.this, node.expression])


def _lambda(body: Callable[..., exp.Expr], *names: str) -> exp.Lambda:
    params = [exp.to_identifier(n) for n in names]
    return exp.Lambda(this=body(*(exp.column(n) for n in names)), expressions=params)


def _distinct_list(node: exp.Expr) -> exp.Expr:
    """``list_distinct`` leaves NULLs out in DuckDB; Spark keeps one."""
    distinct = exp.Anonymous(this="ARRAY_DISTINCT", expressions=[node.this])
    kept = _lambda(lambda v: v.is_(exp.null()).not_(), "_gm_v")
    return exp.ArrayFilter(this=distinct, expression=kept)


def _list_sum(node: exp.Expr) -> exp.Expr:
    """``list_sum``: the sum of the non-NULL elements, NULL when there are none. The fold starts
    from a NULL of the element's type (``IF(FALSE, l[1], NULL)``)."""
    values = node.expressions[0]
    start = exp.If(
        this=exp.false(),
        true=exp.Anonymous(this="TRY_ELEMENT_AT", expressions=[values.copy(), exp.Literal.number(1)]),
        false=exp.null(),
    )

    def step(total: exp.Expr, value: exp.Expr) -> exp.Expr:
        added = exp.Add(this=exp.Coalesce(this=total, expressions=[exp.Literal.number(0)]), expression=value)
        return exp.If(this=value.copy().is_(exp.null()), true=total.copy(), false=added)

    return exp.Anonymous(this="AGGREGATE", expressions=[values, start, _lambda(step, "_gm_t", "_gm_v")])


def _comparator(orders: list[exp.Ordered]) -> exp.Lambda:
    """``(a, b) -> -1 | 0 | 1`` over the collected structs' ``_gm_k<i>`` fields, in ``orders``."""
    result: exp.Expr = exp.Literal.number(0)
    for index in reversed(range(len(orders))):
        field = exp.to_identifier(f"_gm_k{index}")
        desc = bool(orders[index].args.get("desc"))
        nulls_first = bool(orders[index].args.get("nulls_first"))
        left, right = (exp.Dot(this=exp.column(side), expression=field.copy()) for side in ("_gm_a", "_gm_b"))
        before, after = (exp.Literal.number(-1), exp.Literal.number(1))
        null_left = after if not nulls_first else before
        smaller = before if not desc else after
        result = (
            exp.Case()
            .when(exp.and_(left.copy().is_(exp.null()), right.copy().is_(exp.null())), result)
            .when(left.copy().is_(exp.null()), null_left.copy())
            .when(right.copy().is_(exp.null()), exp.Neg(this=null_left.copy()))
            .when(exp.LT(this=left.copy(), expression=right.copy()), smaller.copy())
            .when(exp.GT(this=left.copy(), expression=right.copy()), exp.Neg(this=smaller.copy()))
            .else_(result)
        )
    return exp.Lambda(this=result, expressions=[exp.to_identifier("_gm_a"), exp.to_identifier("_gm_b")])


def _ordered_values(value: exp.Expr, orders: list[exp.Ordered]) -> exp.Expr:
    """Every row's ``value`` (NULLs too, as DuckDB's ``list``), in ``orders``: Spark's
    ``collect_list`` drops NULLs and takes no ORDER BY, so it collects structs and sorts them."""
    fields = [exp.alias_(o.this.copy(), f"_gm_k{i}") for i, o in enumerate(orders)]
    collected = exp.Anonymous(
        this="COLLECT_LIST", expressions=[exp.Struct(expressions=[*fields, exp.alias_(value, "_gm_v")])]
    )
    if orders:
        collected = exp.Anonymous(this="ARRAY_SORT", expressions=[collected, _comparator(orders)])
    field = _lambda(lambda e: exp.Dot(this=e, expression=exp.to_identifier("_gm_v")), "_gm_e")
    return exp.Transform(this=collected, expression=field)


def _split_order(node: exp.Expr) -> tuple[exp.Expr, list[exp.Ordered]]:
    inner = node.this
    if isinstance(inner, exp.Order):
        return inner.this, list(inner.expressions)
    return inner, []


def _list_aggregate(node: exp.Expr) -> exp.Expr:
    """``list(x [ORDER BY …])`` / ``array_agg``."""
    if isinstance(node.this, exp.Distinct):
        return node
    value, orders = _split_order(node)
    return _ordered_values(value, orders)


def _first(node: exp.Expr) -> exp.Expr:
    """``first(x ORDER BY …)``: Spark's ``first`` takes no ORDER BY; NULLs count, as in DuckDB."""
    value, orders = _split_order(node)
    if not orders:
        return node
    values = _ordered_values(value, orders)
    return exp.Anonymous(this="TRY_ELEMENT_AT", expressions=[values, exp.Literal.number(1)])


def _first_only(node: exp.Expr) -> exp.Expr:
    """``regexp_replace`` without the ``'g'`` option replaces the first match only in DuckDB (all
    of them in Spark), and writes a group as ``\\1`` where Spark writes ``$1``."""
    modifiers = node.args.get("modifiers")
    pattern, replacement = node.expression, node.args.get("replacement")
    if replacement is None or not replacement.is_string or not pattern.is_string:
        return node
    global_ = modifiers is not None and modifiers.is_string and "g" in modifiers.name
    text = _spark_replacement(replacement.name, shift=0 if global_ else 1)
    lowered = exp.RegexpReplace(
        this=node.this, expression=pattern.copy(), replacement=exp.Literal.string(text)
    )
    if global_:
        return lowered
    lowered.set("expression", exp.Literal.string(f"^(?s:(.*?))(?:{pattern.name})"))
    lowered.set("replacement", exp.Literal.string("$1" + text))
    return lowered


def _spark_replacement(text: str, *, shift: int) -> str:
    """DuckDB's (RE2's) replacement text as Java's: ``\\N`` is group N (``$N+shift``), ``$`` is
    literal."""
    out, index = [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1].isdigit():
            out.append(f"${int(text[index + 1]) + shift}")
            index += 2
            continue
        if char == "\\" and index + 1 < len(text):
            out.append("\\" + text[index + 1])
            index += 2
            continue
        out.append("\\$" if char == "$" else char)
        index += 1
    return "".join(out)


def _cut(node: exp.Expr) -> exp.Expr:
    """``left(s, -n)`` / ``right(s, -n)``: all but the last (first) ``n`` characters in DuckDB,
    '' in Spark."""
    count = node.expression
    if not (isinstance(count, exp.Neg) and count.this.is_int):
        return node
    kept = exp.Anonymous(
        this="GREATEST",
        expressions=[
            exp.Sub(this=exp.Length(this=node.this.copy()), expression=count.this.copy()),
            exp.Literal.number(0),
        ],
    )
    return type(node)(this=node.this, expression=kept)


_PLACEHOLDER = "{}"


def _format(node: exp.Expr) -> exp.Expr:
    """``format('{}-{}', …)`` (fmt's placeholders) as ``format_string('%s-%s', …)``; a format
    with other fmt syntax is left for ``spark_no_form`` to name."""
    pattern = node.this
    if not pattern.is_string:
        return node
    text = pattern.name
    if "%" in text or text.replace(_PLACEHOLDER, "").count("{") or text.replace(_PLACEHOLDER, "").count("}"):
        return node
    spelled = exp.Literal.string(text.replace(_PLACEHOLDER, "%s"))
    return exp.Anonymous(this="FORMAT_STRING", expressions=[spelled, *node.expressions])


def _rounding(value: exp.Expr) -> type[exp.Func] | None:
    """How DuckDB rounds ``value`` cast to an integer, when it visibly may have a fraction: a
    DOUBLE (a division, an average) half to even, a DECIMAL (a literal, a product) half away
    from zero. None when no fraction is visible (rounding a whole number changes nothing)."""
    if isinstance(value, exp.Neg):
        value = value.this
    if isinstance(value, exp.Cast) and value.to.is_type(*exp.DataType.REAL_TYPES):
        return exp.Round if value.to.is_type(exp.DataType.Type.DECIMAL) else exp.Anonymous
    if isinstance(value, exp.Div | exp.Avg) or (
        isinstance(value, exp.Anonymous) and value.name.upper() == "TRY_DIVIDE"
    ):
        return exp.Anonymous
    if (value.is_number and not value.is_int) or isinstance(value, exp.Mul):
        return exp.Round
    return None


def _whole_number(node: exp.Expr) -> exp.Expr:
    """A cast of a visible fraction to an integer type rounds in DuckDB; Spark truncates. A
    column's type is not known here: ``CAST(price AS INTEGER)`` of a DECIMAL column still
    truncates on Spark (docs/engines.md lists it)."""
    if not isinstance(node, exp.Cast | exp.TryCast) or not node.to.is_type(*exp.DataType.INTEGER_TYPES):
        return node
    rounding = _rounding(node.this)
    if rounding is None:
        return node
    rounded = node.copy()
    if rounding is exp.Round:
        rounded.set("this", exp.Round(this=node.this.copy()))
    else:
        rounded.set("this", exp.Anonymous(this="BROUND", expressions=[node.this.copy()]))
    return rounded


def _json_value(node: exp.Expr) -> exp.Expr:
    """``json_extract`` / ``->``: the value as JSON text (a string keeps its quotes, as DuckDB),
    where Spark's ``get_json_object`` unquotes strings."""
    path = node.expression
    text = path.sql(dialect="spark") if isinstance(path, exp.JSONPath) else None
    if text is None or not text.startswith("'$"):
        return node
    parsed = exp.Anonymous(this="TRY_PARSE_JSON", expressions=[node.this])
    picked = exp.Anonymous(this="VARIANT_GET", expressions=[parsed, exp.Literal.string(text.strip("'"))])
    return exp.Anonymous(this="TO_JSON", expressions=[picked])


def _quantile(node: exp.Expr) -> exp.Expr:
    """``quantile_cont(x, q)`` / ``quantile_disc``: Spark takes the fraction in the call and the
    value in ``WITHIN GROUP``."""
    if node.expression is None or isinstance(node.parent, exp.WithinGroup):
        return node
    name = "PERCENTILE_CONT" if isinstance(node, exp.PercentileCont) else "PERCENTILE_DISC"
    call = exp.Anonymous(this=name, expressions=[node.expression])
    order = exp.Order(expressions=[exp.Ordered(this=node.this, nulls_first=False)])
    return exp.WithinGroup(this=call, expression=order)


def _try_cast(node: exp.Expr) -> exp.Expr:
    """``TRY_CAST``: sqlglot writes it as ``CAST`` for Spark unless marked safe (in ANSI mode that
    fails where DuckDB gives NULL). A visible fraction is rounded as a cast rounds it."""
    node = _whole_number(node)
    if node.args.get("safe"):
        return node
    safe = node.copy()
    safe.set("safe", True)
    return safe


def _renamed(name: str) -> Lowering:
    def lower(node: exp.Expr) -> exp.Expr:
        return exp.Anonymous(this=name, expressions=node.expressions)

    return lower


def _as(kind: str) -> Lowering:
    """The same call with its result cast to ``kind`` (DuckDB's result type)."""

    def lower(node: exp.Expr) -> exp.Expr:
        return exp.cast(node, kind)

    return lower


def _types(node: exp.Expr) -> exp.Expr:
    """DuckDB's ``TIMESTAMPTZ`` is Spark's ``TIMESTAMP_LTZ`` and its ``TIMESTAMP`` (built by code;
    parsed ones are already ``TIMESTAMP_NTZ``) Spark's ``TIMESTAMP_NTZ``, said so: Spark's bare
    ``TIMESTAMP`` is whichever ``spark.sql.timestampType`` names."""
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.TIMESTAMPTZ:
        return exp.DataType.build("TIMESTAMPLTZ")
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.TIMESTAMP:
        return exp.DataType.build("TIMESTAMPNTZ")
    return node


def _qualify(node: exp.Expr) -> exp.Expr:
    """``QUALIFY`` as a filter over a subquery with the window columns, which the output then
    drops (``* EXCEPT``) and orders by: sqlglot's own rewrite (Spark's generator runs it) keeps the
    window columns in the output and the ORDER BY inside the subquery."""
    if not isinstance(node, exp.Select) or not node.args.get("qualify"):
        return node
    order, limit = node.args.get("order"), node.args.get("limit")
    plain = node.copy()
    plain.set("order", None)
    plain.set("limit", None)
    rewritten = transforms.eliminate_qualify(plain)
    if not isinstance(rewritten, exp.Select):
        return node
    inner = rewritten.args["from_"].this.this
    windows = [e.alias for e in inner.expressions if isinstance(e, exp.Alias) and e.alias.startswith("_w")]
    if any(type(e) is exp.Star for e in rewritten.expressions) and windows:
        rewritten.set("expressions", [exp.Star(except_=[exp.column(w) for w in windows])])
    outputs = {e.alias_or_name for e in node.expressions}
    if order is not None:
        moved = order.copy()
        for column in moved.find_all(exp.Column):
            if column.table and column.name in outputs:
                column.set("table", None)
        rewritten.set("order", moved)
    if limit is not None:
        rewritten.set("limit", limit.copy())
    return rewritten


def _sign(node: exp.Expr) -> exp.Expr:
    """DuckDB's sign() is a TINYINT for every argument; Spark's is a DOUBLE (``1.0``)."""
    return exp.cast(node, "TINYINT")


SPARK: dict[type[exp.Expr], Lowering] = {
    **dict.fromkeys(_PARTS, _date_part),
    exp.Sign: _sign,
    exp.Extract: _extract,
    exp.Monthname: _date_format("MMMM"),
    exp.Dayname: _date_format("EEEE"),
    exp.TimestampTrunc: _truncated,
    exp.DateTrunc: _truncated,
    exp.Add: _shifted,
    exp.Sub: _shifted,
    exp.DateDiff: _difference,
    exp.StrToTime: _parsed_time,
    exp.Bracket: _element,
    exp.Div: _division,
    exp.IntDiv: _integer_division,
    exp.Mod: _remainder,
    exp.ArrayDistinct: _distinct_list,
    exp.ArrayAgg: _list_aggregate,
    exp.First: _first,
    exp.RegexpReplace: _first_only,
    exp.JSONExtract: _json_value,
    exp.TryCast: _try_cast,
    exp.Avg: _as("DOUBLE"),
    exp.PercentileCont: _quantile,
    exp.PercentileDisc: _quantile,
    exp.TimestampFromParts: _as(NAIVE),
    exp.Left: _cut,
    exp.Right: _cut,
    exp.Format: _format,
    exp.Length: _as("BIGINT"),
    exp.StrPosition: _as("BIGINT"),
    exp.ArraySize: _as("BIGINT"),
}
"""Spark's spelling of model functions, by sqlglot node."""

SPARK_SELECT = _qualify
"""The rewrite of a whole ``SELECT`` (``sql.functions`` chains it with its own)."""

SPARK_TYPES = _types
SPARK_CAST = _whole_number

SPARK_BY_NAME: dict[str, Lowering] = {
    "DATE_PART": _date_part_call,
    "DATEPART": _date_part_call,
    "LIST_SUM": _list_sum,
    "LIST_REVERSE": _renamed("REVERSE"),
    "ARRAY_REVERSE": _renamed("REVERSE"),
}
"""… and of calls sqlglot keeps as anonymous functions, by name."""


# --- constructs with no form ------------------------------------------------------------------

_DUCKDB_ONLY = {
    "LIST_AGGREGATE",
    "YEARWEEK",
    "EPOCH_MS",
    "EPOCH_US",
    "EPOCH_NS",
    "STRUCT_PACK",
    "HISTOGRAM",
    "BAR",
}
"""DuckDB functions sqlglot keeps by name for which Spark has no function of that name."""


def spark_no_form(node: exp.Expr) -> str | None:
    """What in ``node`` (already lowered) Spark cannot spell, or None."""
    if isinstance(node, exp.Star) and node.args.get("replace"):
        return "SELECT * REPLACE (…) has no Spark form (list the columns)"
    if isinstance(node, exp.Union) and node.args.get("by_name"):
        return "UNION BY NAME has no Spark SQL form (list the columns in the same order)"
    if isinstance(node, exp.Format):
        return "format() with fmt options beyond {} has no Spark form (use printf's %s)"
    if isinstance(node, exp.Anonymous) and str(node.this).upper() in _DUCKDB_ONLY:
        return f"{str(node.this).lower()} has no Spark form"
    return None
