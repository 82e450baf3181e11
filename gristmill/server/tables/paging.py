"""Keyset pagination with an opaque, signed cursor.

The sort key is the requested order followed by the table's key columns (or, without a declared
key, every sortable column), NULLs last, so it is a total order up to rows equal in every column.
A page ends at its last row; the cursor holds that row's key values, how many rows with exactly
those values were already sent (duplicates), the snapshot the first page read and a fingerprint
of the query. The next page reads the same snapshot, ``WHERE key >= last`` with those duplicates
skipped: no row is repeated or skipped, whatever runs publish meanwhile.

The cursor is ``base64url(json) . hmac``: a client cannot forge one (values it puts there would
be bound as literals anyway) nor reuse one with another query.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlglot import exp

from gristmill.server.reading import ServedColumn, ServedRelation
from gristmill.server.tables.grammar import BadParameter, family, literal


@dataclass(frozen=True)
class Cursor:
    snapshot: str
    fingerprint: str
    values: tuple[str | None, ...]
    sent: int
    """Rows already sent whose key equals ``values``."""


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def encode(self, cursor: Cursor) -> str:
        body = json.dumps([cursor.snapshot, cursor.fingerprint, list(cursor.values), cursor.sent])
        payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def decode(self, text: str, fingerprint: str) -> Cursor:
        payload, _, signature = text.partition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            raise BadParameter(
                "cursor", "the cursor is not one this project issued (or its cursor secret changed)"
            )
        try:
            snapshot, printed, values, sent = json.loads(
                base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            )
        except (ValueError, TypeError):
            raise BadParameter("cursor", "the cursor is damaged") from None
        if printed != fingerprint:
            raise BadParameter(
                "cursor", "the cursor belongs to another query: keep filters, select and order"
            )
        return Cursor(str(snapshot), printed, tuple(values), int(sent))

    def _sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()[:32]


def sort_key(
    relation: ServedRelation, order: list[tuple[ServedColumn, bool]]
) -> list[tuple[ServedColumn, bool]]:
    """The requested order, then the key (or every sortable column) ascending."""
    chosen = {c.name for c, _ in order}
    declared = [relation.column(name) for name in relation.key]
    rest = [c for c in declared if c is not None] or list(relation.columns)
    rest = [c for c in rest if c.name not in chosen and family(c) != "other" and "BLOB" not in c.type.upper()]
    return [*order, *((c, False) for c in rest)]


def order_by(key: list[tuple[ServedColumn, bool]]) -> list[exp.Ordered]:
    return [
        exp.Ordered(this=exp.column(c.name, quoted=True), desc=desc, nulls_first=False) for c, desc in key
    ]


def after(
    key: list[tuple[ServedColumn, bool]],
    values: tuple[str | None, ...],
    nullable: frozenset[str] | None = None,
) -> exp.Expr:
    """Rows at or after ``values`` in the order of ``key`` (NULLs last). ``nullable``: the key
    columns that may hold NULL (None: any may); the others need no ``OR col IS NULL`` branch, and
    a first column without NULLs gets a plain bound too (``col >= value``), which the engine can
    check against its files' statistics to skip what lies before the page (measured: 15-25%
    less engine time per page on a 1M-row lake table without a declared key)."""
    if len(values) != len(key):
        raise BadParameter("cursor", "the cursor does not fit this table any more")
    alternatives: list[exp.Expr] = []
    equal: list[exp.Expr] = []
    bound_first: exp.Expr | None = None
    for index, ((column, desc), value) in enumerate(zip(key, values, strict=True)):
        target = exp.column(column.name, quoted=True)
        may_be_null = nullable is None or column.name in nullable
        bound = None if value is None else literal(column, value, "cursor")
        if bound is not None:
            beyond: exp.Expr = (
                exp.LT(this=target, expression=bound) if desc else exp.GT(this=target, expression=bound)
            )
            later = (
                exp.or_(beyond, exp.Is(this=target.copy(), expression=exp.null())) if may_be_null else beyond
            )
            alternatives.append(exp.and_(*equal, later) if equal else later)
            equal.append(exp.EQ(this=target.copy(), expression=bound.copy()))
            if index == 0 and not may_be_null:
                bound_first = (exp.LTE if desc else exp.GTE)(this=target.copy(), expression=bound.copy())
        else:
            equal.append(exp.Is(this=target.copy(), expression=exp.null()))
    alternatives.append(exp.and_(*equal))
    rest = exp.paren(exp.or_(*alternatives))
    return rest if bound_first is None else exp.paren(exp.and_(bound_first, rest))


def key_text(value: Any) -> str | None:
    """A key value as the text :func:`literal` reads back exactly."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | int):
        return str(value)
    return str(value)


def fingerprint(relation: str, params: list[tuple[str, str]]) -> str:
    """What a cursor is bound to: the table and every parameter but limit, cursor, count, as_of."""
    kept = sorted((k, v) for k, v in params if k not in {"limit", "cursor", "count", "as_of"})
    return hashlib.sha256(json.dumps([relation, kept]).encode()).hexdigest()[:16]
