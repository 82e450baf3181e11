"""Portable SQL functions: operations the platform needs that engines spell differently.

Builders elsewhere (``sql/``, ``checks/``, ``runtime/``, ``state/``, the stream loop) never write an
engine's function name: they call the helpers here, which return sqlglot's own dialect-neutral
nodes (``exp.DateBin``, ``exp.StructExtract``, ``exp.JSONFormat``, …). sqlglot's generators spell
most of them for each dialect; where a generator's spelling is wrong or missing for an engine we
run on, ``LOWERINGS`` rewrites the node for that dialect, and ``sql.render.render`` — the one place
a dialect is named — applies it. Adding an engine means adding its entries here, not editing every
builder.

sqlglot has no node for a few operations (a number from an MD5, a row digest, "any element of a
list is true", the positions of a list): those are function calls named as the first engine
(DuckDB) spells them, so that text rendered without lowering still runs there, and every other
dialect rewrites them by name (the ``exp.Anonymous`` entries). DuckDB therefore has no entry in
``LOWERINGS``: every helper's plain spelling is its own.

Postgres and Spark entries cover what the platform's statements use; what they cannot express
(a session window without its source's column list needs ``* EXCLUDE``) is said where it is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlglot import exp

from gristmill.sql import model_functions, value_checks
from gristmill.sql.model_functions import spark as spark_model_functions

TIME_BUCKET_ORIGIN = "2000-01-03 00:00:00"
"""Where time buckets are aligned (the first engine's default: a Monday); a bucket starts at
``TIME_BUCKET_ORIGIN + k * width``."""
_ORIGIN_MICROS = 946_857_600_000_000
"""``TIME_BUCKET_ORIGIN`` in microseconds since the Unix epoch."""
_MICROS = {"MICROSECOND": 1, "MILLISECOND": 1000, "SECOND": 1_000_000, "MINUTE": 60_000_000}
_MICROS |= {"HOUR": 3_600_000_000, "DAY": 86_400_000_000}

MD5_NUMBER = "MD5_NUMBER"
ROW_DIGEST = "HASH"
LIST_ANY = "LIST_BOOL_OR"
LIST_POSITIONS = "GENERATE_SUBSCRIPTS"
MERGE_PATCH = "JSON_MERGE_PATCH"


def micros(span: timedelta) -> int:
    """A span in whole microseconds, never zero (a zero-width window has no meaning)."""
    return int(span.total_seconds() * 1_000_000) or 1


def interval(span: timedelta) -> exp.Interval:
    """A fixed-length interval: whole seconds when it is that, else microseconds."""
    count = micros(span)
    if count % 1_000_000 == 0:
        return exp.Interval(this=exp.Literal.string(str(count // 1_000_000)), unit=exp.var("SECOND"))
    return exp.Interval(this=exp.Literal.string(str(count)), unit=exp.var("MICROSECOND"))


def time_bucket(timestamp: exp.Expr, width: timedelta) -> exp.Expr:
    """The start of the ``width``-wide window holding ``timestamp``, windows aligned to
    ``TIME_BUCKET_ORIGIN``."""
    return exp.DateBin(this=interval(width), expression=timestamp)


END_OF_TIME = "infinity"
LAST_MOMENT = "294247-01-01 00:00:00+00"


def truncate_to(grain: str, value: exp.Expr) -> exp.Expr:
    """The first day of the ``grain`` (day, week, month, quarter, year) holding ``value``, as a
    date: weeks start on Monday on every engine."""
    return exp.cast(exp.TimestampTrunc(this=value, unit=exp.var(grain.upper())), "DATE")


def end_of_time() -> exp.Expr:
    """A zoned timestamp after every other: the open end of a validity range."""
    return exp.cast(exp.Literal.string(END_OF_TIME), "TIMESTAMPTZ")


def last_moment() -> exp.Expr:
    """The latest finite zoned timestamp the first engine holds: before ``end_of_time()``."""
    return exp.cast(exp.Literal.string(LAST_MOMENT), "TIMESTAMPTZ")


def struct_field(value: exp.Expr, name: str) -> exp.Expr:
    """Field ``name`` of the struct ``value``."""
    return exp.StructExtract(this=value, expression=exp.Literal.string(name))


def struct_of(fields: Sequence[tuple[str, exp.Expr]]) -> exp.Struct:
    """A struct of named values, in the order given."""
    return exp.Struct(
        expressions=[
            exp.PropertyEQ(this=exp.to_identifier(name, quoted=True), expression=v) for name, v in fields
        ]
    )


def to_json(value: exp.Expr) -> exp.Expr:
    """``value`` (a struct, list or scalar) as JSON text."""
    return exp.JSONFormat(this=value)


def row_json(alias: str) -> exp.Expr:
    """The whole row of the relation aliased ``alias`` as JSON text (an object keyed by column)."""
    node = exp.JSONFormat(this=exp.column(alias))
    node.meta["row"] = True  # ``this`` names a relation, not a value (spelt apart where it matters)
    return node


def md5(text: exp.Expr) -> exp.Expr:
    """The MD5 of ``text`` as 32 lowercase hex digits."""
    return exp.MD5(this=text)


def hash_number(text: exp.Expr) -> exp.Expr:
    """The MD5 of ``text`` as a number, for a cheap stable choice (bucketing, sampling by key).
    Its width is the engine's (128 bits where there is a type that holds them, else the first
    64): compare such numbers only within one engine."""
    return exp.Anonymous(this=MD5_NUMBER, expressions=[text])


def row_digest(*values: exp.Expr) -> exp.Expr:
    """A fast non-cryptographic hash of several values, as a number: two rows with the same
    values in one engine hash alike (the number differs between engines)."""
    return exp.Anonymous(this=ROW_DIGEST, expressions=list(values))


def epoch_seconds(value: exp.Expr) -> exp.Expr:
    """A timestamp (or date) as seconds since the Unix epoch, with its fraction."""
    return exp.TimeToUnix(this=value)


def at_utc(value: exp.Expr) -> exp.Expr:
    """A naive timestamp read as UTC (a zoned one), or a zoned timestamp as UTC wall time."""
    return exp.AtTimeZone(this=value, zone=exp.Literal.string("UTC"))


def list_transform(values: exp.Expr, name: str, body: exp.Expr) -> exp.Expr:
    """Each element of the list ``values``, bound to ``name``, mapped through ``body``."""
    return exp.Transform(this=values, expression=exp.Lambda(this=body, expressions=[exp.to_identifier(name)]))


def list_any(values: exp.Expr) -> exp.Expr:
    """True when some element of a list of booleans is true (NULL elements do not count)."""
    return exp.Anonymous(this=LIST_ANY, expressions=[values])


def unnest(values: exp.Expr) -> exp.Expr:
    """One row per element of a list, in a select list."""
    return exp.Explode(this=values)


def list_positions(values: exp.Expr) -> exp.Expr:
    """Beside ``unnest(values)`` in the same select list: each element's 1-based position."""
    return exp.Anonymous(this=LIST_POSITIONS, expressions=[values, exp.Literal.number(1)])


