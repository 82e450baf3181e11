"""The HTML report laid out by a real browser (Chromium, tests/support/browser.py): a failing
check's sample rows stay inside their card — in view, or in the sample's own horizontal scroller —
and the page logs no console error. A screenshot goes to tests/unit/report/screenshots/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gristmill.report import CheckRow, Report, render_html
from tests.unit.report.test_html import T0

pytest_plugins = ["tests.support.browser"]

# For each sample cell: its box, its card's, and its scroller's (with the scrolled width), in CSS
# pixels of the page. A cell is placed well when it lies inside the card, or inside the part of
# the scroller that scrolling reaches, the scroller itself lying inside the card.
MEASURE = """() => [...document.querySelectorAll('table.sample th, table.sample td')].map(cell => {
  const box = r => {
    const b = r.getBoundingClientRect();
    return {left: b.left, right: b.right, width: b.width};
  };
  const card = cell.closest('section.asset');
  const scroller = cell.closest('.sample-scroll');
  return {
    text: cell.textContent, cell: box(cell), card: box(card),
    scroller: box(scroller), scrollWidth: scroller.scrollWidth, clientWidth: scroller.clientWidth,
    overflowX: getComputedStyle(scroller).overflowX,
  };
})"""
EPS = 0.5


def _wide_report() -> Report:
    columns = [f"customer_attribute_{i:02d}" for i in range(18)]
    samples = tuple(
        {c: f"{c}-value-{row}" for c in columns} | {"amount": -row, "note": "x" * 300} for row in range(1, 6)
    )
    checks = (
        CheckRow(
            asset="marts.orders",
            check="range(amount 0..100)",
            severity="error",
            status="fail",
            failures=5,
            samples=samples,
        ),
        CheckRow(
            asset="marts.orders",
            check="not_null(id)",
            severity="warn",
            status="fail",
            failures=1,
            samples=({"id": None, "name": "short"},),
        ),
    )
    return Report(
        title="Data quality", project="shop", env="prod", run_id=7, generated_at=T0, checks=checks, series=()
    )


def _inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return inner["left"] >= outer["left"] - EPS and inner["right"] <= outer["right"] + EPS


def test_sample_cells_stay_inside_their_card_or_its_scroller(
    page: Any, screenshots: Path, tmp_path: Path
) -> None:
    html = tmp_path / "quality.html"
    html.write_text(render_html(_wide_report()), encoding="utf-8")
    page.goto(html.as_uri())
    cells = page.evaluate(MEASURE)
    page.screenshot(path=str(screenshots / "quality_report_samples.png"), full_page=True)

    assert len(cells) == 20 * (1 + 5) + 2 * (1 + 1)  # header and rows of both samples
    wide = [c for c in cells if c["scrollWidth"] > c["clientWidth"]]
    assert wide, "the 20-column sample should be wider than its card, and scroll"
    for cell in cells:
        scroller, card = cell["scroller"], cell["card"]
        assert _inside(scroller, card), f"the sample's scroller sticks out of its card: {scroller} {card}"
        reach = {"left": scroller["left"], "right": scroller["left"] + cell["scrollWidth"]}
        placed = _inside(cell["cell"], card) or (
            cell["overflowX"] in ("auto", "scroll") and _inside(cell["cell"], reach)
        )
        assert placed, f"sample cell {cell['text'][:40]!r} lies outside its card: {cell}"
        # Not squeezed to a few characters by the outer table's column widths.
        assert cell["cell"]["width"] >= 24, cell
    assert page.console_errors == []


def test_the_sample_scrolls_horizontally_to_its_last_column(page: Any, tmp_path: Path) -> None:
    html = tmp_path / "quality.html"
    html.write_text(render_html(_wide_report()), encoding="utf-8")
    page.goto(html.as_uri())
    scroller = page.locator(".sample-scroll").first
    scroller.evaluate("s => { s.scrollLeft = s.scrollWidth; }")
    last = page.locator("table.sample").first.locator("th").last
    box, frame = last.bounding_box(), scroller.bounding_box()
    assert box is not None and frame is not None
    assert frame["x"] - EPS <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"] + EPS
    assert page.console_errors == []
