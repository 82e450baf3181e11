"""Golden SQL of a stream's offsets in the lake (read, replaced per batch, forgotten)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlglot import exp

from gristmill.state.lake.offsets import Progress, forget_statement, read_statement, value, write_statements
from tests.golden import assert_golden

OFFSETS = exp.table_("stream_offsets", db="_gristmill")


def test_offsets_read_for_some_partitions_or_all() -> None:
    assert_golden(
        "streaming/loop_offsets_read", read_statement(OFFSETS, "marts.per_minute", [("t", 0), ("t", 1)])
    )
    assert_golden("streaming/loop_offsets_read_all", read_statement(OFFSETS, "marts.per_minute", None))


def test_offsets_replaced_in_the_batch() -> None:
    progress = {
        ("t", 0): Progress(41, datetime(2024, 5, 1, 10, 0, 3), datetime(2024, 5, 1, 10)),
        ("t", 1): Progress(7),
    }
    delete, insert = write_statements(
        OFFSETS, "marts.per_minute", progress, datetime(2024, 5, 1, 10, 1, tzinfo=UTC)
    )
    assert_golden("streaming/loop_offsets_delete", delete)
    assert_golden("streaming/loop_offsets_insert", insert)


def test_offsets_forgotten_and_quoted() -> None:
    assert_golden("streaming/loop_offsets_forget", forget_statement(OFFSETS, "it's"))
    assert value(None).sql() == "NULL"
