"""Server addresses as file paths: the docs site is the UI's pages written as files, so every
link a page holds (``/catalog/marts/fct_invoice_line``) becomes a path relative to the file that
holds it (``../marts/fct_invoice_line.html`` from ``catalog/raw/x.html``), which a browser
follows from ``file://`` with no server."""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote, urlsplit

_ATTRIBUTE = re.compile(r'(?P<lead>\s)(?P<attr>href|src|action)="(?P<url>[^"]*)"')


def file_of(path: str) -> str | None:
    """The site file that answers the server path ``path`` (no query), or None if the site has
    no such page (a run, the compare page: they need a server)."""
    parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
    if any(p in ("", ".", "..") for p in parts):
        return None
    head = parts[0] if parts else ""
    if not parts or parts == ["catalog"]:
        return "index.html"
    if head == "catalog" and len(parts) == 3:
        return f"catalog/{parts[1]}/{parts[2]}.html"
    if parts == ["graph"]:
        return "graph.html"
    if head == "graph" and len(parts) == 5 and parts[1] == "columns":
        return "graph/columns/" + "/".join(parts[2:]) + ".html"
    if (head == "graph" and parts[1:2] == ["static"]) or parts == ["graph", "layout.json"]:
        return "/".join(parts)
    if (head == "ui" and parts[1:2] == ["static"]) or head == "docsite":
        return "/".join(parts)
    return None


def relative(url: str, page: str, present: set[str] | None = None) -> str | None:
    """``url`` as written in the site file ``page``: a server path becomes a relative file path
    (its ``?query`` kept for pages that read it, dropped for static files); other URLs (``#x``,
    ``data:``, relative ones) are left as they are. None: a link to a page the site does not
    hold (or, given ``present``, a file not written)."""
    if not url.startswith("/") or url.startswith("//"):
        return url
    split = urlsplit(url)
    target = file_of(split.path)
    if target is None or (present is not None and target not in present):
        return None
    here = posixpath.dirname(page) or "."
    path = posixpath.relpath(target, here)
    keep = split.query and target.endswith(".html")
    return path + (f"?{split.query}" if keep else "") + (f"#{split.fragment}" if split.fragment else "")


def rewrite_links(html: str, page: str, present: set[str] | None = None) -> str:
    """Every ``href``/``src``/``action`` of ``html`` (the file ``page`` of the site) made relative;
    a link to a page the site lacks loses its ``href`` (the text stays, as plain text)."""

    def one(match: re.Match[str]) -> str:
        url = match["url"].replace("&amp;", "&")
        moved = relative(url, page, present)
        if moved is None:
            return f' data-server-only="{match["url"]}"'
        return f'{match["lead"]}{match["attr"]}="{moved.replace("&", "&amp;")}"'

    return _ATTRIBUTE.sub(one, html)
