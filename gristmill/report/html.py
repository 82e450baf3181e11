"""Render a `Report` as one self-contained HTML page: inline CSS and SVG, no script, no URL.

Python shapes the page -- grouping, ordering, number formatting, SVG geometry -- and the Jinja
template only lays it out, with autoescaping on so asset names, check names and sample values
stay text. The page is also well-formed XML, which keeps it easy to post-process and to test.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from itertools import groupby
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template

from gristmill.report.model import CheckRow, MetricSeries, Report

PALETTE = {
    "fg": "#1f2328",
    "muted": "#656d76",
    "line": "#e3e6ea",
    "bg": "#fbfbfa",
    "accent": "#2b7a78",
    "red": "#c62828",
    "amber": "#b26a00",
}

HISTORY_RUNS = 20
"""Squares in a history strip: this run and the newest earlier ones; enough to see a trend."""

SQUARE, STEP, NOW_GAP = 6, 8, 3
SPARK_WIDTH, SPARK_HEIGHT, SPARK_PAD = 160, 40, 3
MAX_CELL_CHARS = 200
"""A sample value longer than this is cut: a JSON blob would otherwise swamp the table."""

BADGES = {"error": "fail", "warn": "warn", "quarantine": "quarantined", "drop": "dropped"}
RATIO_METRICS = frozenset({"null_rate", "distinct_ratio"})
NO_VALUE = "\N{EN DASH}"
TONE_RANK = {"fail": 0, "warn": 1, "pass": 2}

Point = tuple[float, float]


# -- view objects: what the template prints, already formatted ------------------------------------


@dataclass(frozen=True)
class Strip:
    """A history strip: one SVG path per status class, squares right-aligned on this run."""

    title: str
    paths: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Row:
    check: str
    severity: str
    tone: str
    badge: str
    failures: str
    strip: Strip
    streak: str
    detail: str
    columns: tuple[str, ...]
    """The sample's columns, those the check failed on first."""
    failing: tuple[bool, ...]
    """Per column: does the check judge it (its values are the failing ones)?"""
    samples: tuple[tuple[str | None, ...], ...]


@dataclass(frozen=True)
class AssetChecks:
    name: str
    tone: str
    open: tuple[Row, ...]
    passed: tuple[Row, ...]
    counts: str
    metrics_anchor: str | None


@dataclass(frozen=True)
class Spark:
    label: str
    value: str
    title: str
    path: str | None
    markers: tuple[tuple[str, str, str], ...]
    last_flagged: bool


@dataclass(frozen=True)
class AssetMetrics:
    name: str
    anchor: str
    sparks: tuple[Spark, ...]
    flagged: int


@dataclass(frozen=True)
class Summary:
    """The strip under the title; ``anomalies`` counts metrics with a point flagged in this run."""

    passed: int
    failed: int
    warned: int
    assets: int
    anomalies: int
    verdict: str
    tone: str


# -- entry point ---------------------------------------------------------------------------------


def render_html(report: Report) -> str:
    """The whole page as a string; the caller decides where it goes."""
    metrics = _asset_metrics(report)
    anchors = {m.name: m.anchor for m in metrics}
    assets = _asset_checks(report.checks, anchors)
    return _template().render(
        report=report,
        generated=_timestamp(report.generated_at),
        generated_iso=report.generated_at.isoformat(timespec="seconds"),
        summary=_summary(report, assets, metrics),
        attention=[a for a in assets if a.tone != "pass"],
        healthy=[a for a in assets if a.tone == "pass"],
        metrics_flagged=[m for m in metrics if m.flagged],
        metrics_calm=[m for m in metrics if not m.flagged],
        palette=PALETTE,
        plural=_plural,
    )


