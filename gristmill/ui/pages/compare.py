"""Compare: the data diff of one table between two environments, or against a snapshot
(``gristmill/runtime/datadiff.py`` joins on the key in the engine). The form is a GET: a
comparison is a link. Nothing runs until a table is chosen."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response

from gristmill.errors import ConfigError, GristmillError
from gristmill.runtime.diffresult import KINDS, DiffRequest

if TYPE_CHECKING:
    from fastapi import APIRouter

    from gristmill.ui.render import Ui
    from gristmill.ui.services import UiServices

SAMPLE = 20


def request_of(table: str, env: str, against: str, snapshot: str, key: str, columns: str = "") -> DiffRequest:
    """The diff the form asks for: ``snapshot`` (a lake snapshot id) compares ``env`` with itself
    as it was then; else ``env`` against ``against`` (default prod)."""
    at: int | None = None
    if snapshot:
        if not snapshot.isdigit():
            raise ConfigError(f'snapshot "{snapshot}" is not a snapshot id', hint="a number, e.g. 12")
        at = int(snapshot)
    return DiffRequest(
        table=table,
        env=env or "dev",
        against=None if at is not None else (against or "prod"),
        snapshot=at,
        key=tuple(k.strip() for k in key.split(",") if k.strip()),
        columns=tuple(c.strip() for c in columns.split(",") if c.strip()),
        sample=SAMPLE,
    )


def data(
    services: UiServices,
    *,
    table: str = "",
    env: str = "",
    against: str = "",
    snapshot: str = "",
    key: str = "",
) -> dict[str, Any]:
    form = {
        "table": table,
        "env": env or "dev",
        "against": against or "prod",
        "snapshot": snapshot,
        "key": key,
    }
    with services.reader.pin() as pinned:
        tables = sorted(name for name, r in pinned.relations().items() if r.kind != "source")
    envs = sorted({"prod", "dev", services.env})
    values: dict[str, Any] = {"form": form, "tables": tables, "envs": envs, "kinds": KINDS}
    values |= {"diff": None, "failure": None}
    if table:
        try:
            values["diff"] = services.diff(request_of(table, env, against, snapshot, key))
        except GristmillError as err:  # shown beside the form, which stays filled in to fix it
            values["failure"] = err
    return values


def mount(router: APIRouter, ui: Ui) -> None:
    def compare(
        request: Request, table: str = "", env: str = "", against: str = "", snapshot: str = "", key: str = ""
    ) -> Response:
        def build() -> dict[str, Any]:
            return data(ui.services, table=table, env=env, against=against, snapshot=snapshot, key=key)

        return ui.show(request, "compare.html.j2", build, active="compare")

    router.add_api_route("/compare", compare, methods=["GET"])