def merge_patch(target: exp.Expr, patch: exp.Expr) -> exp.Expr:
    """JSON ``target`` with the RFC 7396 merge patch ``patch`` applied (a NULL field removes)."""
    return exp.Anonymous(this=MERGE_PATCH, expressions=[target, patch])


# --- lowerings --------------------------------------------------------------------------------


def _width_micros(width: exp.Expr) -> int:
    """The microseconds of an interval built by ``interval``."""
    assert isinstance(width, exp.Interval)
    unit = width.text("unit").upper().rstrip("S")
    return int(width.name) * _MICROS[unit]


def _bucket_by_arithmetic(node: exp.Expr) -> exp.Expr:
    """A time bucket as arithmetic on microseconds since the epoch, for engines without one."""
    width = exp.Literal.number(_width_micros(node.this))
    since = exp.Sub(this=exp.UnixMicros(this=node.expression), expression=exp.Literal.number(_ORIGIN_MICROS))
    offset = exp.Anonymous(this="PMOD", expressions=[since, width])
    start = exp.Sub(this=exp.UnixMicros(this=node.expression.copy()), expression=offset)
    return exp.UnixToTime(this=start, scale=exp.UnixToTime.MICROS)


def _bucket_with_origin(node: exp.Expr) -> exp.Expr:
    """A time bucket with its origin spelled out, for engines that require one."""
    if node.args.get("origin") is not None:
        return node
    lowered = node.copy()
    lowered.set("origin", exp.cast(exp.Literal.string(TIME_BUCKET_ORIGIN), "TIMESTAMP"))
    return lowered


def _field_access(*, parenthesise: bool) -> Lowering:
    def lower(node: exp.Expr) -> exp.Expr:
        value = exp.paren(node.this, copy=False) if parenthesise else node.this
        return exp.Dot(this=value, expression=exp.to_identifier(node.expression.name, quoted=True))

    return lower


def _json_text(node: exp.Expr) -> exp.Expr:
    value = node.this
    built = isinstance(value, exp.Anonymous) and value.name.upper() == "JSONB_BUILD_OBJECT"
    if not (built or isinstance(value, exp.Struct)):
        value = exp.Anonymous(this="TO_JSONB", expressions=[value])
    return exp.cast(value, "TEXT")


