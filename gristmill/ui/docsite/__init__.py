"""The docs site (``gristmill docs build``): the UI's catalog, asset and graph pages written as
static files that open from ``file://`` (docs/docs-site.md)."""

from gristmill.ui.docsite.build import Built, build_site
from gristmill.ui.docsite.links import rewrite_links

__all__ = ["Built", "build_site", "rewrite_links"]
