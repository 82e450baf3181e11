"""Parse check declarations: the same item grammar in checks/*.yml, model headers and sources.

- not_null: [customer_id, email]          # one check per column
- unique: invoice_id                      # a list means one composite key
- accepted_values: {column: status, values: [paid, open]}
- relationships: {column: customer_id, to: staging.customer.customer_id}
- range: {column: amount, min: 0, max: 1000}           # between is the same check
- regex: {column: code, pattern: '^[A-Z]{3}$'}
- format: {column: email, as: email}
- row_count: {min: 1}
- freshness: {column: updated_at, max_age: 1d}
- expression: {sql: "amount >= 0 or status = 'refund'", name: non_negative}
- query: {sql: "select * from this where shipped_at < ordered_at", name: shipped_before_ordered}
- anomaly: {metric: volume}               # also row_count, null_rate, distinct_ratio, freshness, min, max
- aggregate: {column: amount, function: mean, min: 10, max: 20}
- duplicates: [order_id, line_no]         # the same as unique over those columns
- not_null: {column: email, severity: warn}

See docs/checks.md for what each one counts.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from gristmill._util.durations import parse_duration
from gristmill._util.suggest import did_you_mean
from gristmill.errors import ConfigError
from gristmill.project import yamlfile
from gristmill.project.dialect import PROJECT_DIALECT
from gristmill.project.specs import CheckSpec
from gristmill.project.yamlfile import LineDict, LineList

BUILTIN_CHECKS = (
    "not_null",
    "unique",
    "accepted_values",
    "relationships",
    "unknown_members",
    "range",
    "between",
    "regex",
    "format",
    "row_count",
    "freshness",
    "expression",
    "aggregate",
    "duplicates",
    "schema",
    "query",
    "anomaly",
)
ALIASES = {"between": "range", "duplicates": "unique"}
"""Other names for a check; the spec carries the name on the right."""
TABLE_CHECKS = ("row_count", "expression", "schema", "query", "anomaly")
"""Checks on the whole table, declared without a column."""
ROW_CHECKS = ("not_null", "accepted_values", "range", "regex", "format", "expression")
"""Checks that judge one row at a time: their failing rows can be set aside."""
SEVERITIES = ("error", "warn", "quarantine", "drop")
_COMMON = {"severity", "column", "columns"}
_BOUNDS = {"min", "max", "exclusive"}
_EXTRA_PARAMS = {
    "accepted_values": {"values"},
    "relationships": {"to"},
    "unknown_members": {"max"},
    "range": _BOUNDS,
    "regex": {"pattern"},
    "format": {"as"},
    "row_count": _BOUNDS,
    "freshness": {"max_age"},
    "expression": {"sql", "name"},
    "aggregate": {"function"} | _BOUNDS,
    "schema": {"expect", "exact"},
    "query": {"sql", "name"},
    "anomaly": {"metric", "column", "sensitivity", "min_history", "seasonality", "direction"},
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "accepted_values": ("values",),
    "relationships": ("to",),
    "regex": ("pattern",),
    "format": ("as",),
    "freshness": ("max_age",),
    "expression": ("sql",),
    "aggregate": ("function",),
    "schema": ("expect",),
    "query": ("sql",),
    "anomaly": ("metric",),
}
FORMATS = {
    # Letters and digits of any script: internationalised addresses (RFC 6531) are valid.
    "email": r"[\p{L}\p{N}.!#$%&'*+/=?^_`{|}~-]+@[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?"
    r"(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?)+",
    "uuid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    "url": r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:[/?#][^\s]*)?",
    "ipv4": r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
    "iso_date": r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])",
    "phone": r"\+[1-9][0-9]{1,14}",
}
"""Built-in patterns for ``format``, each matched against the whole value."""
AGGREGATES = ("mean", "avg", "sum", "min", "max", "stddev")
ANOMALY_METRICS = {
    "volume": "rows_written",
    "row_count": "row_count",
    "null_rate": "null_rate",
    "distinct_ratio": "distinct_ratio",
    "freshness": "freshness_hours",
    "min": "min",
    "max": "max",
}
"""What an anomaly check may judge, and the stored metric it reads."""
_PER_COLUMN = ("null_rate", "distinct_ratio", "min", "max")


def parse_condition(sql: str) -> exp.Expr:
    """An ``expression`` check's SQL as a row condition; raises ValueError when it is not one."""
    try:
        parsed = sqlglot.parse_one(sql, read=PROJECT_DIALECT)
    except SqlglotError as err:
        raise ValueError(str(err).splitlines()[0]) from None
    if isinstance(parsed, exp.Query) or parsed.find(exp.Query):
        raise ValueError("it must be a condition on one row, not a query")
    if parsed.find(exp.AggFunc):
        raise ValueError("it must be a condition on one row; use an aggregate check for aggregates")
    return parsed