def _json_object(node: exp.Expr) -> exp.Expr:
    pairs: list[exp.Expr] = []
    for field in node.expressions:
        pairs += [exp.Literal.string(field.this.name), field.expression]
    return exp.Anonymous(this="JSONB_BUILD_OBJECT", expressions=pairs)


def _first_64_bits(text: exp.Expr) -> exp.Expr:
    """The first 16 hex digits of an MD5 as a signed 64-bit number."""
    hex_digits = exp.Substring(
        this=exp.MD5(this=text), start=exp.Literal.number(1), length=exp.Literal.number(16)
    )
    bits = exp.DataType(
        this=exp.DataType.Type.BIT, expressions=[exp.DataTypeParam(this=exp.Literal.number(64))]
    )
    as_bits = exp.cast(exp.DPipe(this=exp.Literal.string("x"), expression=hex_digits), bits)
    return exp.cast(as_bits, "BIGINT")


def _postgres_row_digest(node: exp.Expr) -> exp.Expr:
    return _first_64_bits(exp.cast(exp.Tuple(expressions=node.expressions), "TEXT"))


def _postgres_hash_number(node: exp.Expr) -> exp.Expr:
    return _first_64_bits(node.expressions[0])


def _spark_hash_number(node: exp.Expr) -> exp.Expr:
    hex_digits = exp.Substring(
        this=exp.MD5(this=node.expressions[0]), start=exp.Literal.number(1), length=exp.Literal.number(16)
    )
    digits = exp.Anonymous(
        this="CONV", expressions=[hex_digits, exp.Literal.number(16), exp.Literal.number(10)]
    )
    return exp.cast(digits, "DECIMAL(20, 0)")


def _renamed(name: str) -> Lowering:
    def lower(node: exp.Expr) -> exp.Expr:
        return exp.Anonymous(this=name, expressions=node.expressions)

    return lower


def _by_name(rewrites: dict[str, Lowering]) -> Lowering:
    """A lowering for function calls sqlglot has no node for, chosen by the call's name."""

    def lower(node: exp.Expr) -> exp.Expr:
        rewrite = rewrites.get(str(node.this).upper())
        return rewrite(node) if rewrite is not None else node

    return lower


def _postgres_list_any(node: exp.Expr) -> exp.Expr:
    element = exp.to_identifier("_gm_v")
    rows = exp.Table(
        this=exp.Unnest(expressions=[node.expressions[0]]),
        alias=exp.TableAlias(this=exp.to_identifier("_gm_u"), columns=[element]),
    )
    return (
        exp.select(exp.Anonymous(this="BOOL_OR", expressions=[exp.column(element.copy())]))
        .from_(rows)
        .subquery()
    )


def _spark_list_any(node: exp.Expr) -> exp.Expr:
    return exp.ArrayContains(this=node.expressions[0], expression=exp.true())


def _postgres_strip_nulls(node: exp.Expr) -> exp.Expr:
    """A merge patch onto an empty object only drops NULL fields, at any depth."""
    return exp.Anonymous(this="JSONB_STRIP_NULLS", expressions=[exp.cast(node.expressions[1], "JSONB")])


def _postgres_md5(node: exp.Expr) -> exp.Expr:
    """Postgres hashes text only: JSON (a stripped object) is hashed as its text."""
    if isinstance(node.this, exp.Cast) and node.this.to.is_type(exp.DataType.Type.TEXT):
        return node
    return exp.MD5(this=exp.cast(node.this, "TEXT"))


def _spark_strip_nulls(node: exp.Expr) -> exp.Expr:
    """Spark's JSON writer already leaves NULL fields out."""
    return node.expressions[1]


def _postgres_transform(node: exp.Expr) -> exp.Expr:
    lam = node.expression
    element = lam.expressions[0]
    rows = exp.Table(
        this=exp.Unnest(expressions=[node.this]),
        alias=exp.TableAlias(this=exp.to_identifier("_gm_u"), columns=[element.copy()]),
    )
    return exp.Array(expressions=[exp.select(lam.this).from_(rows)])


def _spark_series_table(node: exp.Expr) -> exp.Expr:
    """A series as a table: Spark explodes it (its generator drops the column alias of a bare
    series in FROM, and spells the exploded series, exclusive ends included, itself)."""
    if not isinstance(node.this, exp.GenerateSeries):
        return node
    return exp.Table(this=exp.Explode(this=node.this), alias=node.args.get("alias"))


