"""A dashboard as an HTML page: prose, filters, big numbers, tables and Vega-Lite charts.

``DashboardPages`` renders on a tables reader and keeps pages by their key — the file, the filter
values and the data version of every table the page read (``reading.page_key``) — so a page is
served from memory until a run publishes a table it reads, and never after."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from gristmill.dashboards import charts
from gristmill.dashboards.reading import DEFAULT_ROW_CAP, PageData, filter_values, page_key, plan, read
from gristmill.errors import ConfigError
from gristmill.project.dashboard_specs import ChartBlock, Dashboard, Prose

if TYPE_CHECKING:
    from gristmill.project import Project
    from gristmill.server.reading import TableReader

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
SCRIPTS = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
_PAGES_KEPT = 64


@dataclass(frozen=True)
class Page:
    etag: str
    html: str


def environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def render_page(
    dashboard: Dashboard, data: PageData, *, scripts_url: str | None = None, interactive: bool = True
) -> str:
    """The page's HTML. ``scripts_url``: where the vendored chart scripts are served (e.g.
    ``/static/vendor``); None inlines them (a static build that opens from ``file://``).
    ``interactive``: filters submit (served); off, they show the values the page was built with."""
    parts = [_part(p, data, i) for i, p in enumerate(dashboard.parts)]
    if dashboard.filters:  # under the opening prose (the title), else first
        parts.insert(1 if parts and parts[0]["kind"] == "prose" else 0, {"kind": "filters"})
    inline = None if scripts_url is not None else [_inline(name) for name in SCRIPTS]
    return (
        environment()
        .get_template("dashboard.html")
        .render(
            dashboard=dashboard,
            parts=parts,
            data=data,
            scripts_url=scripts_url,
            scripts=SCRIPTS,
            inline=inline,
            interactive=interactive,
        )
    )


def render_list(dashboards: Mapping[str, Dashboard], base: str = "/dashboards") -> str:
    return environment().get_template("list.html").render(dashboards=dashboards, base=base)


def _inline(name: str) -> str:
    text = (STATIC / name).read_text(encoding="utf-8")
    return text.replace("</script", "<\\/script")  # a string in the script must not end the element


def _part(part: object, data: PageData, index: int) -> dict[str, Any]:
    if isinstance(part, Prose):
        return {"kind": "prose", "html": part.html}
    if not isinstance(part, ChartBlock):
        return {"kind": "hidden"}  # data blocks show through charts
    found: dict[str, Any] = {
        "kind": part.type,
        "title": part.title,
        "id": f"chart-{index}",
        "line": part.line,
    }
    if part.data in data.errors:
        return {**found, "kind": "error", "error": data.errors[part.data]}
    table = data.tables[part.data]
    try:
        if part.type == "big_number":
            found["value"] = charts.big_number(part, table)
        elif part.type == "table":
            found["columns"] = table.column_names
            found["rows"] = charts.cells(table, part)
        else:
            found["spec"] = charts.to_json(charts.vega_lite(part, table))
    except charts.ChartError as error:
        return {**found, "kind": "error", "error": str(error)}
    found["truncated"] = part.data in data.truncated
    return found


class DashboardPages:
    """Renders a project's dashboards on ``tables`` (the serve process's reader), pages kept by
    key; thread-safe."""

    def __init__(
        self,
        project: Project,
        tables: TableReader,
        *,
        scripts_url: str | None = None,
        row_cap: int = DEFAULT_ROW_CAP,
    ) -> None:
        self.project = project
        self.tables = tables
        self.scripts_url = scripts_url
        self.row_cap = row_cap
        self._pages: OrderedDict[str, Page] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def dashboards(self) -> dict[str, Dashboard]:
        return self.project.dashboards

    def page(self, name: str, given: Mapping[str, str], *, interactive: bool = True) -> Page:
        dashboard = self.dashboards.get(name)
        if dashboard is None:
            raise ConfigError(
                f'no dashboard "{name}"', hint=f"dashboards: {', '.join(self.dashboards) or 'none'}"
            )
        values = filter_values(dashboard, given)
        with self.tables.pin() as pinned:
            planned = plan(self.project, dashboard, pinned, values)
            key = page_key(dashboard, values, planned.version) + ("" if interactive else "-static")
            with self._lock:
                if key in self._pages:
                    self._pages.move_to_end(key)
                    return self._pages[key]
            data = read(planned, pinned, values, self.row_cap)
        html = render_page(dashboard, data, scripts_url=self.scripts_url, interactive=interactive)
        page = Page(key, html)
        with self._lock:
            self._pages[key] = page
            while len(self._pages) > _PAGES_KEPT:
                self._pages.popitem(last=False)
        return page
