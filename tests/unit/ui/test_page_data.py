"""The UI's page data functions, without a browser or a server: what each page shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import pytest

from gristmill.errors import ConfigError
from gristmill.server.reading import ServedColumn, ServedRelation
from gristmill.state import RunRecord, StepRecord
from gristmill.ui.access import Visitor, csrf_ok, csrf_token, safe_next
from gristmill.ui.pages import asset, catalog, compare, overview, run, runs
from gristmill.ui.render import query, seconds, when


def _step(
    asset_name: str, status: str, attempt: int = 1, at: str | None = "2026-12-07T10:00:00+00:00"
) -> StepRecord:
    return StepRecord(
        asset_name, "table", "build", status, "", rows=10, seconds=2.0, attempt=attempt, started_at=at
    )


def test_the_timeline_has_a_bar_per_attempt_so_retries_show() -> None:
    spec = run.timeline(
        [
            _step("marts.a", "failed"),
            _step("marts.a", "success", attempt=2),
            _step("marts.b", "skipped", at=None),
        ]
    )
    assert spec is not None
    bars = spec["data"]["values"]
    assert [b["step"] for b in bars] == ["marts.a", "marts.a #2"]
    assert [b["status"] for b in bars] == ["failed", "success"]
    assert bars[0]["end"] == "2026-12-07T10:00:02+00:00"
    assert spec["encoding"]["x2"] == {"field": "end"}
    assert run.timeline([_step("marts.b", "skipped", at=None)]) is None


ORDERS = ServedRelation(
    "marts",
    "orders",
    "table",
    (ServedColumn("order_id", "BIGINT"), ServedColumn("email", "VARCHAR", "who ordered")),
    description="Orders as placed",
    owner="sales-team",
    tags=("finance",),
)
ITEMS = ServedRelation("marts", "items", "table", (ServedColumn("sku", "VARCHAR"),))


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("", ["marts.items", "marts.orders"]),
        ("orders", ["marts.orders"]),
        ("PLACED", ["marts.orders"]),
        ("finance", ["marts.orders"]),
        ("sales-team", ["marts.orders"]),
        ("sku", ["marts.items"]),
        ("nothing-like-this", []),
    ],
)
def test_the_catalog_searches_names_descriptions_tags_owners_and_columns(q: str, found: list[str]) -> None:
    hits = catalog.search({"marts.orders": ORDERS, "marts.items": ITEMS}, q)
    assert [h["relation"].full_name for h in hits] == found


def test_a_column_hit_names_the_column() -> None:
    (hit,) = catalog.search({"marts.orders": ORDERS}, "who ordered")
    assert hit["columns"] == ["email"]


def test_the_sample_masks_personal_data_in_the_query_itself() -> None:
    sql = asset.sample_query(ORDERS, {"email": "email"}, limit=2).sql("duckdb")
    db = duckdb.connect()
    db.execute("create schema marts")
    db.execute(
        "create table marts.orders as"
        " select * from (values (1, 'a@x.org'), (2, 'b@x.org')) t(order_id, email)"
    )
    rows = db.execute(sql).fetchall()
    assert rows == [(1, "masked (email)"), (2, "masked (email)")]
    assert "a@x.org" not in str(rows)


def test_compare_reads_the_form_as_a_diff_request() -> None:
    against = compare.request_of("marts.orders", "dev", "", "", "order_id, line")
    assert (against.env, against.against, against.snapshot, against.key) == (
        "dev",
        "prod",
        None,
        ("order_id", "line"),
    )
    snapshot = compare.request_of("marts.orders", "prod", "dev", "12", "")
    assert (snapshot.against, snapshot.snapshot) == (None, 12)
    with pytest.raises(ConfigError, match="not a snapshot id"):
        compare.request_of("marts.orders", "dev", "", "twelve", "")


@dataclass
class FakeWorkspace:
    """The run history as the pages see it: a list of runs."""

    recorded: list[RunRecord] = field(default_factory=list)

    def runs(
        self, limit: int = 20, *, status: str | None = None, since: str | None = None, **_: Any
    ) -> list[RunRecord]:
        found = [
            r
            for r in self.recorded
            if (not status or r.status == status) and (not since or r.started_at >= since)
        ]
        return sorted(found, key=lambda r: -r.run_id)[:limit]


@dataclass
class FakeServices:
    workspace: FakeWorkspace
    env: str = "prod"


def _run(run_id: int, status: str, env: str | None = None) -> RunRecord:
    selection = f"marts.orders --env {env}" if env else "marts.orders"
    return RunRecord(run_id, "run", selection, status, f"2026-12-0{run_id}T10:00:00", None, 1.0, {})


def test_runs_filter_by_status_env_and_date() -> None:
    services: Any = FakeServices(
        FakeWorkspace([_run(1, "success"), _run(2, "failed", "dev"), _run(3, "success", "dev")])
    )
    assert [r["run"].run_id for r in runs.data(services)["rows"]] == [3, 2, 1]
    assert [r["run"].run_id for r in runs.data(services, status="failed")["rows"]] == [2]
    assert [r["run"].run_id for r in runs.data(services, env="dev")["rows"]] == [3, 2]
    assert [r["run"].run_id for r in runs.data(services, since="2026-12-02")["rows"]] == [3, 2]
    with pytest.raises(ConfigError, match="no run status"):
        runs.data(services, status="exploded")
    with pytest.raises(ConfigError, match="not a date"):
        runs.data(services, since="yesterday")


def test_streams_behind_are_those_with_lag_or_an_error() -> None:
    shown = overview.lagging_streams(
        [{"model": "a", "lag": 0}, {"model": "b", "lag": 12}, {"model": "c", "state": "failed"}]
    )
    assert [s["model"] for s in shown] == ["b", "c"]


def test_login_only_returns_to_a_path_of_this_server() -> None:
    assert safe_next("/runs?status=failed") == "/runs?status=failed"
    for outside in ("https://evil.example/", "//evil.example/", "/\\evil.example", "", None):
        assert safe_next(outside) == "/"


def test_the_csrf_token_is_tied_to_the_session() -> None:
    visiting = Visitor("abc", csrf_token("gmk_key_one"))
    assert csrf_ok(visiting, csrf_token("gmk_key_one"))
    assert not csrf_ok(visiting, csrf_token("gmk_key_two"))
    assert not csrf_ok(visiting, None)
    assert not csrf_ok(visiting, "forged")


def test_formatting_helpers() -> None:
    assert query("/runs", status="failed", env="", since=None) == "/runs?status=failed"
    assert query("/runs") == "/runs"
    assert when("2026-12-07T21:47:01+01:00") == "2026-12-07 20:47:01"
    assert when(None) == "\N{EN DASH}"
    assert seconds(3.21) == "3.2 s" and seconds(125) == "2 min 5 s" and seconds(3720) == "1 h 2 min"


def _live_fragment(status: str) -> str:
    from gristmill.ui.registry import NAV
    from gristmill.ui.render import Ui

    ui = Ui(Any, NAV)  # type: ignore[arg-type]  # templates only: no service is called
    record = RunRecord(7, "run", "", status, "2026-12-07T10:00:00", None, None, {})
    values = {"run": record, "steps": [_step("marts.a", "running")], "skipped": 0, "checks": [], "step": ""}
    return ui.templates.get_template("run_live.html.j2").render(
        **values, chart=run.timeline(values["steps"]), live=status == "running"
    )


def test_a_running_run_polls_for_its_steps_and_a_finished_one_stops() -> None:
    running = _live_fragment("running")
    assert 'hx-get="/runs/7/live"' in running and 'hx-trigger="every 2s"' in running
    assert "hx-trigger" not in _live_fragment("success")


def test_chart_specs_cannot_close_their_script_element() -> None:
    from gristmill.ui.registry import NAV
    from gristmill.ui.render import Ui

    chart = Ui(Any, NAV).templates.filters["chart"]  # type: ignore[arg-type]
    assert "</script>" not in chart({"title": "</script><script>alert(1)</script>"})


def test_a_backfill_from_the_runs_form_takes_days_and_nothing_that_reads_as_an_option() -> None:
    from gristmill.ui.pages.runs import _days
    from gristmill.ui.services import RunLauncher

    assert _days("", "") and _days("2024-01-01", "") and _days("2024-01-01", "2024-01-31")
    assert not _days("", "2024-01-31")  # `to` needs `from`
    assert not _days("--project", "") and not _days("2024-13-01", "")
    started: list[list[str]] = []
    launcher = RunLauncher.__new__(RunLauncher)
    launcher._start = lambda args: started.append(args) or 7  # type: ignore[method-assign]
    assert launcher.backfill(["+marts.daily"], "prod", "2024-01-01", "2024-01-31") == 7
    assert started == [
        [
            "backfill",
            "--env",
            "prod",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-31",
            "--select",
            "+marts.daily",
        ]
    ]
