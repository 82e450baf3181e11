"""Runs as the history tells them: their steps and logs, what they failed, and asking a running
one to stop."""

from __future__ import annotations

import time

from gristmill._util.processes import process_alive
from gristmill.errors import GristmillError
from gristmill.plan import AssetGraph
from gristmill.runtime.published import split_column
from gristmill.runtime.session import Session
from gristmill.state import LogRecord, RunHistory, RunRecord, StepRecord
from gristmill.state.records import RUN_DIED


def _no_run(run_id: int, lister: str = "runs") -> GristmillError:
    return GristmillError(
        f"no run {run_id} in this project's history", hint=f"`gristmill {lister}` lists the runs"
    )


def logs(
    session: Session, graph: AssetGraph, run_id: int, asset: str | None, grep: str | None
) -> list[LogRecord]:
    """What the steps of a run logged (one step's with ``asset``), optionally only matching lines."""
    with session.history() as history:
        if history.runs.get(run_id) is None:
            raise _no_run(run_id)
        if asset is not None and asset not in graph.assets:
            asset = split_column(asset, graph)[0]
        return history.runs.step_logs(run_id, asset, grep=grep)


def steps(session: Session, run_id: int) -> list[StepRecord]:
    with session.history() as history:
        found = history.runs.steps(run_id)
    if not found:
        raise _no_run(run_id, "history")
    return found


def failed_steps(session: Session, graph: AssetGraph, run_id: int) -> list[str]:
    """The assets a run failed, did not run because of a failure, or cancelled. Of a run whose
    process died, every asset it recorded: a step it recorded as succeeded may have waited for a
    commit that never came (steps share commits); the planner skips again what did commit, since
    its version is in the lake."""
    recorded = steps(session, run_id)
    with session.history() as history:
        history.runs.mark_abandoned()
        record = history.runs.get(run_id)
    died = record is not None and record.status == "failed" and record.summary.get("error") == RUN_DIED
    final: dict[str, StepRecord] = {}
    for step in recorded:
        if step.asset not in final or step.attempt >= final[step.asset].attempt:
            final[step.asset] = step
    return [
        a
        for a, s in final.items()
        if (died or s.status in ("failed", "upstream_failed", "cancelled")) and a in graph.assets
    ]


def cancel(session: Session, run_id: int, wait: float) -> RunRecord:
    """Ask a running run to stop (what it is building rolls back) and wait for it to end."""
    with session.history() as history:
        found = history.runs.get(run_id)
        if found is None:
            raise _no_run(run_id)
        if found.status != "running":
            raise GristmillError(f"run {run_id} is not running (it is {found.status})")
        # Through the state store, not a signal: a run started in the background by a script
        # ignores SIGINT, and a signal reaches only the main thread of its process.
        history.runs.request_cancel(run_id, f"cancelled by `gristmill cancel {run_id}`")
        pid = history.runs.pid(run_id)
        if pid and not process_alive(pid):
            history.runs.mark_abandoned()
        ended = _ended(history, run_id, time.monotonic() + wait)
        if ended is not None:
            return ended
        raise GristmillError(
            f"run {run_id} (pid {pid}) has not stopped after {wait:g} s",
            hint="it was asked to stop and will (a step that ignores the stop is abandoned after "
            "[run] stop_grace); wait longer with --wait, or check the process",
        )


def _ended(history: RunHistory, run_id: int, deadline: float) -> RunRecord | None:
    while time.monotonic() < deadline:
        now = history.runs.get(run_id)
        if now is not None and now.status != "running":
            return now
        time.sleep(0.1)
    return None
