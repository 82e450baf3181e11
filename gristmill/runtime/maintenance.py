"""Work on the lake that builds nothing: collect what no environment serves, and point one
environment at what another serves. Both hold the run lock and leave the lake state they end with
for the next plan."""

from __future__ import annotations

from gristmill.engines.base import require_transactions
from gristmill.errors import GristmillError
from gristmill.runtime import planning
from gristmill.runtime.session import Session
from gristmill.state.lake import janitor
from gristmill.state.lake.environments import read_pointers, switch
from gristmill.state.lake.lake_state import LakeState


def gc(session: Session, older_than_days: int) -> list[str]:
    """Drop every model table no environment serves (and no served view reads), expire lake
    snapshots older than ``older_than_days`` and delete the files only they used."""
    with session.lock():
        with session.engine(read_only=False) as engine:
            assert engine is not None
            dropped = janitor.unused(LakeState.read(engine), superseded_only=False)
            with require_transactions(engine, "dropping unused tables").transaction():
                janitor.drop(engine, dropped)
            janitor.expire_files(engine, older_than_days)
            state = LakeState.read(engine)
        with session.history() as history:
            planning.remember(session, state, history)
        return dropped


def promote(session: Session, source_env: str, target_env: str) -> dict[str, str]:
    """Point ``target_env`` at the tables ``source_env`` serves: nothing is rebuilt. Returns the
    models whose table changed."""
    planning.check_env(source_env)
    planning.check_env(target_env)
    with session.lock(), session.history() as history:
        with session.engine(read_only=False) as engine:
            assert engine is not None
            wanted = read_pointers(engine, source_env)
            if not wanted:
                raise GristmillError(
                    f'environment "{source_env}" has no models',
                    hint=f"build it first: gristmill run --env {source_env}",
                )
            current = read_pointers(engine, target_env)
            changed = {a: p for a, p in wanted.items() if current.get(a) != p}
            run_id = history.runs.start("promote", f"{source_env} -> {target_env}")
            with require_transactions(engine, "switching an environment's views").transaction():
                switch(engine, target_env, changed, [], run_id)
            history.runs.finish(run_id, "success", 0.0, {"switched": len(changed)})
            state = LakeState.read(engine)
        planning.remember(session, state, history)
        return changed
