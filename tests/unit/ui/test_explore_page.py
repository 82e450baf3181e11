"""The Explore page's data, without a browser: the chart builder's spec, the dashboard block,
paging, and nothing run when SQL is off."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa

from gristmill.ui.pages import explore

RESULT = pa.table(
    {
        "genre": ["Rock", "Jazz"],
        "revenue": pa.array([Decimal("826.65"), Decimal("79.20")], pa.decimal128(18, 2)),
        "month": pa.array([1, 2], pa.int64()),
    }
)


def test_the_chart_keeps_decimals_exact_and_parses_them_as_numbers_only_in_the_chart() -> None:
    spec = explore.chart_spec(RESULT, "bar", "genre", "revenue", "month")
    assert spec is not None
    assert spec["data"]["values"][0] == {"genre": "Rock", "revenue": "826.65", "month": "1"}
    assert spec["data"]["format"]["parse"] == {"revenue": "number", "month": "number"}
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["x"] == {"field": "genre", "type": "nominal"}
    assert spec["encoding"]["color"] == {"field": "month", "type": "quantitative"}
    assert explore.chart_spec(RESULT, "scatter", "genre", "revenue")["mark"]["type"] == "point"  # type: ignore[index]
    assert explore.chart_spec(RESULT, "bar", "genre", "nope") is None
    assert explore.chart_spec(RESULT, "pie", "genre", "revenue") is None


def test_the_dashboard_block_is_a_named_sql_block_and_a_chart_block() -> None:
    block = explore.dashboard_block("select 1 as a, 2 as b\n", "Revenue by genre!", "line", "a", "b", "")
    assert block == (
        "```sql name=revenue_by_genre\nselect 1 as a, 2 as b\n```\n\n"
        "```chart\ntype: line\ndata: revenue_by_genre\nx: a\ny: b\n```\n"
    )
    assert "```chart" not in explore.dashboard_block("select 1", "", "bar", "", "")


@dataclass
class Answer:
    table: pa.Table
    truncated: bool = False


@dataclass
class Reader:
    """Stands in for the SQL endpoint's reader (the guard itself is tested in tests/unit/sql and,
    through this page, in the browser tests): records what it was asked."""

    table: pa.Table
    row_cap: int = 10_000
    asked: list[tuple[str, frozenset[str]]] = field(default_factory=list)

    def select(self, sql: str, *, schemas: frozenset[str] = frozenset(), **_: Any) -> Answer:
        self.asked.append((sql, schemas))
        return Answer(self.table)


@dataclass
class Services:
    sql: Any = None


def test_with_sql_off_nothing_runs() -> None:
    found = explore.data(Services(), "select 1")  # type: ignore[arg-type]
    assert found["enabled"] is False and found["result"] is None


def test_the_grid_pages_and_the_key_scope_goes_to_the_reader() -> None:
    reader = Reader(pa.table({"n": pa.array(range(120), pa.int32())}))
    found = explore.data(Services(reader), "select n", page=3, schemas=frozenset({"marts"}))  # type: ignore[arg-type]
    assert reader.asked == [("select n", frozenset({"marts"}))]
    assert (found["page"], found["pages"], found["result"]["total"]) == (3, 3, 120)
    assert found["result"]["rows"] == [[n] for n in range(100, 120)]
    assert found["columns"] == [{"name": "n", "type": "int32", "kind": "quantitative"}]
    beyond = explore.data(Services(reader), "select n", page=99)  # type: ignore[arg-type]
    assert beyond["page"] == 3
