"""Parse check declarations: the same item grammar in checks/*.yml, model headers and sources.

- not_null: [customer_id, email]          # one check per column
- unique: invoice_id                      # a list means one composite key
- accepted_values: {column: status, values: [paid, open]}
- relationships: {column: customer_id, to: staging.customer.customer_id}
- not_null: {column: email, severity: warn}
"""

from __future__ import annotations

from typing import Any

from gristmill._util.suggest import did_you_mean
from gristmill.errors import ConfigError
from gristmill.project.specs import CheckSpec
from gristmill.project.yamlfile import LineDict, LineList

BUILTIN_CHECKS = ("not_null", "unique", "accepted_values", "relationships")
_COMMON = {"severity", "column", "columns"}
_EXTRA_PARAMS = {"accepted_values": {"values"}, "relationships": {"to"}}


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
    if isinstance(item, str):
        raise ConfigError(f'check "{item}" needs a column, e.g. "- {item}: id"', location=where)
    if not isinstance(item, dict) or len(item) != 1:
        raise ConfigError("each check is one mapping item, e.g. '- not_null: id'", location=where)
    [(kind, arg)] = item.items()
    if kind not in BUILTIN_CHECKS:
        raise ConfigError(
            f'unknown check "{kind}"',
            location=where,
            hint=did_you_mean(str(kind), BUILTIN_CHECKS) or "built-in checks: " + ", ".join(BUILTIN_CHECKS),
        )
    params: dict[str, Any] = {}
    severity = "error"
    if isinstance(arg, dict):
        allowed = _COMMON | _EXTRA_PARAMS.get(kind, set())
        for key in arg:
            if key not in allowed:
                inner = (
                    f"{where.rsplit(':', 1)[0]}:{arg.key_lines[key]}" if isinstance(arg, LineDict) else where
                )
                raise ConfigError(
                    f'unknown option "{key}" for {kind}',
                    location=inner,
                    hint=did_you_mean(str(key), allowed) or "options: " + ", ".join(sorted(allowed)),
                )
        columns = _columns(arg.get("columns", arg.get("column")))
        severity = arg.get("severity", "error")
        params = {k: v for k, v in arg.items() if k not in _COMMON}
    else:
        columns = _columns(arg)
    if not columns:
        raise ConfigError(f"{kind} needs a column name or a list of column names", location=where)
    if severity not in ("error", "warn"):
        raise ConfigError(f'severity must be "error" or "warn", not "{severity}"', location=where)
    for needed in sorted(_EXTRA_PARAMS.get(kind, ())):
        if needed not in params:
            raise ConfigError(f'{kind} needs "{needed}"', location=where)
    if kind == "accepted_values" and not isinstance(params["values"], list):
        raise ConfigError("accepted_values needs a list of values", location=where)
    if kind == "relationships" and str(params["to"]).count(".") != 2:
        raise ConfigError(
            f'relationships "to" must be <schema>.<asset>.<column>, not "{params["to"]}"', location=where
        )
    one_per_column = kind in ("not_null", "accepted_values", "relationships")
    groups = [(c,) for c in columns] if one_per_column else [columns]
    return [CheckSpec(kind, asset, cols, params, severity, where) for cols in groups]  # type: ignore[arg-type]