def _spark_positions(node: exp.Expr) -> exp.Expr:
    """``unnest(x) AS e, list_positions(x) AS i`` in one select list: Spark allows one generator
    per select, so both come from one ``INLINE`` over the list's elements paired with their
    1-based positions."""
    if not isinstance(node, exp.Select):
        return node
    found = [
        e
        for e in node.expressions
        if isinstance(e, exp.Alias)
        and isinstance(e.this, exp.Anonymous)
        and e.this.name.upper() == LIST_POSITIONS
    ]
    for element in node.expressions:
        if not (isinstance(element, exp.Alias) and isinstance(element.this, exp.Explode)):
            continue
        values = element.this.this
        position = next((p for p in found if p.this.expressions[0] == values), None)
        if position is None:
            continue
        e, i = exp.to_identifier("_gm_e"), exp.to_identifier("_gm_i")
        pair = exp.Struct(
            expressions=[
                exp.alias_(exp.column(e.copy()), element.alias, quoted=True),
                exp.alias_(
                    exp.Add(this=exp.column(i.copy()), expression=exp.Literal.number(1)),
                    position.alias,
                    quoted=True,
                ),
            ]
        )
        pairs = exp.Transform(this=values.copy(), expression=exp.Lambda(this=pair, expressions=[e, i]))
        lowered = node.copy()
        kept = [x for x in lowered.expressions if x != position]
        kept = [exp.Anonymous(this="INLINE", expressions=[pairs]) if x == element else x for x in kept]
        lowered.set("expressions", kept)
        return lowered
    return node


_SPARK_MOMENTS = {END_OF_TIME: "9999-12-31 23:59:59.999999", LAST_MOMENT: "9999-12-31 23:59:59"}


def _spark_moments(node: exp.Expr) -> exp.Expr:
    """Spark's timestamps have no infinity and end in the year 9999: the same order, nearer."""
    if not (isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal)):
        return node
    moment = _SPARK_MOMENTS.get(node.this.name)
    return exp.cast(exp.Literal.string(moment), node.to) if moment and node.this.is_string else node


def _update_as_merge(node: exp.Expr) -> exp.Expr:
    """``UPDATE t SET … FROM s WHERE …`` as ``MERGE INTO t USING s ON … WHEN MATCHED THEN
    UPDATE``: Spark's tables update from another relation only by a merge. The platform's
    updates match at most one source row per target row (one row per key, or validity ranges
    that do not overlap), as a merge requires."""
    if not isinstance(node, exp.Update) or node.args.get("from_") is None:
        return node
    where = node.args.get("where")
    return exp.Merge(
        this=node.this,
        using=node.args["from_"].this,
        on=where.this if where is not None else exp.true(),
        whens=exp.Whens(expressions=[exp.When(matched=True, then=exp.Update(expressions=node.expressions))]),
    )


def _spark_epoch(node: exp.Expr) -> exp.Expr:
    # unix_micros takes timestamps only: a DATE (a freshness metric's time column) is cast to
    # its midnight in the session's time zone (UTC), as DuckDB's epoch() counts it.
    micros = exp.UnixMicros(this=exp.cast(node.this, exp.DataType.build("TIMESTAMPTZ")))
    return exp.Div(this=micros, expression=exp.Literal.number("1e6"))


def _explicit_groups(node: exp.Expr) -> exp.Expr:
    """``GROUP BY ALL`` (the project's dialect has it; some engines do not) as the positions of
    the select list's expressions that hold no aggregate."""
    select = node.parent
    if not (isinstance(node, exp.Group) and node.args.get("all") and isinstance(select, exp.Select)):
        return node
    positions = [
        exp.Literal.number(index)
        for index, expression in enumerate(select.expressions, 1)
        if not any(isinstance(n, exp.AggFunc) for n in expression.walk())
    ]
    return exp.Group(expressions=positions) if positions else node


def _anchored(node: exp.Expr, pattern: str) -> exp.Expr:
    return exp.RegexpLike(this=node.this, expression=exp.Literal.string(f"^(?:{pattern})$"))


_POSIX_CLASSES = {"L": "[:alpha:]", "N": "[:digit:]"}


def _posix_classes(pattern: str) -> str:
    """``\\p{L}`` and ``\\p{N}`` as POSIX classes: bare inside a bracket expression, bracketed
    outside one."""
    out, depth, index = [], 0, 0
    while index < len(pattern):
        char = pattern[index]
        if (
            char == "\\"
            and pattern[index + 1 : index + 2] == "p"
            and pattern[index + 3 : index + 4] in _POSIX_CLASSES
        ):
            posix = _POSIX_CLASSES[pattern[index + 3]]
            out.append(posix if depth else f"[{posix}]")
            index += 5
            continue
        if char == "\\":
            out.append(pattern[index : index + 2])
            index += 2
            continue
        depth += 1 if char == "[" else -1 if char == "]" and depth else 0
        out.append(char)
        index += 1
    return "".join(out)


