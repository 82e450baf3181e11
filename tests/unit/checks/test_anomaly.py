"""Anomaly checks: robust baselines over the metric history, weekly seasonality, incidents and
the judged value left out; end to end through runs, `gristmill check` and the run history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gristmill.checks.anomaly import Point, judge
from gristmill.errors import ConfigError
from gristmill.state import MetricRecord, StepRecord, open_history
from gristmill.workspace import Workspace

MONDAY = datetime(2026, 9, 7, 6, 0, tzinfo=UTC)


def daily_volumes(days: int, weekday: float = 10_000, weekend: float = 3_000) -> list[Point]:
    """A nightly load: weekdays around 10k rows, weekends around 3k, with a little noise."""
    points = []
    for day in range(days):
        at = MONDAY + timedelta(days=day)
        base = weekend if at.weekday() >= 5 else weekday
        points.append(Point(at, base * (1 + ((day * 37) % 7 - 3) / 100)))
    return points


def test_weekly_seasonality_is_not_an_anomaly_but_a_drop_is() -> None:
    history = daily_volumes(42)
    # Every day of a seventh week, judged against the six before it: weekends are quiet, not wrong.
    for day in range(42, 49):
        at = MONDAY + timedelta(days=day)
        normal = (3_000 if at.weekday() >= 5 else 10_000) * 1.01
        verdict = judge(normal, at, history)
        assert not verdict.anomalous, verdict.describe("volume")
        assert verdict.weekly
    # Without seasonality a normal Saturday looks like a collapse: that is what weekly fixes.
    saturday = MONDAY + timedelta(days=47)
    assert judge(3_030, saturday, history, seasonality="none").anomalous
    # A Wednesday with a weekend's volume is a real drop.
    wednesday = MONDAY + timedelta(days=44)
    dropped = judge(3_000, wednesday, history)
    assert dropped.anomalous
    assert "below the expected" in dropped.describe("volume")
    assert not judge(3_000, wednesday, history, direction="rise").anomalous


def test_past_incidents_and_the_judged_window_stay_out_of_the_baseline() -> None:
    history = daily_volumes(42)
    wednesday = MONDAY + timedelta(days=44)
    # Two earlier Wednesdays collapsed and were flagged: they do not make a collapse look normal.
    incidents = [
        Point(p.at, 10.0, flagged=True) if p.at.weekday() == 2 and p.at > MONDAY + timedelta(days=20) else p
        for p in history
    ]
    assert judge(10.0, wednesday, incidents).anomalous
    # Unflagged, the same points would have widened the band until the collapse looked normal.
    polluted = [Point(p.at, p.value) for p in incidents]
    assert not judge(10.0, wednesday, polluted, seasonality="weekly").anomalous
    # Values measured at or after the judged moment are not its baseline.
    future = [*history, *(Point(wednesday + timedelta(hours=h), 3_000.0) for h in range(24))]
    assert judge(3_000, wednesday, future).anomalous


def test_too_little_history_is_learning_not_failing() -> None:
    verdict = judge(5.0, MONDAY + timedelta(days=10), daily_volumes(3), min_history=7)
    assert not verdict.anomalous and verdict.learning
    assert "learning the baseline (3 earlier values" in verdict.describe("volume")


def test_a_constant_metric_tolerates_a_small_change() -> None:
    flat = [Point(MONDAY - timedelta(days=d), 1000.0) for d in range(1, 15)]
    assert not judge(1001, MONDAY, flat, seasonality="none").anomalous
    assert judge(1500, MONDAY, flat, seasonality="none").anomalous


ORDERS_HEADER = "id,email,amount,updated_at\n"


def orders(rows: int, *, null_every: int = 0) -> str:
    lines = [
        f"{i},{'' if null_every and i % null_every == 0 else f'u{i}@x.io'},{i % 50},2026-09-01 10:00:00"
        for i in range(rows)
    ]
    return ORDERS_HEADER + "\n".join(lines) + "\n"


def seed_volume_history(root: Path, asset: str, days: int, rows: int) -> None:
    """Earlier nightly runs' metrics, as the run history would hold them."""
    history = open_history(root / ".gristmill" / "state.sqlite")
    try:
        start = datetime.now(UTC) - timedelta(days=days)
        for day in range(days):
            run_id = history.runs.start("run", "")
            at = (start + timedelta(days=day)).isoformat()
            value = rows * (1 + ((day * 37) % 7 - 3) / 100)
            history.runs.record_steps(
                run_id,
                [StepRecord(asset, "source", "build", "success", "changed")],
                [],
                [
                    MetricRecord(asset, "rows_written", "", value, measured_at=at),
                    MetricRecord(asset, "null_rate", "email", 0.0, measured_at=at),
                ],
            )
            history.runs.finish(run_id, "success", 1.0, {})
    finally:
        history.close()


