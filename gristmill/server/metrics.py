"""Prometheus metrics, read from a fresh snapshot on every scrape.

The numbers live in the state store and the scheduler, not in process-local counters, so a
custom collector asks for a snapshot at scrape time instead of incrementing metric objects:
a restarted server reports the same totals, and several processes never disagree.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricsSnapshot:
    """Everything one scrape reports, read at one moment."""

    runs: Mapping[str, int]
    """Run count by status (success, failed, cancelled, running)."""
    run_seconds_sum: float
    """Total duration of finished runs."""
    run_seconds_count: int
    """Number of finished runs."""
    run_seconds_buckets: Mapping[float, int]
    """Finished runs with a duration at most the key (cumulative, like Prometheus ``le``)."""
    steps: Mapping[str, int]
    """Step attempts by status."""
    last_success: Mapping[str, float]
    """Asset -> unix time of its last successful build."""
    freshness_lag: Mapping[str, float]
    """Asset -> seconds since its last successful build, for assets with a freshness policy."""
    freshness_limit: Mapping[str, float]
    """Asset -> its freshness policy's limit in seconds."""
    schedule_lag: Mapping[str, float]
    """Schedule -> seconds from its last tick to its run starting."""
    next_tick: Mapping[str, float]
    """Schedule -> unix time of its next cron tick."""
    scheduler_up: bool | None
    """True while the scheduler runs; None when the process runs none (``gristmill serve`` of a
    project without schedules): ``gristmill_scheduler_up`` is then left out."""
    streams: tuple[Mapping[str, object], ...] = ()
    """Each stream process's last figures (``gristmill stream`` writes them after commits)."""


