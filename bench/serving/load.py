"""The load: concurrent clients paging through filtered results by their ``next`` links.

First one client walks the first ``walk`` pages from the first one, following ``next`` (untimed);
the walk checks every page holds the rows it should and gives the pages' addresses. Then, for
``seconds``, each of ``clients`` asyncio clients starts at a random walked page and follows
``next`` for up to ``chain`` pages, then jumps again. Every request is timed from send to the
last byte of its body; a response that is not 200 or holds a wrong number of rows is an error."""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import orjson

NextOf = Callable[[dict[str, Any], httpx.Response], str | None]
"""Where a page says the next one is (an absolute or root-relative URL), or None at the end."""
RowsOf = Callable[[dict[str, Any]], int]


@dataclass(frozen=True)
class Figures:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


@dataclass
class Tally:
    """Every timed request of one case, over all its rounds."""

    times: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def figures(self) -> Figures:
        cuts = statistics.quantiles(self.times, n=100) if len(self.times) > 1 else [0.0] * 99
        return Figures(len(self.times), len(self.errors), self.seconds, cuts[49] * 1000, cuts[98] * 1000)


class Refused(Exception):
    """The first page could not be read: the server lacks the endpoint (404) or refuses."""


def walk(
    base: str, first: str, next_of: NextOf, rows_of: RowsOf, pages: int, headers: dict[str, str]
) -> list[str]:
    found: list[str] = []
    url: str | None = first
    with httpx.Client(base_url=base, timeout=60, headers=headers) as client:
        while url and len(found) < pages:
            response = client.get(url)
            if response.status_code != 200:
                raise Refused(f"{response.status_code} on {url}: {response.text[:300]}")
            body = response.json()
            if rows_of(body) != 100:
                break  # the last page
            found.append(url)
            url = next_of(body, response)
    if len(found) < 2:
        raise Refused(f"fewer than two full pages from {first}")
    return found


async def _client(
    client: httpx.AsyncClient,
    pages: list[str],
    next_of: NextOf,
    rows_of: RowsOf,
    chain: int,
    until: float,
    times: list[float],
    errors: list[str],
    seed: int,
) -> None:
    chooser = random.Random(seed)
    while time.perf_counter() < until:
        url: str | None = chooser.choice(pages)
        for _ in range(chain):
            if url is None or time.perf_counter() >= until:
                break
            started = time.perf_counter()
            response = await client.get(url)
            body = orjson.loads(response.content)
            times.append(time.perf_counter() - started)
            if response.status_code != 200 or rows_of(body) not in range(1, 101):
                errors.append(f"{response.status_code} {url}")
                break
            url = next_of(body, response)


async def _run(
    base: str,
    pages: list[str],
    next_of: NextOf,
    rows_of: RowsOf,
    clients: int,
    seconds: float,
    chain: int,
    headers: dict[str, str],
    tally: Tally,
) -> None:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits, headers=headers) as client:
        started = time.perf_counter()
        until = started + seconds
        seed = len(tally.times)
        await asyncio.gather(
            *(
                _client(client, pages, next_of, rows_of, chain, until, tally.times, tally.errors, seed + n)
                for n in range(clients)
            )
        )
        tally.seconds += time.perf_counter() - started


@dataclass
class Case:
    """One server's paging, walked once, then loaded round after round into its tally."""

    base: str
    first: str
    next_of: NextOf
    rows_of: RowsOf
    headers: dict[str, str] = field(default_factory=dict)
    pages: list[str] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    turns: list[Figures] = field(default_factory=list)
    """wrk's figures, one per turn (the Python client fills ``tally`` instead)."""

    def prepare(self, walk_pages: int = 200) -> None:
        """Walk the first pages (``Refused`` when the server does not serve them)."""
        self.pages = walk(self.base, self.first, self.next_of, self.rows_of, walk_pages, self.headers)

    def load(self, clients: int, seconds: float, chain: int = 10) -> None:
        run = _run(
            self.base,
            self.pages,
            self.next_of,
            self.rows_of,
            clients,
            seconds,
            chain,
            self.headers,
            self.tally,
        )
        asyncio.run(run)


def next_in_body(key: str) -> NextOf:
    """``next`` from a JSON field holding a URL (absolute, or relative to the server)."""

    def find(body: dict[str, Any], response: httpx.Response) -> str | None:
        following = body.get(key)
        return urljoin(str(response.url), following) if following else None

    return find


_WRK_SCRIPT = """
local paths = {%s}
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""
_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_turn(case: Case, clients: int, seconds: float, folder: Path) -> Figures:
    """One turn of wrk (one thread, ``clients`` connections) over the walked pages, each a
    ``next`` link of the page before, picked at random per request. wrk's own client costs a
    fraction of Python's, so the server, not the load generator, is what is measured."""
    paths = []
    for url in case.pages:
        parts = urlsplit(urljoin(case.base, url))
        paths.append(json.dumps(parts.path + ("?" + parts.query if parts.query else "")))
    script = folder / f"pages-{abs(hash(case.first))}.lua"
    script.write_text(_WRK_SCRIPT % ", ".join(paths))
    headers = [part for name, value in case.headers.items() for part in ("-H", f"{name}: {value}")]
    command = ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script)]
    done = subprocess.run([*command, *headers, case.base], capture_output=True, text=True, check=True)
    out = done.stdout
    found = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    count, elapsed, unit = found.groups()  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failures = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)

    def percent(p: str) -> float:
        value, unit = re.search(rf"^\s*{p}%\s+([\d.]+)(\w+)", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * _UNIT[unit]

    wrong = int(errors.group(1)) if errors else 0
    wrong += sum(map(int, failures.groups())) if failures else 0
    seconds = float(elapsed) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]
    return Figures(int(count), wrong, seconds, percent("50"), percent("99"))


def combine(turns: list[Figures]) -> Figures:
    """All turns of a case: requests over the summed time; p50 and p99 the median of the turns'."""
    return Figures(
        sum(t.requests for t in turns),
        sum(t.errors for t in turns),
        sum(t.seconds for t in turns),
        statistics.median(t.p50_ms for t in turns),
        statistics.median(t.p99_ms for t in turns),
    )
