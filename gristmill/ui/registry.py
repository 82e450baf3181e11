"""The pages of the UI and its navigation, in one list.

A page is a module of ``pages/`` with a ``mount(router, ui)`` that adds its routes. Adding one is
two lines: its module, and an entry here (``NAV`` orders the menu). Entries without a module are
pages still to come: the menu shows them, and their address answers with a short "not yet" page
rather than a 404, so links written today keep working once the page exists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape
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
    """None: a page to come (a placeholder answers its address), unless ``elsewhere``."""
    nav: bool = True
    elsewhere: bool = False
    """Served by a router of its own that the serve composition mounts (the asset graph,
    the dashboards): no placeholder; its page shows ``site_bar``."""

    @property
    def built(self) -> bool:
        return self.mount is not None or self.elsewhere


PAGES: tuple[Page, ...] = (
    Page("overview", "Overview", "/", overview.mount),
    Page("runs", "Runs", "/runs", runs.mount),
    Page("run", "Run", "/runs/{run_id}", run.mount, nav=False),
    Page("graph", "Asset graph", "/graph", elsewhere=True),
    Page("catalog", "Catalog", "/catalog", catalog.mount),
    Page("asset", "Asset", "/catalog/{schema}/{name}", asset.mount, nav=False),
    Page("quality", "Quality", "/quality", quality.mount),
    Page("schedules", "Schedules & streams", "/schedules", schedules.mount),
    Page("dashboards", "Dashboards", "/dashboards", elsewhere=True),
    Page("explore", "Explore", "/explore", explore.mount),
    Page("compare", "Compare", "/compare", compare.mount),
)

NAV = tuple(page for page in PAGES if page.nav)


_ACTIVE = ' class="active"'


def site_bar(active: str) -> str:
    """The menu for the pages served ``elsewhere``, which render their own HTML: the same
    links as every other page's header, styled on its own so it fits any page."""
    links = "".join(
        f'<a href="{escape(page.path)}"{_ACTIVE if page.key == active else ""}>{escape(page.title)}</a>'
        for page in NAV
    )
    return (
        '<header class="top gm-site-bar"><style>.gm-site-bar{display:flex;gap:1rem;align-items:center;'
        "padding:.4rem 1rem;border-bottom:1px solid #ddd;font:14px system-ui,sans-serif;background:#fafafa}"
        ".gm-site-bar nav{display:flex;gap:1rem;flex-wrap:wrap}"
        ".gm-site-bar a{color:#245;text-decoration:none}.gm-site-bar a.active{font-weight:600}</style>"
        f'<a class="brand" href="/">Gristmill</a><nav>{links}</nav></header>'
    )
