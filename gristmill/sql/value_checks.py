"""Per-value checks a load makes on arriving data (does this value cast to the held type? which
JSON kind is it? its text?), built as DuckDB spells them and lowered for PostgreSQL and Spark here.

Spark has ``TRY_CAST`` (NULL where the cast fails, overflow included, in ANSI mode as outside
it); its JSON kinds come from a VARIANT parse (``schema_of_variant``), named as DuckDB's
``json_type`` names them.

PostgreSQL 15 has no TRY_CAST (nor ``pg_input_is_valid``, which came in 16): the PostgreSQL engine
creates ``TRY_CAST_FUNCTION`` once per session in its temporary schema, and a checked cast is
lowered to a call of it. ``pg_temp`` is the one schema a lowering can name without knowing the
engine's ``schema_prefix``, leaves nothing behind in the database, and is searched for functions
only when named explicitly, so no user object can shadow it. Only casts built here are lowered:
a ``TRY_CAST`` in a model's SQL stays a model the engine cannot run (``model_functions.NO_FORM``),
since compiled SQL runs outside the engine's session."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

_HELPER = "gristmill_try_cast"
_CHECKED = "gristmill_checked_cast"

TRY_CAST_FUNCTION = f"""
CREATE OR REPLACE FUNCTION pg_temp.{_HELPER}(_in text, _type text, INOUT _out anyelement)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SELECT CAST(%L AS %s)', _in, _type) INTO _out;
EXCEPTION WHEN data_exception THEN  -- class 22: bad text, out of range, field overflow, ...
    _out := NULL;
END $$"""
"""The PL/pgSQL helper: ``_in`` cast to ``_type`` (spelt with its modifiers, so ``1.005`` rounds as
``NUMERIC(9,2)`` rounds it), NULL where the cast raises a data exception; ``_out`` (a NULL of the
type) gives the call its result type."""


def try_cast(value: exp.Expr, to: exp.DataType) -> exp.TryCast:
    """``value`` as ``to``, NULL where it does not cast."""
    cast = exp.TryCast(this=value, to=to)
    cast.meta[_CHECKED] = True
    return cast


def json_type(value: exp.Expr) -> exp.Expr:
    """The kind of a JSON value in DuckDB's words: ``BIGINT`` (negative) or ``UBIGINT`` for an
    integral number, ``DOUBLE``, ``VARCHAR``, ``BOOLEAN``, ``OBJECT``, ``ARRAY``, ``NULL``."""
    return exp.JSONType(this=value)


def json_text(value: exp.Expr) -> exp.Expr:
    """A JSON string's text without its quotes (other values as their JSON text)."""
    return exp.Anonymous(this="JSON_EXTRACT_STRING", expressions=[value, exp.Literal.string("$")])


def _postgres_try_cast(node: exp.Expr) -> exp.Expr:
    if not node.meta.get(_CHECKED):
        return node
    to = node.args["to"]
    return exp.Anonymous(
        this=exp.Dot(this=exp.to_identifier("pg_temp"), expression=exp.to_identifier(_HELPER)),
        expressions=[
            exp.cast(node.this, "TEXT"),
            exp.Literal.string(to.sql(dialect="postgres")),
            exp.cast(exp.null(), to.copy()),
        ],
    )


def _unquoted(value: exp.Expr) -> exp.Expr:
    """``value #>> '{}'``: the JSON value at the top, as text (a string without its quotes)."""
    text = exp.JSONBExtractScalar(this=exp.cast(value, "JSONB"), expression=exp.Literal.string("{}"))
    return exp.Paren(this=text)


def _postgres_json_type(node: exp.Expr) -> exp.Expr:
    value = exp.cast(node.this, "JSONB")
    spelt = _unquoted(node.this)
    integral = exp.RegexpLike(this=spelt.copy(), expression=exp.Literal.string("^-?[0-9]+$"))
    negative = exp.func("starts_with", spelt.copy(), exp.Literal.string("-"))
    number = (
        exp.Case()
        .when(exp.and_(integral, negative), exp.Literal.string("BIGINT"))
        .when(integral.copy(), exp.Literal.string("UBIGINT"))
        .else_(exp.Literal.string("DOUBLE"))
    )
    kinds = {"string": "VARCHAR", "boolean": "BOOLEAN", "object": "OBJECT", "array": "ARRAY", "null": "NULL"}
    case = exp.Case(this=exp.Anonymous(this="JSONB_TYPEOF", expressions=[value]))
    case = case.when(exp.Literal.string("number"), number)
    for typeof, kind in kinds.items():
        case = case.when(exp.Literal.string(typeof), exp.Literal.string(kind))
    return case


