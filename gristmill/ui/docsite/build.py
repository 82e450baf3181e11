"""``gristmill docs build``: the UI's own pages, rendered in process and written as files.

A FastAPI app is made of the same routers ``gristmill serve`` mounts (no keys: nothing is served,
the pages are only rendered), each page a docs site needs is fetched from it with Starlette's
test client, and every page is written under ``out`` with its links made relative
(``links.py``), so the site opens from ``file://``. The templates see ``static_site`` (hiding
forms, adding model SQL and declared checks); the graph page, which loads its data with
``fetch`` (refused from ``file://``), gets it from a script file instead."""

from __future__ import annotations

import html
import json
import re
import shutil
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.testclient import TestClient

from gristmill.errors import GristmillError
from gristmill.ui.app import ui_router
from gristmill.ui.docsite.links import rewrite_links
from gristmill.ui.graph.router import STATIC as GRAPH_STATIC
from gristmill.ui.graph.router import Workspace as GraphWorkspace
from gristmill.ui.graph.router import graph_router
from gristmill.ui.services import UiServices

if TYPE_CHECKING:
    from gristmill.server.reading import ServedRelation

HERE = Path(str(files("gristmill.ui.docsite")))
MARK = "docsite/search.js"
MENU = ("/catalog", "/graph")
_NAV = re.compile(r"<nav>.*?</nav>", re.S)
_MENU_LINK = re.compile(r'\s*<a href="(?P<path>[^"]*)"[^>]*>.*?</a>', re.S)
"""A file every built site holds: a folder with it is a site a new build may replace."""
GRAPH_SHIM = (
    '<script src="/docsite/graph-data.js"></script>\n<script src="/docsite/graph-offline.js"></script>\n'
)


@dataclass
class Built:
    out: Path
    pages: int
    assets: int
    files: list[str]


class _Fetcher:
    """GETs pages from the in-process app; a page that is not a 200 is an error, not a file."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def text(self, path: str) -> str:
        answer = self.client.get(path)
        if answer.status_code != 200:
            # The page shows its problem in a ``role="alert"`` block: say that, not the HTML.
            said = re.search(r'role="alert"><strong>(.*?)</strong>', answer.text)
            why = html.unescape(said.group(1)) if said else answer.text[:200]
            raise GristmillError(f"docs build: {path} answered {answer.status_code}: {why}")
        return answer.text

    def json(self, path: str) -> Any:
        return json.loads(self.text(path))


def build_site(services: UiServices, workspace: GraphWorkspace, out: Path) -> Built:
    """Write the docs site of what ``services`` reads into ``out`` (replaced if it exists)."""
    app = FastAPI()
    app.include_router(graph_router(workspace, services.env))
    app.include_router(ui_router(services))
    _check_out(out)
    served = _served(services)  # first: no lake or nothing built says so, with its hint
    pages: dict[str, str] = {}  # site file -> text, links still server paths
    with TestClient(app) as client:
        get = _Fetcher(client)
        catalog = get.text("/catalog")
        pages["index.html"] = catalog
        for name in served:
            schema, short = name.split(".", 1)
            pages[f"catalog/{schema}/{short}.html"] = get.text(f"/catalog/{quote(schema)}/{quote(short)}")
        layout = get.json("/graph/layout.json")
        details = {n: get.json(f"/graph/asset.json?name={quote(n)}") for n in layout["nodes"]["name"]}
        for name, asset in details.items():
            for column in asset["columns"]:
                path = f"/graph/columns/{quote(asset['schema'])}/{quote(asset['short'])}/{quote(column)}"
                pages[f"graph/columns/{asset['schema']}/{asset['short']}/{column}.html"] = get.text(path)
            if name not in served:
                asset["catalog"] = None  # not served: the site has no page for it
        graph = get.text("/graph").replace(
            '<script src="/graph/static/graph.js">', GRAPH_SHIM + '<script src="/graph/static/graph.js">'
        )
        pages["graph.html"] = graph.replace(
            "</head>", "<style>label:has(#graph-select){display:none}</style>\n</head>"
        )
    statics = _copy_statics(out, layout, details, served)
    present = set(pages) | set(statics)
    for name, text in pages.items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(rewrite_links(_site_menu(text), name, present), encoding="utf-8")
    return Built(out, len(pages), len(served), sorted(present))


def _site_menu(page: str) -> str:
    """The menus keep only the pages the site has (the graph's menu is the server's whole one)."""

    def kept(nav: re.Match[str]) -> str:
        return _MENU_LINK.sub(lambda a: a[0] if a["path"] in MENU else "", nav[0])

    return _NAV.sub(kept, page)


def _check_out(out: Path) -> None:
    """``out`` is replaced: refuse a folder holding anything but an earlier site (``--out .``
    in a project must not delete the project)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not (out / MARK).is_file():
        raise GristmillError(
            f"--out {out}: the folder holds files that are not a docs site, and the build replaces it",
            hint="name a new or empty folder (default: target/docs)",
        )


def _served(services: UiServices) -> dict[str, ServedRelation]:
    with services.reader.pin() as pinned:
        return dict(sorted(pinned.relations().items()))


def search_index(served: dict[str, ServedRelation]) -> list[dict[str, Any]]:
    """What the catalog's offline search matches, per asset: the same texts as the served
    search (``pages/catalog.py``), lower-cased once here."""
    return [
        {
            "name": name,
            "text": " ".join(
                [name, relation.kind, relation.description or "", relation.owner or "", *relation.tags]
            ).lower(),
            "columns": [[c.name, f"{c.name} {c.description or ''}".lower()] for c in relation.columns],
        }
        for name, relation in served.items()
    ]


def _copy_statics(
    out: Path, layout: Any, details: dict[str, Any], served: dict[str, ServedRelation]
) -> list[str]:
    """The UI's and the graph's static files, the docs scripts, and the data the two offline
    pages read (the search index, the graph's layout and details) as script files."""
    if out.exists():
        shutil.rmtree(out)  # a site of an earlier build (``_check_out``): no page of it outlives its asset
    written: list[str] = []
    for source, prefix in (
        (Path(str(files("gristmill.ui") / "static")), "ui/static"),
        (GRAPH_STATIC, "graph/static"),
        (HERE / "static", "docsite"),
    ):
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            name = f"{prefix}/{path.relative_to(source).as_posix()}"
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / name)
            written.append(name)
    (out / "graph" / "layout.json").write_text(json.dumps(layout), encoding="utf-8")
    _script(out / "docsite" / "graph-data.js", "GRISTMILL_GRAPH", {"layout": layout, "assets": details})
    _script(out / "docsite" / "search-index.js", "GRISTMILL_SEARCH", search_index(served))
    return [*written, "graph/layout.json", "docsite/graph-data.js", "docsite/search-index.js"]


def _script(path: Path, variable: str, value: Any) -> None:
    """``value`` as a script assigning it to ``window.variable``: a page opened from ``file://``
    may load a script file but not ``fetch`` a JSON one."""
    text = json.dumps(value, separators=(",", ":"), default=str).replace("<", "\\u003c")
    path.write_text(f"window.{variable} = {text};\n", encoding="utf-8")
