"""The facade stays a facade: one short method per verb, the work done in the runtime."""

from __future__ import annotations

import inspect
import subprocess
import sys

from gristmill.workspace import Workspace

MAX_LINES = 25
"""A verb method's budget, signature and docstring included: more means work that belongs below."""


def _methods() -> dict[str, object]:
    return {
        name: member
        for name, member in vars(Workspace).items()
        if inspect.isfunction(member) or isinstance(member, property)
    }


def test_every_workspace_method_is_short() -> None:
    long = {}
    for name, member in _methods().items():
        function = member.fget if isinstance(member, property) else member
        lines = len(inspect.getsourcelines(function)[0])  # type: ignore[arg-type]
        if lines > MAX_LINES:
            long[name] = lines
    assert not long, f"Workspace methods over {MAX_LINES} lines: {long}"


def test_the_verbs_are_all_there() -> None:
    verbs = {
        "plan", "run", "gc", "promote", "check", "quality_history", "query", "lineage", "assets", "runs",
        "logs", "cancel", "failed_steps", "steps", "test", "stream", "backfill", "backfills", "serve",
    }  # fmt: skip
    assert verbs <= set(_methods())


def test_importing_the_facade_imports_no_runtime() -> None:
    """Every CLI command loads the facade: the runtime (and the data stack) come with the verbs."""
    script = "import sys, gristmill.workspace; print(sorted(sys.modules))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    modules = done.stdout
    for heavy in (
        "gristmill.runtime",
        "gristmill.state",
        "gristmill.plan",
        "gristmill.project",
        "sqlglot",
        "duckdb",
    ):
        assert f"'{heavy}'" not in modules, heavy
