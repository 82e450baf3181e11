"""The HTML report as a reader sees it: order, numbers, samples, sparklines, escaping and size."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

from gristmill.report import CheckRow, MetricPoint, MetricSeries, Report, render_html
from gristmill.report.html import NO_VALUE, sparkline_path, sparkline_points

T0 = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
EVIL = "<script>alert(1)</script>"
PATH = re.compile(r"^(M-?[\d.]+ -?[\d.]+(L-?[\d.]+ -?[\d.]+)*(h0)?)+$")


def report(checks: tuple[CheckRow, ...] = (), series: tuple[MetricSeries, ...] = (), **kw: Any) -> Report:
    fields: dict[str, Any] = {
        "title": "Data quality",
        "project": "shop",
        "env": "prod",
        "run_id": 42,
        "generated_at": T0,
    }
    return Report(**(fields | kw), checks=checks, series=series)


def check(asset: str, name: str, status: str = "pass", severity: str = "error", **kw: Any) -> CheckRow:
    failures = kw.pop("failures", 0 if status == "pass" else 1)
    return CheckRow(asset=asset, check=name, severity=severity, status=status, failures=failures, **kw)


def metric(
    values: list[float | None], flagged: tuple[int, ...] = (), name: str = "row_count"
) -> MetricSeries:
    points = tuple(
        MetricPoint(at=T0 + timedelta(days=i), value=v, flagged=i in flagged, run_id=42 - len(values) + 1 + i)
        for i, v in enumerate(values)
    )
    return MetricSeries(asset="marts.orders", metric=name, column=None, points=points)


def page(rep: Report) -> ET.Element:
    """The page is well-formed XML, so tests can query elements instead of matching strings."""
    return ET.fromstring(render_html(rep))


def find(element: ET.Element, path: str) -> ET.Element:
    found = element.find(path)
    assert found is not None, f"no {path} in <{element.tag}>"
    return found


def text(element: ET.Element) -> str:
    return "".join(element.itertext()).strip()


def stats(root: ET.Element) -> dict[str, str]:
    """The summary strip: label -> number."""
    return {text(find(d, "dt")): text(find(d, "dd")) for d in root.iter("div") if d.find("dt") is not None}


def check_rows(root: ET.Element) -> list[tuple[str, str]]:
    """(asset, check) for every check row, in document order."""
    rows = []
    for table in root.iter("table"):
        if table.get("class") != "checks":
            continue
        for tr in table.iter("tr"):
            if tr.get("class") in ("pass", "warn", "fail"):
                rows.append((tr.get("class", ""), text(tr.findall("td")[1])))
    return rows


def sparks(root: ET.Element) -> list[ET.Element]:
    return [svg for svg in root.iter("svg") if svg.get("class") == "spark"]


def figures(root: ET.Element) -> dict[str, ET.Element]:
    """Each metric's cell by its caption."""
    return {text(find(f, "figcaption")): f for f in root.iter("figure")}


def test_failing_checks_come_before_passing_ones() -> None:
    rep = report(
        (
            check("a.healthy", "unique(id)"),
            check("b.warned", "format(email)", "fail", severity="warn"),
            check("c.broken", "row_count"),
            check("c.broken", "not_null(id)", "fail"),
        )
    )
    root = page(rep)
    assert check_rows(root) == [
        ("fail", "not_null(id)"),
        ("pass", "row_count"),
        ("warn", "format(email)"),
        ("pass", "unique(id)"),
    ]
    verdict = next(p for p in root.iter("p") if "verdict" in p.get("class", ""))
    assert text(verdict) == "1 check failed on 1 asset; 1 warning"
    summary = stats(root)
    assert summary["checks passed"] == "2"
    assert summary["failed (error)"] == "1"
    assert summary["warned"] == "1"
    assert summary["assets checked"] == "3"


def test_healthy_assets_are_collapsed() -> None:
    root = page(report((check("a.healthy", "unique(id)"), check("c.broken", "not_null(id)", "fail"))))
    group = next(d for d in root.iter("details") if d.get("class") == "group")
    assert text(find(group, "summary")) == "1 asset where every check passed"
    assert group.get("open") is None
    assert "unique(id)" in text(group)


def test_failures_use_thousands_separators() -> None:
    root = page(report((check("m.a", "not_null(x)", "fail", failures=1234567), check("m.a", "unique(y)"))))
    cells = {
        name: next(tr for tr in root.iter("tr") if tr.find("td") is not None and name in text(tr))
        for name in ("not_null(x)", "unique(y)")
    }
    assert text(cells["not_null(x)"].findall("td")[3]) == "1,234,567"
    assert text(cells["unique(y)"].findall("td")[3]) == ""


