"""The asset graph page on a generated 2,000-asset project: server-side layout time, and time to
first draw in Chromium against a floor page that only draws the same nodes and edges at the
given positions (no interaction, no colouring). Target: the page drawn in under 2 s.

    .venv/bin/python -m bench.ui_graph [--assets 2000] [--runs 3]

The generated project (``write_project``, also used by tests/e2e/ui/test_graph*.py): roots
``raw.*`` (one-row models standing for landed tables), one staging view per root, and layers of
``int.*`` and ``marts.*`` models in 20 domains, each reading 1-3 recent models of its domain
and now and then one of another domain (as real projects do), seeded so every run draws the same graph.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOTS = 0.06
"""Share of the assets that are roots (raw tables); as many again are their staging views."""
DOMAINS = 20
"""Groups of models that read each other (finance, marketing...), as real projects have."""
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]

FLOOR = """<!doctype html><html><body style="margin:0">
<svg id="g" width="1280" height="900"><g id="v"></g></svg>
<script>
fetch("/graph/layout.json").then(r => r.json()).then(d => {
  const n = d.nodes, parts = [];
  for (const e of d.edges) {
    const p = e[2];
    let path = "M" + p[0] + "," + p[1];
    for (let i = 2; i < p.length; i += 2) path += " L" + p[i] + "," + p[i + 1];
    parts.push('<path fill="none" stroke="#999" d="' + path + '"/>');
  }
  for (let i = 0; i < n.name.length; i++)
    parts.push('<g transform="translate(' + n.x[i] + ',' + n.y[i] + ')"><rect x="' + (-n.w[i] / 2) +
      '" y="-14" width="' + n.w[i] + '" height="28" fill="#fff" stroke="#777"/><text>' +
      n.name[i] + '</text></g>');
  const v = document.getElementById("v");
  v.innerHTML = parts.join("");
  v.setAttribute("transform", "scale(0.05)");
  requestAnimationFrame(() => { window.gristmillGraph = {drawnAt: performance.now()}; });
});
</script></body></html>"""


def write_project(root: Path, assets: int = 2000, seed: int = 7) -> list[str]:
    """A project of ``assets`` SQL models in ``root``; returns their names in build order."""
    rng = random.Random(seed)
    (root / "gristmill.toml").write_text('name = "ui_graph_bench"\n\n[storage]\nformat = "duckdb"\n')
    roots = max(1, int(assets * ROOTS))
    names: list[str] = []

    def write(schema: str, name: str, reads: list[str]) -> None:
        folder = root / "models" / schema
        folder.mkdir(parents=True, exist_ok=True)
        if not reads:
            sql = "select 1 as id, 'x' as label\n"
        else:
            first, *rest = reads
            joins = "".join(f" join {r} as r{k} using (id)" for k, r in enumerate(rest, 1))
            sql = f"select r0.id, r0.label from {first} as r0{joins}\n"
        (folder / f"{name}.sql").write_text(sql)
        names.append(f"{schema}.{name}")

    domains = [[] for _ in range(DOMAINS)]  # a domain's models read mostly its own recent ones
    for i in range(roots):
        write("raw", f"src_{i:04d}", [])
    for i in range(min(roots, assets - roots)):
        write("staging", f"stg_{i:04d}", [f"raw.src_{i:04d}"])
        domains[i % DOMAINS].append(names[-1])
    built = len(names)
    for i in range(assets - built):
        schema = "marts" if i % 4 == 3 else "int"
        own = domains[(i * DOMAINS) // (assets - built)]
        reads = rng.sample(own[-12:], k=min(len(own[-12:]), rng.choice((1, 1, 2, 2, 3))))
        if rng.random() < 0.08:  # now and then, a model joins another domain's table
            reads.append(rng.choice(rng.choice(domains)))
        write(schema, f"{'fct' if schema == 'marts' else 'int'}_{i:04d}", sorted(set(reads)))
        own.append(names[-1])
    return names


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a loopback port in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def graph_app(workspace: Any) -> Any:
    """The graph's router and the floor page, as one FastAPI app."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    from gristmill.ui.graph.router import graph_router

    app = FastAPI()
    app.include_router(graph_router(workspace))
    app.get("/bench/floor", response_class=HTMLResponse)(lambda: FLOOR)
    return app


def _drawn(page: Any, url: str, ready: str) -> float:
    page.goto(url)
    page.wait_for_function(ready, timeout=60_000)
    return float(page.evaluate("window.gristmillGraph.drawnAt"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from gristmill.ui.graph import payload
    from gristmill.ui.graph.lineage_graph import drawn_graph
    from gristmill.workspace.facade import Workspace

    with tempfile.TemporaryDirectory() as folder:
        write_project(Path(folder), args.assets)
        started = time.perf_counter()
        workspace = Workspace(folder)
        loaded = time.perf_counter() - started
        drawn = drawn_graph(workspace.project, workspace.graph)
        layouts = []
        for _ in range(args.runs):
            payload._cache.clear()
            started = time.perf_counter()
            laid = payload.layout_of(drawn)
            layouts.append(time.perf_counter() - started)
        page_ms, floor_ms, cold_ms = [], [], []
        with serving(graph_app(workspace)) as base, sync_playwright() as play:
            browser = play.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            ready = "window.gristmillGraph && window.gristmillGraph.drawnAt"
            for _ in range(args.runs):
                payload._cache.clear()
                cold_ms.append(_drawn(page, f"{base}/graph", ready))  # layout on the request
                page_ms.append(_drawn(page, f"{base}/graph", ready))
                floor_ms.append(_drawn(page, f"{base}/bench/floor", ready))
            browser.close()
        workspace.close()
    nodes, edges = len(laid["nodes"]["name"]), len(laid["edges"])
    print(f"assets {nodes}, edges {edges}, project load {loaded:.2f} s")
    print(f"crossings {laid['crossings']} (the topological order's: {laid['naive_crossings']})")
    print(f"server layout (cold, median of {args.runs}): {statistics.median(layouts) * 1000:.0f} ms")
    print(f"page drawn, layout not cached (median): {statistics.median(cold_ms):.0f} ms")
    print(f"page drawn, layout cached (median): {statistics.median(page_ms):.0f} ms")
    print(f"floor: nodes and edges at given positions (median): {statistics.median(floor_ms):.0f} ms")
    floor = statistics.median(floor_ms)
    print(f"ratio page (cold) / floor: {statistics.median(cold_ms) / floor:.2f}")
    print(f"ratio page (cached) / floor: {statistics.median(page_ms) / floor:.2f}")


if __name__ == "__main__":
    main()
