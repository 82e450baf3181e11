"""When windows close: the watermark over partitions, idle ones, and window boundaries."""

from __future__ import annotations

from datetime import datetime, timedelta

from gristmill.project.specs import StreamWindow
from gristmill.state.lake.offsets import Progress
from gristmill.streaming.watermarks import closes, watermark

T = datetime(2024, 5, 1, 10)
A, B = ("t", 0), ("t", 1)


def test_the_oldest_active_partition_holds_the_watermark() -> None:
    progress = {A: Progress(1, T), B: Progress(1, T + timedelta(seconds=30))}
    found = watermark(progress, {A, B}, {A: 100.0, B: 100.0}, {}, idle=5, last_arrival=100, now=101)
    assert found == T


def test_a_silent_partition_holds_it_back_until_idle() -> None:
    progress = {A: Progress(1, T), B: Progress(-1)}
    assert watermark(progress, {A, B}, {A: 100.0, B: 100.0}, {}, idle=5, last_arrival=100, now=101) is None
    # both quiet for the idle time: the newest moves on with the clock
    assert watermark(
        progress, {A, B}, {A: 100.0, B: 100.0}, {}, idle=5, last_arrival=100, now=110
    ) == T + timedelta(seconds=10)


def test_a_partition_with_messages_waiting_is_not_idle() -> None:
    progress = {A: Progress(1, T), B: Progress(1, T + timedelta(minutes=1))}
    found = watermark(progress, {A, B}, {A: 0.0, B: 100.0}, {A: 3}, idle=5, last_arrival=100, now=101)
    assert found == T


def test_windows_close_when_the_threshold_crosses_a_boundary() -> None:
    tumble = StreamWindow("tumble", timedelta(minutes=1))
    assert closes(T, [None], tumble)
    assert not closes(T + timedelta(seconds=30), [T], tumble)
    assert closes(T + timedelta(minutes=1), [T], tumble)
    assert not closes(T, [], tumble)
    assert closes(T + timedelta(seconds=1), [T], StreamWindow("session", timedelta(seconds=30)))