def test_sample_rows_are_table_cells_with_nulls_marked() -> None:
    samples = ({"id": 1, "email": None}, {"id": 2, "note": "late"})
    root = page(report((check("m.a", "not_null(email)", "fail", samples=samples),)))
    table = next(t for t in root.iter("table") if t.get("class") == "sample")
    # The column the check failed on comes first, its values marked.
    assert [text(th) for th in table.iter("th")] == ["email", "id", "note"]
    assert [th.get("class") for th in table.iter("th")] == ["failing", None, None]
    body = [tr.findall("td") for tr in find(table, "tbody").iter("tr")]
    assert [text(td) for td in body[0]] == ["", "1", ""]
    assert [td.get("class") for td in body[0]] == ["null failing", None, "null"]
    assert [text(td) for td in body[1]] == ["", "2", "late"]


def test_a_wide_sample_leads_with_the_failing_columns_in_its_own_scrolling_table() -> None:
    columns = [f"col_{i:02d}" for i in range(20)]
    samples = tuple({c: f"{c}-{row}" for c in columns} | {"amount": -row} for row in range(1, 4))
    row = check("m.orders", "range(amount 0..100)", "fail", samples=samples, failures=3)
    pair = check(
        "m.orders", "unique(col_07, col_03)", "fail", samples=samples[:1], columns=("col_07", "col_03")
    )
    root = page(report((row, pair)))
    wraps = [d for d in root.iter("div") if d.get("class") == "sample-scroll"]
    assert len(wraps) == 2  # each failing-rows table scrolls inside the card
    first, second = (find(w, "table") for w in wraps)
    assert first.get("class") == "sample"
    heads = [text(th) for th in first.iter("th")]
    assert heads[0] == "amount" and heads[1:] == columns  # failing first, then first-seen order
    for tr in find(first, "tbody").iter("tr"):
        cells = tr.findall("td")
        assert cells[0].get("class") == "failing" and text(cells[0]).startswith("-")
        assert all(td.get("class") is None for td in cells[1:])
        assert cells[5].get("title") == text(cells[5])  # a cut cell shows its whole value on hover
    # Declared columns win over the name, in the sample's order.
    assert [text(th) for th in second.iter("th")][:2] == ["col_03", "col_07"]
    # The outer table's column styles reach its own cells only, never the nested sample's.
    style = text(find(find(root, "head"), "style"))
    assert ".checks td" not in style and ".checks th" not in style and "tr.samples td" not in style
    assert "table.checks>tbody>tr>td{" in style and ".sample-scroll{" in style and "overflow-x:auto" in style


def test_passing_checks_show_no_samples() -> None:
    root = page(report((check("m.a", "unique(id)", samples=({"id": 1},)),)))
    assert not [t for t in root.iter("table") if t.get("class") == "sample"]


def test_user_values_are_escaped() -> None:
    rep = report(
        (check(EVIL, EVIL, "fail", samples=({EVIL: EVIL},), detail=EVIL),),
        (MetricSeries(EVIL, "null_rate", f'{EVIL}" onload="x', metric([0.1]).points),),
        title=EVIL,
        project=EVIL,
    )
    html = render_html(rep)
    assert "<script" not in html.lower()
    root = ET.fromstring(html)
    assert EVIL in text(next(root.iter("h1")))
    sample = next(t for t in root.iter("table") if t.get("class") == "sample")
    assert [text(c) for c in sample.iter() if c.tag in ("th", "td")] == [EVIL, EVIL]
    value = next(s for s in root.iter("span") if s.get("class") == "value")
    assert value.get("title", "").startswith(f'{EVIL}" onload="x · null_rate')
    assert value.get("onload") is None


def test_page_is_self_contained() -> None:
    html = render_html(report((check("m.a", "unique(id)"),), (metric([1, 2, 3]),)))
    assert "<script" not in html
    assert not re.search(r"https?://|url\(|@import|<link", html)


def test_flagged_point_gets_a_red_marker() -> None:
    root = page(
        report(series=(metric([10_010, 10_100, 9_950, 812], flagged=(3,)), metric([1.0, 2.0], name="max")))
    )
    cells = figures(root)
    flagged, calm = find(cells["row_count"], ".//svg"), find(cells["max"], ".//svg")
    (marker,) = flagged.iter("circle")
    red = marker.get("fill", "")
    r, g, b = (int(red[i : i + 2], 16) for i in (1, 3, 5))
    assert r > 150 and g < 100 and b < 100
    assert float(marker.get("cy", 0)) > 30  # the low value sits at the bottom of the 40px box
    assert "812" in text(marker)
    assert not list(calm.iter("circle"))
    assert stats(root)["anomalies flagged"] == "1"


