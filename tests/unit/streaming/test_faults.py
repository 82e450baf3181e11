"""The crash points: a no-op in production, a kill only where a test sets the hook."""

from __future__ import annotations

import pytest

from gristmill.streaming import faults
from tests.support import crashing


def test_reaching_a_phase_does_nothing_unless_a_test_sets_the_hook() -> None:
    for phase in faults.PHASES:
        faults.reached(phase)  # no hook: the process lives on


def test_the_crashing_hook_counts_only_its_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    killed: list[int] = []
    monkeypatch.setattr(faults, "hook", faults.hook)
    monkeypatch.setattr(crashing.os, "kill", lambda pid, sig: killed.append(sig))
    crashing.kill_at("written", 2)
    faults.reached("written")
    faults.reached("committed")
    assert killed == []
    faults.reached("written")
    assert len(killed) == 1


def test_an_unknown_phase_is_refused() -> None:
    with pytest.raises(ValueError, match="no crash point"):
        crashing.kill_at("flushed")
