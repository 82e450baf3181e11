"""The SQL endpoint's JSON: every value exact, the schema saying which are strings."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa

from gristmill.server.sql_api import to_json


def test_decimals_big_integers_and_nested_values_stay_exact() -> None:
    table = pa.table(
        {
            "amount": pa.array([Decimal("12345678901234567.89")], pa.decimal128(19, 2)),
            "id": pa.array([2**63 - 1], pa.int64()),
            "small": pa.array([7], pa.int32()),
            "nested": pa.array(
                [{"a": Decimal("0.10"), "b": 2**60}],
                pa.struct([("a", pa.decimal128(3, 2)), ("b", pa.int64())]),
            ),
            "raw": pa.array([b"\xff\x00"], pa.binary()),
            "day": pa.array([pa.MonthDayNano([0, 1, 1_500_000_000])], pa.month_day_nano_interval()),
        }
    )
    body = to_json(table, truncated=True)
    assert body["truncated"] is True and body["row_count"] == 1
    assert [c["json"] for c in body["columns"]] == ["string", "string", "number", "any", "any", "any"]
    assert body["rows"] == [
        ["12345678901234567.89", str(2**63 - 1), 7, {"a": "0.10", "b": str(2**60)}, "\\xff00", "P0M1DT1.5S"]
    ]