def test_sparkline_shows_last_value_and_range() -> None:
    root = page(report(series=(metric([10_010, 10_400, 9_500, 812], flagged=(3,)),)))
    (svg,) = sparks(root)
    assert text(find(svg, "title")) == "row_count: min 812, max 10,400 over 4 runs; 1 anomaly flagged"
    figure = next(root.iter("figure"))
    assert figure.get("class") == "flagged"
    assert text(next(s for s in figure.iter("span") if s.get("class") == "value")) == "812"


def test_constant_and_gapped_series_give_valid_paths() -> None:
    root = page(report(series=(metric([5, 5, 5]), metric([1, None, 3, None, 4, 6], name="max"))))
    paths = [find(svg, "path").get("d", "") for svg in sparks(root)]
    assert all(PATH.match(d) for d in paths), paths
    gapped, constant = paths
    assert {y for _, y in re.findall(r"[ML]([\d.]+) ([\d.]+)", constant)} == {"20"}
    assert gapped.count("M") == 3 and gapped.count("h0") == 2


def test_sparkline_geometry() -> None:
    assert sparkline_path(sparkline_points([None, None])) == ""
    assert sparkline_path(sparkline_points([1.0, 2.0], width=10, height=10, pad=0)) == "M0 10L10 0"
    assert sparkline_path(sparkline_points([7.0, None, 7.0], width=10, height=10, pad=0)) == "M0 5h0M10 5h0"


def test_short_or_empty_series_show_just_the_value() -> None:
    series = (
        metric([0.0123], name="null_rate"),
        metric([None, 7.5, None], name="freshness_hours"),
        metric([], name="min"),
    )
    root = page(report(series=series))
    assert not sparks(root)
    values = [text(s) for s in root.iter("span") if s.get("class") == "value"]
    assert values == [NO_VALUE, NO_VALUE, "1.23%"]


def test_history_strip_marks_failures_and_streaks() -> None:
    rep = report(
        (
            check("m.a", "not_null(x)", "fail", history=("pass", "fail", "fail")),
            check("m.a", "format(y)", "fail", severity="warn", history=("pass", "pass")),
        )
    )
    root = page(rep)
    strips = {
        text(tr.findall("td")[1]): tr.findall("td")[4]
        for tr in root.iter("tr")
        if tr.get("class") in ("fail", "warn")
    }
    error, warn = strips["not_null(x)"], strips["format(y)"]
    assert {p.get("class") for p in error.iter("path")} == {"pass", "fail"}
    assert {p.get("class") for p in warn.iter("path")} == {"pass", "warn"}
    assert text(find(error, "span")) == "3 runs in a row"
    assert text(find(warn, "span")) == "new"
    assert text(find(error, "svg/title")) == "this run: fail; 3 earlier runs: 2 fail, 1 pass"


def test_empty_report_says_no_checks_are_declared() -> None:
    root = page(report())
    empty = next(p for p in root.iter("p") if p.get("class") == "empty")
    assert text(empty).startswith("No checks declared")
    assert root.find(".//section[@id='metrics']") is None


def test_large_report_stays_small() -> None:
    checks = tuple(
        check(
            f"marts.asset_{a:03d}",
            f"not_null(column_{c:02d})",
            "fail" if a % 50 == 0 and c < 2 else "pass",
            failures=1234 if a % 50 == 0 and c < 2 else 0,
            samples=({"id": 1, "column": None, "note": "x" * 40},) * 5,
            history=("pass",) * 25 + ("fail",) * (c % 3),
            detail="row_count 812 is below the expected 9,500\N{EN DASH}10,400 (median 10,010 over 28 runs)"
            if c == 0
            else None,
        )
        for a in range(500)
        for c in range(15)
    )
    series = tuple(
        MetricSeries(
            f"marts.asset_{a:03d}", m, None, metric([float(i % 7) for i in range(30)], flagged=(29,)).points
        )
        for a in range(0, 500, 5)
        for m in ("row_count", "null_rate")
    )
    html = render_html(report(checks, series))
    assert len(html.encode()) < 3_000_000
    root = ET.fromstring(html)
    assert len(check_rows(root)) == 500 * 15
    assert len(sparks(root)) == 200
