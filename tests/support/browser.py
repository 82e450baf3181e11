"""Pages in a real browser: Playwright for Python driving Debian's Chromium (``/usr/bin/chromium``,
installed by ``scripts/setup``). No browser is ever downloaded: ``playwright install`` is never
run, the executable is named.

Use from a test module with ``pytest_plugins = ["tests.support.browser"]``; the fixtures:

- ``browser``: one headless Chromium per test module.
- ``page``: a fresh page (1280x900) whose console errors and uncaught page errors are collected in
  ``page.console_errors`` (a list of text), for tests to assert empty.
- ``screenshots``: the folder screenshots go to (``tests/<area>/screenshots/``, next to the test
  module, git-ignored; CI keeps them as artefacts).

Without Chromium or Playwright the tests skip, naming what is missing, except under CI
(``CI=true``), where a missing browser fails: a browser test that silently never runs tests nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("GRISTMILL_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
]
VIEWPORT = {"width": 1280, "height": 900}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: browser tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # One per module, not per session: Playwright's sync API runs an asyncio loop in the main
    # thread while it is open, and later tests that call asyncio.run() there would fail.
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing: apt-get install chromium (scripts/setup does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed: pip install playwright (a dev dependency)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.console_errors = errors
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Path:
    folder = Path(request.path).parent / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder
