"""The web UI of ``gristmill serve``: server-rendered pages at ``/`` beside the data API.

Jinja2 renders every page on the server; htmx (vendored) swaps small fragments (a running run's
steps); Vega-Lite (vendored) draws charts from specs the pages embed. Nothing is fetched from the
internet and there is no Node build step: ``static/`` holds the minified files as published.

``ui_router(services)`` (``app.py``) is what ``Workspace.serve`` mounts; every page is a module
of ``pages/`` registered in ``registry.py``; ``access.py`` is the login, the cookie and CSRF.
"""

from gristmill.ui.app import ui_router
from gristmill.ui.services import UiServices

__all__ = ["UiServices", "ui_router"]
