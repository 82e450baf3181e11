"""The 15 checks written by hand in DuckDB SQL: one fused statement, and the cheapest split plan
(one aggregate for the eleven single-scan checks, one GROUP BY ... HAVING per uniqueness key, one
anti-join, the custom query). Each plan also has a LIMIT 5 sample query per check, for the
failed checks, as a tool that shows failing rows needs.

The plans are written to JSON and run by ``execute.py`` in a fresh process of the chosen Python.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.quality.spec import (
    AMOUNT,
    CATEGORIES,
    CUSTOM_CONDITION,
    CUSTOM_NAME,
    MAX_AGE_DAYS,
    MEAN_AMOUNT,
    QUANTITY,
    STATUSES,
    Scale,
)
from bench.transform.measure import Outcome, run

EXECUTE = Path(__file__).with_name("execute.py")


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(_text(v) for v in values) + ")"


@dataclass(frozen=True)
class Tables:
    orders: str
    customers: str


def _row_conditions(email: str) -> dict[str, str]:
    """Checks judging one row: the condition a failing row meets (``email``: the pattern)."""
    return {
        "not_null(id)": "id IS NULL",
        "not_null(customer_id)": "customer_id IS NULL",
        "not_null(email)": "email IS NULL",
        "accepted_values(category)": f"category NOT IN {_in(CATEGORIES)}",
        "accepted_values(status)": f"status NOT IN {_in(STATUSES)}",
        "range(amount)": f"amount < {AMOUNT[0]} OR amount > {AMOUNT[1]}",
        "range(quantity)": f"quantity < {QUANTITY[0]} OR quantity > {QUANTITY[1]}",
        "format(email)": f"NOT regexp_full_match(email, {_text(email)})",
    }


def _aggregate(t: Tables, scale: Scale, email: str) -> tuple[str, list[str]]:
    low, high = scale.row_count
    columns = {key: f"count(*) FILTER (WHERE {c})" for key, c in _row_conditions(email).items()}
    columns["row_count"] = f"CASE WHEN count(*) BETWEEN {low} AND {high} THEN 0 ELSE 1 END"
    columns["freshness(created_at)"] = (
        f"CASE WHEN max(created_at) >= now() - INTERVAL {MAX_AGE_DAYS} DAY THEN 0 ELSE 1 END"
    )
    columns["mean(amount)"] = (
        f"CASE WHEN avg(amount) BETWEEN {MEAN_AMOUNT[0]} AND {MEAN_AMOUNT[1]} THEN 0 ELSE 1 END"
    )
    select = ",\n       ".join(f'{expr} AS "{key}"' for key, expr in columns.items())
    return f"SELECT {select}\nFROM {t.orders}", list(columns)


def _duplicates(t: Tables, columns: str, *, skip_null: bool) -> str:
    where = f" WHERE {columns} IS NOT NULL" if skip_null else ""
    return (
        "SELECT coalesce(sum(n - 1), 0) FROM"
        f" (SELECT {columns}, count(*) AS n FROM {t.orders}{where} GROUP BY {columns} HAVING count(*) > 1)"
    )


def _orphans(t: Tables, select: str) -> str:
    """Orders whose customer is missing. An ANTI JOIN: for ``SELECT * ... LIMIT 5`` DuckDB 1.5
    plans it 2-3x cheaper than the equivalent ``NOT EXISTS``."""
    return (
        f"SELECT {select} FROM {t.orders} AS o ANTI JOIN {t.customers} AS c ON c.id = o.customer_id"
        " WHERE o.customer_id IS NOT NULL"
    )


def split_plan(t: Tables, scale: Scale, email: str) -> list[tuple[str, list[str]]]:
    """Five statements: (SQL, the checks its one result row answers, in column order)."""
    return [
        _aggregate(t, scale, email),
        (_duplicates(t, "id", skip_null=True), ["unique(id)"]),
        (_duplicates(t, "customer_id, created_at", skip_null=False), ["duplicates(customer_id,created_at)"]),
        (_orphans(t, "count(*)"), ["relationships(customer_id)"]),
        (f"SELECT count(*) FROM {t.orders} WHERE {CUSTOM_CONDITION}", [f"custom({CUSTOM_NAME})"]),
    ]


def fused_plan(t: Tables, scale: Scale, email: str) -> list[tuple[str, list[str]]]:
    """The same five parts as one statement: each a CTE, cross-joined into one row."""
    parts = split_plan(t, scale, email)
    ctes = ",\n".join(f"p{i} AS ({sql})" for i, (sql, _) in enumerate(parts))
    joined = ", ".join(f"p{i}" for i in range(len(parts)))
    return [(f"WITH {ctes}\nSELECT * FROM {joined}", [k for _, keys in parts for k in keys])]


def samples(t: Tables, email: str) -> dict[str, str]:
    """Per check, a query for five of its failing rows (none for checks of the whole table)."""
    found = {key: f"SELECT * FROM {t.orders} WHERE {c} LIMIT 5" for key, c in _row_conditions(email).items()}
    for key, columns, skip_null in (
        ("unique(id)", "id", True),
        ("duplicates(customer_id,created_at)", "customer_id, created_at", False),
    ):
        where = f" WHERE {columns} IS NOT NULL" if skip_null else ""
        found[key] = (
            f"SELECT {columns}, count(*) AS n FROM {t.orders}{where}"
            f" GROUP BY {columns} HAVING count(*) > 1 LIMIT 5"
        )
    found["relationships(customer_id)"] = _orphans(t, "o.*") + " LIMIT 5"
    found[f"custom({CUSTOM_NAME})"] = f"SELECT * FROM {t.orders} WHERE {CUSTOM_CONDITION} LIMIT 5"
    return found


def write(path: Path, database: Path, t: Tables, scale: Scale, email: str, *, fused: bool) -> Path:
    """The plan as JSON for execute.py; ``email`` is the pattern the format check matches."""
    statements = (fused_plan if fused else split_plan)(t, scale, email)
    plan = {
        "database": str(database),
        "statements": [{"sql": sql, "checks": keys} for sql, keys in statements],
        "samples": samples(t, email),
    }
    path.write_text(json.dumps(plan, indent=1))
    return path


def execute(plan: Path, *, with_samples: bool, python: Path | str = sys.executable) -> Outcome:
    """Run ``plan`` in a fresh ``python`` process; ``note`` holds execute.py's JSON answer."""
    command: list[str | Path] = [python, EXECUTE, plan] + (["--samples"] if with_samples else [])
    outcome = run(command, plan.parent)
    outcome.note = outcome.out.strip().splitlines()[-1] if outcome.ok and outcome.out.strip() else ""
    return outcome


def answer(outcome: Outcome) -> tuple[dict[str, int], int]:
    """Failure count per check and statements sent, from execute.py's output."""
    found = json.loads(outcome.note)
    return found["failures"], found["statements"]