def parse_failing_rows_query(sql: str) -> exp.Query:
    """A ``query`` check's SQL: a SELECT returning the failing rows; ``this`` names the asset."""
    try:
        parsed = sqlglot.parse_one(sql, read=PROJECT_DIALECT)
    except SqlglotError as err:
        raise ValueError(str(err).splitlines()[0]) from None
    if not isinstance(parsed, exp.Query):
        raise ValueError("it must be a query (SELECT ...) returning the failing rows")
    return parsed


def query_reads(check: CheckSpec) -> tuple[str, ...]:
    """The ``<schema>.<name>`` tables a ``query`` check reads besides its own asset."""
    if check.kind != "query":
        return ()
    query = parse_failing_rows_query(str(check.params["sql"]))
    names = (f"{t.db}.{t.name}" for t in query.find_all(exp.Table) if t.db and not t.catalog)
    return tuple(dict.fromkeys(n for n in names if n != check.asset))


def _columns(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return ()


def parse_check_items(items: Any, asset: str, file: str, line: int) -> list[CheckSpec]:
    if not isinstance(items, list):
        raise ConfigError(
            f"checks for {asset} must be a list of items like '- not_null: id'", location=f"{file}:{line}"
        )
    checks: list[CheckSpec] = []
    lines = items.item_lines if isinstance(items, LineList) else [line] * len(items)
    for item, item_line in zip(items, lines, strict=True):
        checks.extend(_parse_item(item, asset, f"{file}:{item_line}"))
    return checks


def _parse_item(item: Any, asset: str, where: str) -> list[CheckSpec]:
    if isinstance(item, str) and item in TABLE_CHECKS:
        raise ConfigError(f'check "{item}" needs options, e.g. "- row_count: {{min: 1}}"', location=where)
    if isinstance(item, str):
        raise ConfigError(f'check "{item}" needs a column, e.g. "- {item}: id"', location=where)
    if not isinstance(item, dict) or len(item) != 1:
        raise ConfigError("each check is one mapping item, e.g. '- not_null: id'", location=where)
    [(declared, arg)] = item.items()
    if declared not in BUILTIN_CHECKS:
        raise ConfigError(
            f'unknown check "{declared}"',
            location=where,
            hint=did_you_mean(str(declared), BUILTIN_CHECKS)
            or "built-in checks: " + ", ".join(BUILTIN_CHECKS),
        )
    declared = str(declared)
    kind = ALIASES.get(declared, declared)
    params: dict[str, Any] = {}
    severity = "error"
    if isinstance(arg, dict):
        allowed = _EXTRA_PARAMS.get(kind, set()) | ({"severity"} if kind in TABLE_CHECKS else _COMMON)
        for key in arg:
            if key not in allowed:
                inner = (
                    f"{where.rsplit(':', 1)[0]}:{arg.key_lines[key]}" if isinstance(arg, LineDict) else where
                )
                raise ConfigError(
                    f'unknown option "{key}" for {declared}',
                    location=inner,
                    hint=did_you_mean(str(key), allowed) or "options: " + ", ".join(sorted(allowed)),
                )
        columns = _columns(arg.get("columns", arg.get("column")))
        # An anomaly judges history: it warns unless told to block.
        severity = arg.get("severity", "warn" if kind == "anomaly" else "error")
        params = {k: v for k, v in arg.items() if k not in _COMMON}
    elif kind in TABLE_CHECKS:
        raise ConfigError(f"{declared} takes options, e.g. '- row_count: {{min: 1}}'", location=where)
    else:
        columns = _columns(arg)
    if not columns and kind not in TABLE_CHECKS:
        raise ConfigError(f"{declared} needs a column name or a list of column names", location=where)
    if severity not in SEVERITIES:
        raise ConfigError(
            f'severity must be one of {", ".join(SEVERITIES)}, not "{severity}"',
            location=where,
            hint=did_you_mean(str(severity), SEVERITIES),
        )
    if severity in ("quarantine", "drop") and kind not in ROW_CHECKS:
        raise ConfigError(
            f"severity {severity} sets failing rows aside, and {declared} does not judge single rows",
            location=where,
            hint="use it with " + ", ".join(ROW_CHECKS) + "; or severity error or warn",
        )
    for needed in _REQUIRED.get(kind, ()):
        if needed not in params:
            raise ConfigError(f'{declared} needs "{needed}"', location=where)
    columns = _validate(kind, declared, columns, params, where)
    one_per_column = kind not in ("unique", *TABLE_CHECKS)
    groups = [(c,) for c in columns] if one_per_column else [columns]
    return [CheckSpec(kind, asset, cols, params, severity, where) for cols in groups]  # type: ignore[arg-type]


def _validate(
    kind: str, declared: str, columns: tuple[str, ...], params: dict[str, Any], where: str
) -> tuple[str, ...]:
    """Check the options of one kind; returns the columns the check reads."""
    if kind == "schema":
        expect = params["expect"]
        if isinstance(expect, list) and all(isinstance(c, str) for c in expect):
            params["expect"] = {c: None for c in expect}
        elif not (isinstance(expect, dict) and all(isinstance(t, str) or t is None for t in expect.values())):
            raise ConfigError(
                "schema expect is a list of column names or a mapping of column names to types",
                location=where,
                hint="e.g. '- schema: {expect: {order_id: BIGINT, email: VARCHAR}, exact: true}'",
            )
        return ()
    if kind == "accepted_values" and not isinstance(params["values"], list):
        raise ConfigError("accepted_values needs a list of values", location=where)
    if kind == "relationships" and str(params["to"]).count(".") != 2:
        raise ConfigError(
            f'relationships "to" must be <schema>.<asset>.<column>, not "{params["to"]}"', location=where
        )
    if kind == "unknown_members" and not (
        isinstance(params.get("max", 0), int)
        and not isinstance(params.get("max"), bool)
        and params.get("max", 0) >= 0
    ):
        raise ConfigError(
            f'unknown_members "max" is how many rows may point at the unknown member, not "{params["max"]}"',
            location=where,
            hint="e.g. '- unknown_members: {column: customer_key, max: 10}'",
        )
    if kind in ("range", "row_count", "aggregate"):
        _validate_bounds(declared, params, where, whole=kind == "row_count")
    if kind == "regex":
        pattern = params["pattern"]
        try:
            re.compile(pattern) if isinstance(pattern, str) and pattern else None
        except re.error as err:
            raise ConfigError(f'regex pattern "{pattern}" is not valid: {err}', location=where) from None
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError("regex needs a pattern string", location=where)
    if kind == "format" and params["as"] not in FORMATS:
        raise ConfigError(
            f'unknown format "{params["as"]}"',
            location=where,
            hint=did_you_mean(str(params["as"]), FORMATS) or "formats: " + ", ".join(FORMATS),
        )
    if kind == "freshness" and parse_duration(params["max_age"]) is None:
        raise ConfigError(
            f'freshness max_age "{params["max_age"]}" is not a duration',
            location=where,
            hint="write e.g. 30m, 2h, 1d, 45s",
        )
    if kind == "aggregate" and params["function"] not in AGGREGATES:
        raise ConfigError(
            f'unknown aggregate function "{params["function"]}"',
            location=where,
            hint=did_you_mean(str(params["function"]), AGGREGATES) or "functions: " + ", ".join(AGGREGATES),
        )
    if kind == "anomaly":
        return _validate_anomaly(params, columns, where)
    if kind == "query":
        if not isinstance(params["sql"], str) or not params["sql"].strip():
            raise ConfigError("query needs sql, e.g. {sql: 'select * from this where a > b'}", location=where)
        if "name" in params and not isinstance(params["name"], str):
            raise ConfigError("query name must be a string", location=where)
        try:
            parse_failing_rows_query(params["sql"])
        except ValueError as err:
            raise ConfigError(
                f'query "{shorten_sql(params["sql"])}" is not valid: {err}',
                location=where,
                hint="write a SELECT that returns the failing rows; `this` is the asset checked",
            ) from None
        return ()
    if kind == "expression":
        if not isinstance(params["sql"], str) or not params["sql"].strip():
            raise ConfigError("expression needs sql, e.g. {sql: 'amount >= 0'}", location=where)
        if "name" in params and not isinstance(params["name"], str):
            raise ConfigError("expression name must be a string", location=where)
        try:
            condition = parse_condition(params["sql"])
        except ValueError as err:
            raise ConfigError(
                f'expression "{params["sql"]}" is not valid SQL: {err}', location=where
            ) from None
        # Unqualified column references, so the planner checks they exist.
        return tuple(dict.fromkeys(c.name for c in condition.find_all(exp.Column) if not c.table))
    return columns


def _validate_anomaly(params: dict[str, Any], columns: tuple[str, ...], where: str) -> tuple[str, ...]:
    metric = params["metric"]
    if metric not in ANOMALY_METRICS:
        raise ConfigError(
            f'unknown anomaly metric "{metric}"',
            location=where,
            hint=did_you_mean(str(metric), ANOMALY_METRICS) or "metrics: " + ", ".join(ANOMALY_METRICS),
        )
    column = columns[0] if len(columns) == 1 else None
    if len(columns) > 1:
        raise ConfigError("an anomaly check judges one column", location=where)
    if metric in _PER_COLUMN and column is None:
        raise ConfigError(
            f"anomaly of {metric} needs a column, e.g. {{metric: {metric}, column: email}}", location=where
        )
    if metric in ("volume", "row_count") and column is not None:
        raise ConfigError(f"anomaly of {metric} judges the whole table: remove column", location=where)
    sensitivity = params.get("sensitivity", 3.5)
    if isinstance(sensitivity, bool) or not isinstance(sensitivity, int | float) or sensitivity <= 0:
        raise ConfigError("anomaly sensitivity must be a positive number (3.5 by default)", location=where)
    history = params.get("min_history", 7)
    if isinstance(history, bool) or not isinstance(history, int) or history < 3:
        raise ConfigError("anomaly min_history must be a whole number of at least 3", location=where)
    for key, allowed in (
        ("seasonality", ("auto", "weekly", "none")),
        ("direction", ("both", "drop", "rise")),
    ):
        if params.get(key, allowed[0]) not in allowed:
            raise ConfigError(
                f'anomaly {key} must be one of {", ".join(allowed)}, not "{params[key]}"',
                location=where,
                hint=did_you_mean(str(params[key]), allowed),
            )
    return columns


def shorten_sql(sql: str, width: int = 60) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _validate_bounds(declared: str, params: dict[str, Any], where: str, *, whole: bool) -> None:
    if params.get("min") is None and params.get("max") is None:
        raise ConfigError(f'{declared} needs "min", "max" or both', location=where)
    kinds = (int,) if whole else (int, float, str, date, datetime)
    for key in ("min", "max"):
        value = params.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
            what = "a whole number" if whole else "a number, date or string"
            raise ConfigError(f'{declared} "{key}" must be {what}, not {value!r}', location=where)
    if not isinstance(params.get("exclusive", False), bool):
        raise ConfigError(f'{declared} "exclusive" must be true or false', location=where)
    low, high = params.get("min"), params.get("max")
    if low is not None and high is not None and type(low) is type(high) and low > high:
        raise ConfigError(f'{declared} "min" ({low}) is above "max" ({high})', location=where)


# --- checks/*.yml ---------------------------------------------------------------------------------


def load_check_files(root: Path) -> list[CheckSpec]:
    checks: list[CheckSpec] = []
    for path in sorted((root / "checks").glob("*.y*ml")):
        file = path.relative_to(root).as_posix()
        data = yamlfile.load(path, file)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ConfigError(
                "a checks file maps each asset to a list of checks, e.g. "
                "'staging.customer: [{not_null: customer_id}]'",
                location=file,
            )
        for asset, items in data.items():
            line = data.key_lines.get(asset, 1) if isinstance(data, yamlfile.LineDict) else 1
            checks.extend(parse_check_items(items, str(asset), file, line))
    return checks
