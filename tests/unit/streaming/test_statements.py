"""Golden SQL of every statement a stream batch runs, for each dialect (tests/fixtures/sql/streaming)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlglot
from sqlglot import exp

from gristmill.project.specs import StreamWindow
from gristmill.sql import partial
from gristmill.state.lake.offsets import value
from gristmill.streaming import statements
from tests.golden import assert_golden

BATCH = exp.table_("_gm_batch_0")
MARKS = exp.table_("_gm_marks_0")
STATE = exp.table_("per_minute__state", db="marts", quoted=True)
PARTIALS = exp.table_("per_minute__partials", db="marts", quoted=True)
UNTIL = value(datetime(2024, 5, 1, 10, 5))
WINDOWS = {
    "tumble": StreamWindow("tumble", timedelta(minutes=1)),
    "hop": StreamWindow("hop", timedelta(minutes=10), timedelta(minutes=1)),
    "session": StreamWindow("session", timedelta(seconds=30)),
}
KEY = ("user_id",)
LANDED = ("user_id", "amount", "event_time", "_gm_topic", "_gm_partition", "_gm_offset")
"""A batch's columns: a session window selects them by name (no ``* EXCLUDE``)."""


@pytest.mark.parametrize("kind", list(WINDOWS))
def test_the_batch_scan_and_its_late_rows(kind: str) -> None:
    window = WINDOWS[kind]
    assert_golden(f"streaming/loop_scan_{kind}", statements.scan(BATCH, MARKS, "event_time", window))
    assert_golden(
        f"streaming/loop_count_late_{kind}", statements.count_late(BATCH, MARKS, "event_time", window)
    )
    late = exp.table_("per_minute__late", db="marts", quoted=True)
    rows = statements.late_rows(BATCH, MARKS, "event_time", window)
    assert_golden(f"streaming/loop_insert_late_{kind}", exp.insert(rows, late))


@pytest.mark.parametrize("kind", list(WINDOWS))
def test_rows_kept_until_their_windows_close(kind: str) -> None:
    window = WINDOWS[kind]
    rows = statements.open_rows(BATCH, MARKS, "event_time", window)
    assert_golden(f"streaming/loop_insert_open_{kind}", exp.insert(rows, STATE))
    closing = statements.closing_rows(STATE, MARKS, UNTIL, "event_time", window, KEY, LANDED)
    assert_golden(f"streaming/loop_closing_rows_{kind}", closing)
    forget = statements.forget_closed(STATE, MARKS, UNTIL, "event_time", window, KEY, LANDED)
    assert_golden(f"streaming/loop_forget_closed_{kind}", forget)


def test_windows_kept_as_partial_aggregates() -> None:
    window = WINDOWS["hop"]
    accumulate = statements.accumulate_rows(BATCH, MARKS, "event_time", window, KEY)
    assert_golden("streaming/loop_accumulate_rows", accumulate)
    model = sqlglot.parse_one(
        "select user_id, window_end, sum(amount) as amount, count(*) as events from e group by all"
    )
    split = partial.split(model)
    assert split is not None
    names = ["user_id", "window_end", "amount", "events"]
    assert_golden("streaming/loop_merge_partials", statements.merge(split, PARTIALS, MARKS, names))
    assert_golden("streaming/loop_forget_partials", statements.forget_partials(PARTIALS, MARKS))


def test_the_outbox_and_rejected_messages() -> None:
    outbox = exp.table_("per_minute__outbox", db="marts", quoted=True)
    staged = exp.table_("_gm_stage_0")
    assert_golden("streaming/loop_outbox_insert", statements.insert_outbox(outbox, staged, 1_700_000_000))
    assert_golden("streaming/loop_outbox_read", statements.read_outbox(outbox))
    assert_golden("streaming/loop_outbox_clear", statements.clear_outbox(outbox, 1_700_000_000))
    rejected = exp.table_("stream_rejected", db="_gristmill")
    view = exp.table_("_gm_rejected_0")
    assert_golden(
        "streaming/loop_rejected_insert", statements.insert_rejected(rejected, view, "marts.per_minute")
    )