def _postgres_full_match(node: exp.Expr) -> exp.Expr:
    """A whole-text match as an anchored ``~`` (Postgres's regular expressions have no ``\\p``)."""
    return _anchored(node, _posix_classes(node.expression.name))


def _spark_full_match(node: exp.Expr) -> exp.Expr:
    return _anchored(node, node.expression.name)


def _unseeded(node: exp.Expr) -> exp.Expr:
    """A sample without its seed, for an engine with no seed keyword: a different sample each
    time, which a distinct-ratio estimate does not mind."""
    if not isinstance(node, exp.TableSample) or node.args.get("seed") is None:
        return node
    unseeded = node.copy()
    unseeded.set("seed", None)
    return unseeded


def _wide_integer(spelled: str) -> Lowering:
    """128-bit integers (sums of 64-bit hashes) as the widest exact number the engine has."""
    wide = exp.DataType.build(spelled)

    def lower(node: exp.Expr) -> exp.Expr:
        return (
            wide.copy() if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.INT128 else node
        )

    return lower


def _chained(*lowerings: Lowering) -> Lowering:
    """Several rewrites of one node type, each given what the one before gave."""

    def lower(node: exp.Expr) -> exp.Expr:
        for lowering in lowerings:
            node = lowering(node)
        return node

    return lower


def _row_struct_json(node: exp.Expr) -> exp.Expr:
    """Spark: a row becomes a struct of its columns before to_json."""
    if not node.meta.get("row"):
        return node
    row = exp.Struct(expressions=[exp.column(exp.Star(), table=node.this.name)])
    return exp.Anonymous(this="TO_JSON", expressions=[row])


# dialect -> sqlglot node class -> a rewrite giving that dialect's spelling, for nodes whose
# generator output is wrong or missing on that engine. Dialects absent here need no rewrite.
Lowering = Callable[[exp.Expr], exp.Expr]
LOWERINGS: dict[str, dict[type[exp.Expr], Lowering]] = {
    "postgres": {
        **model_functions.POSTGRES,
        **value_checks.POSTGRES,
        exp.DateBin: _bucket_with_origin,
        exp.StructExtract: _field_access(parenthesise=True),
        exp.JSONFormat: _json_text,
        exp.Struct: _json_object,
        exp.Transform: _postgres_transform,
        exp.Group: _explicit_groups,
        exp.MD5: _postgres_md5,
        exp.RegexpFullMatch: _postgres_full_match,
        exp.DataType: _wide_integer("NUMERIC"),
        exp.Anonymous: _by_name(
            {
                MD5_NUMBER: _postgres_hash_number,
                ROW_DIGEST: _postgres_row_digest,
                LIST_ANY: _postgres_list_any,
                MERGE_PATCH: _postgres_strip_nulls,
                **model_functions.POSTGRES_BY_NAME,
                **value_checks.POSTGRES_BY_NAME,
            }
        ),
    },
    "spark": {
        **model_functions.SPARK,
        **value_checks.SPARK,
        exp.DateBin: _bucket_by_arithmetic,
        exp.StructExtract: _field_access(parenthesise=False),
        exp.TimeToUnix: _spark_epoch,
        exp.JSONFormat: _row_struct_json,
        exp.RegexpFullMatch: _spark_full_match,
        exp.TableSample: _unseeded,
        exp.Select: _chained(_spark_positions, spark_model_functions.SPARK_SELECT),
        exp.Cast: _chained(_spark_moments, spark_model_functions.SPARK_CAST),
        exp.Update: _update_as_merge,
        exp.Table: _spark_series_table,
        exp.DataType: _chained(_wide_integer("DECIMAL(38, 0)"), spark_model_functions.SPARK_TYPES),
        exp.Anonymous: _by_name(
            {
                MD5_NUMBER: _spark_hash_number,
                ROW_DIGEST: _renamed("XXHASH64"),
                LIST_ANY: _spark_list_any,
                MERGE_PATCH: _spark_strip_nulls,
                **model_functions.SPARK_BY_NAME,
                **value_checks.SPARK_BY_NAME,
            }
        ),
    },
}
# Redshift takes PostgreSQL's lowerings (sql.render.DERIVED) but runs generate_series on its leader
# node only: a series in a select list stays the unnest that it cannot spell (a compile problem).
LOWERINGS["redshift"] = {k: v for k, v in LOWERINGS["postgres"].items() if k is not exp.Explode}
