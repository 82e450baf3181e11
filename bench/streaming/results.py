"""The expected answer and the comparison of outputs.

The reference is DuckDB over the JSON lines the producer wrote: a plain GROUP BY of the events by
user and minute (no lateness: the events are at most 2 s out of order and every engine allows 5 s).
Outputs compare as sorted (user_id, window_start, amount in cents, events) rows, user -1 (the
sentinels) left out; the amount is rounded to cents because each engine sums in its own order.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

Row = tuple[int, str, int, int]
"""(user_id, window_start as 'YYYY-MM-DD HH:MM:SS', amount in cents, events)."""


@dataclass
class Output:
    rows: list[Row]
    windows: int
    """Result rows, user -1 left out."""
    total_cents: int
    events: int
    """Events counted across the windows: the input's size when nothing was lost or doubled."""

    @property
    def total(self) -> float:
        return self.total_cents / 100


def _stamp(value: Any) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace(" ", "T").replace("Z", "+00:00"))
    if isinstance(value, int | float):  # epoch milliseconds
        value = datetime.fromtimestamp(value / 1000, UTC)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def output(records: list[tuple[Any, Any, Any, Any]]) -> Output:
    """From (user_id, window_start, amount, events) records, in any order."""
    rows = sorted(
        (int(u), _stamp(start), round(float(amount) * 100), int(count))
        for u, start, amount, count in records
        if int(u) != -1
    )
    return Output(rows, len(rows), sum(r[2] for r in rows), sum(r[3] for r in rows))


def reference(jsonl: Path) -> Output:
    con = duckdb.connect()
    try:
        records = con.execute(
            """
            select user_id, date_trunc('minute', event_time) as window_start, sum(amount), count(*)
            from read_json(?, format = 'newline_delimited',
                           columns = {user_id: 'BIGINT', amount: 'DOUBLE', event_time: 'TIMESTAMP'})
            where user_id <> -1
            group by all
            """,
            [str(jsonl)],
        ).fetchall()
    finally:
        con.close()
    return output(records)


def parquet(path: Path) -> Output:
    con = duckdb.connect()
    try:
        records = con.execute(
            "select user_id, window_start, amount, events from read_parquet(?)", [str(path)]
        ).fetchall()
    finally:
        con.close()
    return output(records)


def from_json(text: str) -> Output:
    """``gristmill query --format json`` output: a list of objects."""
    found = json.loads(text)
    return output([(r["user_id"], r["window_start"], r["amount"], r["events"]) for r in found])


def difference(found: Output, wanted: Output) -> str:
    """'' when the rows are the same, else a short account of how they differ."""
    if found.rows == wanted.rows:
        return ""
    have, want = Counter(found.rows), Counter(wanted.rows)
    extra, missing = have - want, want - have
    keys_have = {(r[0], r[1]) for r in extra.elements()}
    keys_want = {(r[0], r[1]) for r in missing.elements()}
    changed = len(keys_have & keys_want)
    parts = [f"{found.windows:,} rows vs {wanted.windows:,}"]
    if changed:
        example = next(r for r in missing.elements() if (r[0], r[1]) in keys_have)
        got = next(r for r in extra.elements() if (r[0], r[1]) == (example[0], example[1]))
        parts.append(
            f"{changed:,} windows differ (e.g. user {example[0]} {example[1]}: {got[2:]} vs {example[2:]})"
        )
    if len(keys_want - keys_have):
        parts.append(f"{len(keys_want - keys_have):,} missing (e.g. {sorted(keys_want - keys_have)[0]})")
    if len(keys_have - keys_want):
        parts.append(f"{len(keys_have - keys_want):,} extra (e.g. {sorted(keys_have - keys_want)[0]})")
    dupes = sum(n - 1 for n in Counter((r[0], r[1]) for r in found.rows).values() if n > 1)
    if dupes:
        parts.append(f"{dupes:,} duplicate windows")
    parts.append(f"events {found.events:,} vs {wanted.events:,}")
    return "; ".join(parts)
