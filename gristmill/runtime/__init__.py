"""Executes plans: loads and builds in dependency order, checks before publishing, records history."""

from gristmill.runtime.audit import CheckResult
from gristmill.runtime.events import StepFinished, StepStarted
from gristmill.runtime.executor import RunResult, StepResult, execute
from gristmill.runtime.lock import run_lock

__all__ = ["CheckResult", "RunResult", "StepFinished", "StepResult", "StepStarted", "execute", "run_lock"]