def _postgres_json_text(node: exp.Expr) -> exp.Expr:
    path = node.expressions[1] if len(node.expressions) == 2 else None
    if not isinstance(path, exp.Literal) or path.name != "$":
        return node
    return _unquoted(node.expressions[0])


POSTGRES: dict[type[exp.Expr], Callable[[exp.Expr], exp.Expr]] = {
    exp.TryCast: _postgres_try_cast,
    exp.JSONType: _postgres_json_type,
}
POSTGRES_BY_NAME: dict[str, Callable[[exp.Expr], exp.Expr]] = {"JSON_EXTRACT_STRING": _postgres_json_text}


def _spark_json_type(node: exp.Expr) -> exp.Expr:
    """DuckDB's JSON kind from the schema Spark gives the parsed value: ``BIGINT``, ``DECIMAL(p,s)``
    or ``DOUBLE`` for a number (integral ones are DuckDB's ``BIGINT`` when negative, ``UBIGINT``
    otherwise; a fraction or exponent is ``DOUBLE``), ``STRING``, ``BOOLEAN``, ``OBJECT<…>``,
    ``ARRAY<…>``, ``VOID`` (null). Not JSON at all: NULL, as DuckDB's raises on the cast to JSON."""
    parsed = exp.Anonymous(this="TRY_PARSE_JSON", expressions=[exp.cast(node.this, "STRING")])
    schema = exp.Anonymous(this="SCHEMA_OF_VARIANT", expressions=[parsed])
    spelt = exp.Anonymous(this="TRIM", expressions=[exp.cast(node.this, "STRING")])
    integral = exp.RegexpLike(this=spelt, expression=exp.Literal.string("^-?[0-9]+$"))
    negative = exp.func("startswith", spelt.copy(), exp.Literal.string("-"))

    def starts(prefix: str) -> exp.Expr:
        return exp.func("startswith", schema.copy(), exp.Literal.string(prefix))

    number = exp.or_(starts("BIGINT"), starts("DECIMAL"), starts("DOUBLE"), starts("INT"), starts("FLOAT"))
    return (
        exp.Case()
        .when(exp.and_(number.copy(), integral.copy(), negative), exp.Literal.string("BIGINT"))
        .when(exp.and_(number.copy(), integral.copy()), exp.Literal.string("UBIGINT"))
        .when(number, exp.Literal.string("DOUBLE"))
        .when(starts("STRING"), exp.Literal.string("VARCHAR"))
        .when(starts("BOOLEAN"), exp.Literal.string("BOOLEAN"))
        .when(starts("OBJECT"), exp.Literal.string("OBJECT"))
        .when(starts("ARRAY"), exp.Literal.string("ARRAY"))
        .when(starts("VOID"), exp.Literal.string("NULL"))
    )


def _spark_json_text(node: exp.Expr) -> exp.Expr:
    """The top-level value's text: ``get_json_object(v, '$')`` unquotes a string and writes other
    values as JSON text; JSON's null is NULL (as DuckDB), where ``get_json_object`` gives 'null'."""
    path = node.expressions[1] if len(node.expressions) == 2 else None
    if not isinstance(path, exp.Literal) or path.name != "$":
        return node
    text = exp.cast(node.expressions[0], "STRING")
    is_null = exp.EQ(
        this=exp.Anonymous(this="TRIM", expressions=[text]), expression=exp.Literal.string("null")
    )
    picked = exp.Anonymous(this="GET_JSON_OBJECT", expressions=[text.copy(), path.copy()])
    return exp.Case().when(is_null, exp.null()).else_(picked)


SPARK: dict[type[exp.Expr], Callable[[exp.Expr], exp.Expr]] = {exp.JSONType: _spark_json_type}
SPARK_BY_NAME: dict[str, Callable[[exp.Expr], exp.Expr]] = {"JSON_EXTRACT_STRING": _spark_json_text}
