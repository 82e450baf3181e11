"""The pages of the UI and its navigation, in one list.

A page is a module of ``pages/`` with a ``mount(router, ui)`` that adds its routes. Adding one is
two lines: its module, and an entry here (``NAV`` orders the menu). Entries without a module are
pages still to come: the menu shows them, and their address answers with a short "not yet" page
rather than a 404, so links written today keep working once the page exists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gristmill.ui.pages import asset, catalog, compare, explore, overview, quality, run, runs, schedules

if TYPE_CHECKING:
    from fastapi import APIRouter

    from gristmill.ui.render import Ui

Mount = Callable[["APIRouter", "Ui"], None]


@dataclass(frozen=True)
class Page:
    key: str
    title: str
    path: str
    mount: Mount | None = None
    """None: a page to come (a placeholder answers its address)."""
    nav: bool = True


PAGES: tuple[Page, ...] = (
    Page("overview", "Overview", "/", overview.mount),
    Page("runs", "Runs", "/runs", runs.mount),
    Page("run", "Run", "/runs/{run_id}", run.mount, nav=False),
    Page("graph", "Asset graph", "/graph"),
    Page("catalog", "Catalog", "/catalog", catalog.mount),
    Page("asset", "Asset", "/catalog/{schema}/{name}", asset.mount, nav=False),
    Page("quality", "Quality", "/quality", quality.mount),
    Page("schedules", "Schedules & streams", "/schedules", schedules.mount),
    Page("dashboards", "Dashboards", "/dashboards"),
    Page("explore", "Explore", "/explore", explore.mount),
    Page("compare", "Compare", "/compare", compare.mount),
)

NAV = tuple(page for page in PAGES if page.nav)