@cache
def _template() -> Template:
    """Loaded from the package so it works from a wheel; autoescape is on whatever the file suffix."""
    env = Environment(
        loader=PackageLoader("gristmill.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2")


# -- checks --------------------------------------------------------------------------------------


def _tone(check: CheckRow) -> str:
    """Only a failing ``error`` check blocked publishing; other failures were published anyway."""
    if check.status == "pass":
        return "pass"
    return "warn" if check.severity in ("warn", "quarantine", "drop") else "fail"


def _asset_checks(checks: Iterable[CheckRow], anchors: dict[str, str]) -> list[AssetChecks]:
    """Assets with failing error checks first, then warnings, then the all-pass ones, each by name."""
    by_asset: dict[str, list[CheckRow]] = {}
    for check in checks:
        by_asset.setdefault(check.asset, []).append(check)
    assets = [_one_asset(name, rows, anchors.get(name)) for name, rows in by_asset.items()]
    return sorted(assets, key=lambda a: (TONE_RANK[a.tone], a.name))


def _one_asset(name: str, checks: list[CheckRow], anchor: str | None) -> AssetChecks:
    rows = [_row(c) for c in checks]
    open_rows = sorted((r for r in rows if r.tone != "pass"), key=lambda r: TONE_RANK[r.tone])
    tones = Counter(r.tone for r in rows)
    tone = "fail" if tones["fail"] else "warn" if tones["warn"] else "pass"
    counts = ", ".join(
        f"{tones[t]:,} {word}"
        for t, word in (("fail", "failed"), ("warn", "warned"), ("pass", "passed"))
        if tones[t]
    )
    return AssetChecks(
        name=name,
        tone=tone,
        open=tuple(open_rows),
        passed=tuple(r for r in rows if r.tone == "pass"),
        counts=counts,
        metrics_anchor=anchor,
    )


def _row(check: CheckRow) -> Row:
    tone = _tone(check)
    failing = tone != "pass"
    columns, judged, samples = _sample_table(check) if failing else ((), (), ())
    return Row(
        check=check.check,
        severity=check.severity,
        tone=tone,
        badge=BADGES.get(check.severity, "fail") if failing else "pass",
        failures=f"{check.failures:,}" if failing else "",
        strip=history_strip(check.history, check.status, tone),
        streak=_streak(check.history, check.status) if failing else "",
        detail=check.detail or "",
        columns=columns,
        failing=judged,
        samples=samples,
    )


def _streak(history: Sequence[str], status: str) -> str:
    """A new failure and a long-standing one call for different reactions; say which this is."""
    if not history:
        return ""
    streak = 0
    for earlier in reversed((*history, status)):
        if earlier == "pass":
            break
        streak += 1
    return "new" if streak == 1 else f"{streak} runs in a row"


def history_strip(history: Sequence[str], status: str, tone: str) -> Strip:
    """At most one path per status, each stretch of equal squares one dashed segment: small pages.

    Squares are right-aligned so this run's square, set slightly apart, lines up down the table; a
    failed square takes the check's tone, so a warning's history reads amber, not red. Segments
    are whole multiples of the dash period, so every segment starts on a dash in any renderer.
    """
    earlier = history[-(HISTORY_RUNS - 1) :]
    x = (HISTORY_RUNS - 1 - len(earlier)) * STEP
    segments: dict[str, list[str]] = {}
    for kind, stretch in groupby(_square_kind(s, tone) for s in earlier):
        length = len(list(stretch)) * STEP
        segments.setdefault(kind, []).append(f"M{x} {SQUARE // 2}h{length}")
        x += length
    segments.setdefault(_square_kind(status, tone), []).append(f"M{x + NOW_GAP} {SQUARE // 2}h{STEP}")
    paths = tuple((kind, "".join(d)) for kind, d in segments.items())
    return Strip(title=_history_title(history, status), paths=paths)


def _square_kind(status: str, tone: str) -> str:
    return "pass" if status == "pass" else tone if status == "fail" else "other"


def _history_title(history: Sequence[str], status: str) -> str:
    if not history:
        return f"this run: {status}; no earlier run"
    counts = Counter(history)
    before = ", ".join(f"{n:,} {s}" for s, n in counts.most_common())
    return f"this run: {status}; {_plural(len(history), 'earlier run')}: {before}"


def _sample_table(
    check: CheckRow,
) -> tuple[tuple[str, ...], tuple[bool, ...], tuple[tuple[str | None, ...], ...]]:
    """Columns are the union of the rows' keys, the columns the check judges first (a wide sample
    must not hide them off to the right), then the rest in first-seen order, so ragged samples
    still line up."""
    seen = tuple(dict.fromkeys(key for sample in check.samples for key in sample))
    judged = set(check.columns) if check.columns else _named_columns(check.check, seen)
    columns = tuple(sorted(seen, key=lambda c: c not in judged))  # stable: first-seen order otherwise
    rows = tuple(tuple(_cell(sample.get(c)) for c in columns) for sample in check.samples)
    return columns, tuple(c in judged for c in columns), rows


def _named_columns(check: str, columns: Sequence[str]) -> set[str]:
    """The sample columns a check's name mentions: ``not_null(email)``, ``unique(a, b)``,
    ``range(amount 0..1000)``, ``expression(price >= cost)``. The check's kind is not one."""
    _, _, arguments = check.partition("(")
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", arguments))
    return {c for c in columns if c in words}


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


# -- metrics -------------------------------------------------------------------------------------


def _asset_metrics(report: Report) -> list[AssetMetrics]:
    """Assets with an anomaly flagged in this run first; each asset's table metrics before columns'."""
    by_asset: dict[str, list[MetricSeries]] = {}
    for series in report.series:
        by_asset.setdefault(series.asset, []).append(series)
    groups = []
    for i, (name, of_asset) in enumerate(sorted(by_asset.items()), start=1):
        ordered = sorted(of_asset, key=lambda s: (s.column is not None, s.column or "", s.metric))
        flagged = sum(_flagged_in_run(s, report.run_id) for s in ordered)
        groups.append(AssetMetrics(name, f"metrics-{i}", tuple(_spark(s) for s in ordered), flagged))
    return sorted(groups, key=lambda g: not g.flagged)


def _flagged_in_run(series: MetricSeries, run_id: int) -> bool:
    return any(p.flagged and p.run_id == run_id for p in series.points)


def _finite(value: float | None) -> float | None:
    """As a float (callers pass ints for counts); NaN or infinity would poison the scale: not measured."""
    return float(value) if value is not None and math.isfinite(value) else None


def _spark(series: MetricSeries) -> Spark:
    values = [_finite(p.value) for p in series.points]
    present = [v for v in values if v is not None]
    label = series.metric if series.column is None else f"{series.column} · {series.metric}"
    last = series.points[-1] if series.points else None
    value = _format_metric(series.metric, values[-1] if values else None)
    if len(present) < 2:
        return Spark(label, value, f"{label}: {value}", None, (), bool(last and last.flagged))
    points = sparkline_points(values)
    markers = tuple(
        (
            _coord(xy[0]),
            _coord(xy[1]),
            f"run {p.run_id}, {_timestamp(p.at)}: {_format_metric(series.metric, v)}",
        )
        for p, v, xy in zip(series.points, values, points, strict=True)
        if p.flagged and xy is not None and v is not None
    )
    low, high = _format_metric(series.metric, min(present)), _format_metric(series.metric, max(present))
    title = f"{label}: min {low}, max {high} over {_plural(len(series.points), 'run')}"
    if markers:
        title += f"; {_plural(len(markers), 'anomaly', 'anomalies')} flagged"
    return Spark(label, value, title, sparkline_path(points), markers, bool(last and last.flagged))


def sparkline_points(
    values: Sequence[float | None],
    width: float = SPARK_WIDTH,
    height: float = SPARK_HEIGHT,
    pad: float = SPARK_PAD,
) -> list[Point | None]:
    """Spread by run, not by time: runs are what a reader compares, and gaps in time are noise.

    The scale is the series' own min..max, so a small drift is visible; a constant series sits at
    mid-height instead of dividing by zero. A missing value stays ``None``.
    """
    present = [v for v in values if v is not None]
    if not present:
        return [None] * len(values)
    low, high = min(present), max(present)
    step = (width - 2 * pad) / max(len(values) - 1, 1)

    def y(value: float) -> float:
        if high == low:
            return height / 2
        return height - pad - (value - low) / (high - low) * (height - 2 * pad)

    return [None if v is None else (pad + i * step, y(v)) for i, v in enumerate(values)]


def sparkline_path(points: Sequence[Point | None]) -> str:
    """``M x y L x y …``, lifting the pen at each gap so a missing run is not bridged.

    A lone point between gaps becomes a zero-length segment, which a round line cap draws as a dot.
    """
    parts: list[str] = []
    run: list[Point] = []
    for point in (*points, None):
        if point is not None:
            run.append(point)
            continue
        if run:
            parts.append(f"M{_coord(run[0][0])} {_coord(run[0][1])}")
            parts.extend(f"L{_coord(x)} {_coord(y)}" for x, y in run[1:])
            if len(run) == 1:
                parts.append("h0")
        run = []
    return "".join(parts)


# -- formatting ----------------------------------------------------------------------------------


def _summary(report: Report, assets: Sequence[AssetChecks], metrics: Sequence[AssetMetrics]) -> Summary:
    tones = Counter(_tone(c) for c in report.checks)
    failing_assets = sum(a.tone == "fail" for a in assets)
    if tones["fail"]:
        verdict = f"{_plural(tones['fail'], 'check')} failed on {_plural(failing_assets, 'asset')}" + (
            f"; {_plural(tones['warn'], 'warning')}" if tones["warn"] else ""
        )
    elif tones["warn"]:
        verdict = f"No error check failed; {_plural(tones['warn'], 'warning')}"
    elif report.checks:
        verdict = f"All {_plural(len(report.checks), 'check')} passed"
    else:
        verdict = "No checks declared"
    tone = "fail" if tones["fail"] else "warn" if tones["warn"] else "pass" if report.checks else "none"
    return Summary(
        passed=tones["pass"],
        failed=tones["fail"],
        warned=tones["warn"],
        assets=len(assets),
        anomalies=sum(m.flagged for m in metrics),
        verdict=verdict,
        tone=tone,
    )


def _format_metric(metric: str, value: float | None) -> str:
    """Ratios as percentages and freshness in hours: the units a reader thinks in."""
    if value is None:
        return NO_VALUE
    if metric in RATIO_METRICS:
        return f"{value * 100:.3g}%"
    if metric == "freshness_hours":
        return f"{_number(value)} h"
    return _number(value)


def _number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _coord(value: float) -> str:
    """One decimal is sub-pixel at this size; dropping a trailing .0 keeps paths short."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _timestamp(at: datetime) -> str:
    text = at.strftime("%Y-%m-%d %H:%M")
    return f"{text} {at.tzname()}" if at.tzinfo is not None and at.tzname() else text


def _plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else many or word + 's'}"