SOURCE = "kind: files\ntables:\n  orders: {path: data/orders.csv}\n"


def test_a_volume_drop_is_flagged_in_the_run_and_left_out_of_later_baselines(
    make_project: Callable[..., Path], cli: object
) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE,
            "data/orders.csv": orders(1000),
            "checks/orders.yml": "raw.src__orders:\n"
            "  - anomaly: {metric: volume, seasonality: none}\n"
            "  - anomaly: {metric: null_rate, column: email, seasonality: none}\n",
        }
    )
    seed_volume_history(root, "raw.src__orders", 21, 1000)
    code, out = cli("run", project=root)  # type: ignore[operator]
    assert code == 0, out
    assert "! raw.src__orders" not in out  # a normal load: no anomaly

    (root / "data" / "orders.csv").write_text(orders(200, null_every=2))
    code, out = cli("run", project=root)  # type: ignore[operator]
    assert code == 0, out  # a warning: the 200 rows publish
    assert "! raw.src__orders: volume 200 is below the expected" in out
    assert "! raw.src__orders: null_rate(email) 0.5 is above the expected" in out
    assert Workspace(root).query("select count(*) as n from raw.src__orders").column("n")[0].as_py() == 200

    history = open_history(root / ".gristmill" / "state.sqlite")
    try:
        volumes = history.quality.metric_history("raw.src__orders", "rows_written")
    finally:
        history.close()
    assert volumes[-1].value == 200 and volumes[-1].flagged
    assert not any(v.flagged for v in volumes[:-1])

    # The next normal load is judged against the normal days, not against the incident.
    (root / "data" / "orders.csv").write_text(orders(1010))
    code, out = cli("run", project=root)  # type: ignore[operator]
    assert code == 0 and "volume" not in out, out


def test_an_error_anomaly_blocks_publishing(make_project: Callable[..., Path], cli: object) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE,
            "data/orders.csv": orders(1000),
            "checks/orders.yml": "raw.src__orders:\n"
            "  - anomaly: {metric: volume, seasonality: none, severity: error}\n",
        }
    )
    seed_volume_history(root, "raw.src__orders", 14, 1000)
    assert cli("run", project=root)[0] == 0  # type: ignore[operator]
    (root / "data" / "orders.csv").write_text(orders(5))
    code, out = cli("run", project=root)  # type: ignore[operator]
    assert code == 1
    assert "anomaly(volume): volume 5 is below the expected" in out
    assert Workspace(root).query("select count(*) as n from raw.src__orders").column("n")[0].as_py() == 1000


def test_check_measures_the_published_table_and_judges_the_last_load(
    make_project: Callable[..., Path], cli: object, tmp_path: Path
) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE,
            "data/orders.csv": orders(1000),
            "checks/orders.yml": "raw.src__orders:\n"
            "  - not_null: {column: email, severity: warn}\n"
            "  - anomaly: {metric: volume, seasonality: none}\n"
            "  - anomaly: {metric: freshness}\n",
        }
    )
    seed_volume_history(root, "raw.src__orders", 14, 20)
    assert cli("run", project=root)[0] == 0  # type: ignore[operator]
    report = tmp_path / "out" / "quality.html"
    code, out = cli("check", "--report", str(report), project=root)  # type: ignore[operator]
    assert code == 0, out
    # The last load wrote 1000 rows where 20 is normal: `check` judges it again.
    assert "volume 1,000 is above the expected" in out
    assert "freshness(updated_at)" in out  # the only time column, found without being named
    assert "1 anomaly" in out
    page = report.read_text()
    assert "raw.src__orders" in page and "anomaly(volume)" in page

    history = open_history(root / ".gristmill" / "state.sqlite")
    try:
        [run] = [r for r in history.runs.recent(5) if r.command == "check"]
        rows = history.quality.metric_history("raw.src__orders", "row_count")
        nulls = history.quality.metric_history("raw.src__orders", "null_rate", "email")
    finally:
        history.close()
    assert run.summary["anomalies"] == 1
    assert [r.value for r in rows] == [1000, 1000]  # measured by the run and by the check
    assert nulls[-1].value == 0


def test_anomaly_declaration_errors(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE,
            "data/orders.csv": orders(3),
            "checks/orders.yml": "raw.src__orders:\n  - anomaly: {metric: nul_rate, column: email}\n",
        }
    )
    with pytest.raises(ConfigError, match='did you mean "null_rate"'):
        Workspace(root).plan()
    (root / "checks" / "orders.yml").write_text("raw.src__orders:\n  - anomaly: {metric: null_rate}\n")
    with pytest.raises(ConfigError, match="needs a column"):
        Workspace(root).plan()
