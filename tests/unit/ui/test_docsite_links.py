"""The docs site's links: server paths become paths relative to the file holding them."""

from __future__ import annotations

import pytest

from gristmill.ui.docsite.links import file_of, relative, rewrite_links


@pytest.mark.parametrize(
    ("path", "file"),
    [
        ("/", "index.html"),
        ("/catalog", "index.html"),
        ("/catalog/marts/fct_invoice_line", "catalog/marts/fct_invoice_line.html"),
        ("/graph", "graph.html"),
        (
            "/graph/columns/marts/fct_invoice_line/revenue",
            "graph/columns/marts/fct_invoice_line/revenue.html",
        ),
        ("/graph/static/graph.js", "graph/static/graph.js"),
        ("/ui/static/vendor/vega.min.js", "ui/static/vendor/vega.min.js"),
        ("/runs/3", None),
        ("/compare", None),
        ("/catalog/../../etc/passwd", None),
    ],
)
def test_each_server_path_has_its_file_or_none(path: str, file: str | None) -> None:
    assert file_of(path) == file


def test_links_are_relative_to_the_page_holding_them() -> None:
    page = "catalog/marts/fct_invoice_line.html"
    assert relative("/catalog/staging/stg_invoice", page) == "../staging/stg_invoice.html"
    assert relative("/catalog/marts/dim_customer", page) == "dim_customer.html"
    assert relative("/", page) == "../../index.html"
    assert relative("/ui/static/ui.css?v=1", page) == "../../ui/static/ui.css"  # static: query dropped
    assert relative("/graph?focus=marts.x", "index.html") == "graph.html?focus=marts.x"  # a page reads it
    assert relative("#top", page) == "#top"
    assert relative("data:,", page) == "data:,"


def test_rewrite_keeps_text_of_server_only_links_and_escapes_queries() -> None:
    html = (
        '<a href="/catalog/raw/x">x</a> <a href="/runs/3">#3</a> '
        '<a href="/graph?q=a&amp;colour=owner">g</a> <script src="/ui/static/ui.js?v=1"></script>'
    )
    written = rewrite_links(html, "index.html")
    assert '<a href="catalog/raw/x.html">x</a>' in written
    assert '<a data-server-only="/runs/3">#3</a>' in written  # no href: plain text, not a dead link
    assert 'href="graph.html?q=a&amp;colour=owner"' in written
    assert 'src="ui/static/ui.js"' in written


def test_links_to_files_not_written_are_dropped() -> None:
    written = rewrite_links('<a href="/catalog/raw/gone">gone</a>', "index.html", present={"index.html"})
    assert "href" not in written
