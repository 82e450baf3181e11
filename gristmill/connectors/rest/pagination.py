"""Pagination styles: each decides the first request and, from a page, the next one (or none)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from gristmill.connectors.rest.config import (
    CursorPagination,
    LinkHeaderPagination,
    NextUrlPagination,
    NoPagination,
    OffsetPagination,
    PagePagination,
)
from gristmill.errors import Missing

PaginateOptions = (
    NoPagination
    | CursorPagination
    | OffsetPagination
    | PagePagination
    | LinkHeaderPagination
    | NextUrlPagination
)


@dataclass(frozen=True)
class PageRequest:
    url: str
    params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Page:
    """One response, decoded: what a paginator needs to ask for the next one."""

    response: httpx.Response
    body: Any
    count: int
    """Records on this page."""


class Paginator(Protocol):
    def first(self) -> PageRequest: ...

    def after(self, page: Page) -> PageRequest | None: ...


def lookup(body: Any, path: str, *, optional_leaf: bool = False) -> Any:
    """The value at a dotted path (``data.items``, ``results.0``); "" is the body itself.

    With ``optional_leaf`` a missing last key gives None (an API may omit ``next`` on the last
    page), but a missing parent still fails: that is more likely a misspelt path."""
    node = body
    parts = path.split(".") if path else []
    for depth, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif optional_leaf and depth == len(parts) - 1 and isinstance(node, dict):
            return None
        else:
            at = ".".join(parts[:depth]) or "the top level"
            found = (
                "keys there: " + ", ".join(map(str, node))
                if isinstance(node, dict)
                else f"{at} is {type(node).__name__}, not an object"
            )
            raise Missing(f'no "{path}" in the response ({found})')
    return node


class _PathOnPages:
    """A pagination path read from every page. A path that is absent from the first page is an
    error naming it and the keys there (a misspelt ``next_cursor`` would otherwise end the read
    after one page, as a success); null always means "no more pages". Once a page had the path,
    a later page without it is the last: some APIs leave ``next`` out of the last page."""

    def __init__(self, path: str, option: str) -> None:
        self.path = path
        self.option = option
        self.seen = False

    def read(self, body: Any) -> Any:
        try:
            value = lookup(body, self.path, optional_leaf=self.seen)
        except Missing as err:
            raise Missing(
                f"paginate: {self.option}: {err.message}",
                hint=f'a page without "{self.path}" cannot say whether another follows: check the path '
                "against the response (a path that is there with null on the last page is fine)",
            ) from None
        self.seen = True
        return value


class _Single:
    def __init__(self, url: str, params: dict[str, str]) -> None:
        self.url = url
        self.params = params

    def first(self) -> PageRequest:
        return PageRequest(self.url, tuple(self.params.items()))

    def after(self, page: Page) -> PageRequest | None:
        return None


class _Cursor(_Single):
    def __init__(self, options: CursorPagination, url: str, params: dict[str, str]) -> None:
        super().__init__(url, params)
        self.options = options
        self.next_cursor = _PathOnPages(options.next_cursor, "next_cursor")

    def after(self, page: Page) -> PageRequest | None:
        if page.count == 0:
            return None
        cursor = self.next_cursor.read(page.body)
        if cursor in (None, ""):
            return None
        return PageRequest(self.url, tuple({**self.params, self.options.cursor_param: str(cursor)}.items()))


class _Offset(_Single):
    def __init__(self, options: OffsetPagination, url: str, params: dict[str, str]) -> None:
        super().__init__(url, params)
        self.options = options
        self.offset = options.start
        self.total = None if options.total is None else _PathOnPages(options.total, "total")

    def _request(self, offset: int) -> PageRequest:
        paging = {self.options.offset_param: str(offset), self.options.limit_param: str(self.options.limit)}
        return PageRequest(self.url, tuple({**self.params, **paging}.items()))

    def first(self) -> PageRequest:
        return self._request(self.offset)

    def after(self, page: Page) -> PageRequest | None:
        self.offset += page.count
        if page.count == 0:
            return None
        if self.total is not None:
            total = self.total.read(page.body)
            if isinstance(total, int | float) and not isinstance(total, bool):
                return None if self.offset >= total else self._request(self.offset)
        # Without a total, a short page is the last one.
        return None if page.count < self.options.limit else self._request(self.offset)


class _PageNumber(_Single):
    def __init__(self, options: PagePagination, url: str, params: dict[str, str]) -> None:
        super().__init__(url, params)
        self.options = options
        self.number = options.start

    def _request(self) -> PageRequest:
        paging = {self.options.page_param: str(self.number)}
        if self.options.size is not None:
            paging[self.options.size_param] = str(self.options.size)
        return PageRequest(self.url, tuple({**self.params, **paging}.items()))

    def first(self) -> PageRequest:
        return self._request()

    def after(self, page: Page) -> PageRequest | None:
        if page.count == 0:
            return None
        self.number += 1
        return self._request()


class _LinkHeader(_Single):
    """RFC 8288 (formerly 5988) ``Link: <url>; rel="next"``; the URL carries every parameter."""

    def __init__(self, options: LinkHeaderPagination, url: str, params: dict[str, str]) -> None:
        super().__init__(url, params)
        self.options = options

    def after(self, page: Page) -> PageRequest | None:
        link = page.response.links.get(self.options.rel, {}).get("url")
        if not link or page.count == 0:
            return None
        return PageRequest(str(page.response.url.join(link)))


class _NextUrl(_Single):
    def __init__(self, options: NextUrlPagination, url: str, params: dict[str, str]) -> None:
        super().__init__(url, params)
        self.options = options
        self.next_url = _PathOnPages(options.next_url, "next_url")

    def after(self, page: Page) -> PageRequest | None:
        if page.count == 0:
            return None
        link = self.next_url.read(page.body)
        if not link:
            return None
        return PageRequest(str(page.response.url.join(str(link))))


def paginator(options: PaginateOptions | None, url: str, params: dict[str, str]) -> Paginator:
    """A fresh paginator for one pass over ``url`` (it keeps the position)."""
    if options is None or isinstance(options, NoPagination):
        return _Single(url, params)
    if isinstance(options, CursorPagination):
        return _Cursor(options, url, params)
    if isinstance(options, OffsetPagination):
        return _Offset(options, url, params)
    if isinstance(options, PagePagination):
        return _PageNumber(options, url, params)
    if isinstance(options, LinkHeaderPagination):
        return _LinkHeader(options, url, params)
    return _NextUrl(options, url, params)