class SnapshotCollector(Collector):
    """Turns one snapshot per scrape into metric families.

    A failing snapshot must not turn the scrape into a 500: Prometheus would then mark the
    target down and lose the one signal that says what is wrong. Instead the scrape reports
    only ``gristmill_scheduler_up 0``, which an alert can fire on.
    """

    def __init__(self, snapshot: Callable[[], MetricsSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        try:
            snap = self._snapshot()
        except Exception:
            log.warning("cannot read metrics; reporting gristmill_scheduler_up 0", exc_info=True)
            yield _scheduler_up(False)
            return
        yield from _families(snap)


def registry(snapshot: Callable[[], MetricsSnapshot]) -> CollectorRegistry:
    """A registry of its own, so the process-wide default one (and its Python GC and
    process metrics) never mixes into Gristmill's scrape or clashes between apps in one process."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(SnapshotCollector(snapshot))
    return reg


def _stream_families(streams: tuple[Mapping[str, object], ...]) -> Iterator[Metric]:
    """Per stream process: events, output, late and rejected totals, throughput, watermark and
    lag per partition, labelled by model and pid."""
    counters = {
        "events": "Messages a stream process has consumed.",
        "rows_out": "Rows a stream process has written to its model's table.",
        "late": "Rows that arrived after their window was emitted (kept in the model's __late table).",
        "rejected": "Messages that could not be decoded (kept in _gristmill.stream_rejected).",
    }
    for field, help_text in counters.items():
        family = CounterMetricFamily(f"gristmill_stream_{field}", help_text, labels=["model", "pid"])
        for s in streams:
            family.add_metric([str(s["model"]), str(s["pid"])], float(s.get(field) or 0))  # type: ignore[arg-type]
        yield family
    rate = GaugeMetricFamily(
        "gristmill_stream_events_per_second", "Average consumption rate since start.", labels=["model", "pid"]
    )
    watermark = GaugeMetricFamily(
        "gristmill_stream_watermark_timestamp_seconds",
        "A stream's watermark: windows ending at or before it are complete and emitted (the oldest "
        "of its partitions' newest event times, less the model's lateness).",
        labels=["model", "pid"],
    )
    newest = GaugeMetricFamily(
        "gristmill_stream_newest_event_timestamp_seconds",
        "The newest event time a stream process has seen in its partitions.",
        labels=["model", "pid"],
    )
    lag = GaugeMetricFamily(
        "gristmill_stream_lag_messages",
        "Messages behind the end of each partition.",
        labels=["model", "partition"],
    )
    up = GaugeMetricFamily(
        "gristmill_stream_up",
        "1 while the stream process runs (0: stopped, failed, or dead: killed without a word).",
        labels=["model", "pid"],
    )
    for s in streams:
        labels = [str(s["model"]), str(s["pid"])]
        rate.add_metric(labels, float(s.get("events_per_second") or 0))  # type: ignore[arg-type]
        up.add_metric(labels, 1.0 if s.get("alive") else 0.0)
        for gauge, key in ((watermark, "watermark"), (newest, "newest_event")):
            mark = s.get(key)
            if isinstance(mark, str):
                from datetime import UTC, datetime

                gauge.add_metric(labels, datetime.fromisoformat(mark).replace(tzinfo=UTC).timestamp())
        for partition, behind in dict(s.get("lag") or {}).items():  # type: ignore[call-overload]
            lag.add_metric([str(s["model"]), str(partition)], float(behind))
    yield from (rate, watermark, newest, lag, up)


def _families(snap: MetricsSnapshot) -> Iterator[Metric]:
    yield from _stream_families(snap.streams)
    runs = CounterMetricFamily(
        "gristmill_runs",
        "Runs recorded in the state store, by status (success, failed, cancelled, running).",
        labels=["status"],
    )
    for status, count in sorted(snap.runs.items()):
        runs.add_metric([status], count)
    yield runs

    yield HistogramMetricFamily(
        "gristmill_run_duration_seconds",
        "Wall-clock duration of finished runs, from start to end.",
        buckets=_buckets(snap.run_seconds_buckets, snap.run_seconds_count),
        sum_value=snap.run_seconds_sum,
    )

    steps = CounterMetricFamily(
        "gristmill_step_attempts",
        "Step attempts, retries included, by status.",
        labels=["status"],
    )
    for status, count in sorted(snap.steps.items()):
        steps.add_metric([status], count)
    yield steps

    yield _gauge(
        "gristmill_asset_last_success_timestamp_seconds",
        "Unix time an asset was last built successfully.",
        "asset",
        snap.last_success,
    )
    yield _gauge(
        "gristmill_asset_freshness_lag_seconds",
        "Seconds since an asset was last built successfully; only assets with a freshness policy. "
        "Stale when above gristmill_asset_freshness_limit_seconds.",
        "asset",
        snap.freshness_lag,
    )
    yield _gauge(
        "gristmill_asset_freshness_limit_seconds",
        "The freshness policy's limit for an asset, in seconds.",
        "asset",
        snap.freshness_limit,
    )
    yield _gauge(
        "gristmill_schedule_lag_seconds",
        "Seconds from a schedule's last tick to its run starting; high when runs queue or the "
        "scheduler falls behind.",
        "schedule",
        snap.schedule_lag,
    )
    yield _gauge(
        "gristmill_schedule_next_tick_timestamp_seconds",
        "Unix time of a schedule's next cron tick.",
        "schedule",
        snap.next_tick,
    )
    if snap.scheduler_up is not None:
        yield _scheduler_up(snap.scheduler_up)


def _buckets(cumulative: Mapping[float, int], count: int) -> list[tuple[str, float]]:
    """Sorted ``(le, count)`` pairs ending in ``+Inf``, which always equals the finished-run count
    (Prometheus derives ``_count`` from it)."""
    finite = sorted((bound, n) for bound, n in cumulative.items() if not math.isinf(bound))
    pairs: list[tuple[str, float]] = [(floatToGoString(bound), n) for bound, n in finite]
    return [*pairs, ("+Inf", count)]


def _gauge(name: str, documentation: str, label: str, values: Mapping[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _scheduler_up(up: bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "gristmill_scheduler_up",
        "1 when the scheduler is running and its state could be read, else 0; absent when the "
        "process runs no scheduler (gristmill serve of a project without schedules).",
        value=1 if up else 0,
    )
