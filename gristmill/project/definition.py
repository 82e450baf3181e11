"""What a loaded project is, and where its folder starts: shared by every reader of project files."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlglot import exp

from gristmill.config.settings import ProjectSettings
from gristmill.errors import ProjectError
from gristmill.project.contracts import ContractSpec
from gristmill.project.dashboard_specs import Dashboard
from gristmill.project.metric_specs import MetricLayer
from gristmill.project.specs import CheckSpec, HookSpec, ModelSpec, SemanticSpec, SourceSpec
from gristmill.project.unittests import UnitTestSpec

PROJECT_FILE = "gristmill.toml"
DBT_PROJECT_FILE = "dbt_project.yml"
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
"""A schema, model or source name as the project may spell it (it becomes part of an asset name)."""


@dataclass(frozen=True)
class Project:
    root: Path
    settings: ProjectSettings
    sources: dict[str, SourceSpec]
    models: dict[str, ModelSpec]
    checks: tuple[CheckSpec, ...]
    unit_tests: tuple[UnitTestSpec, ...] = ()
    contracts: dict[str, ContractSpec] = field(default_factory=dict)
    """Data contracts by dataset; their checks are already in ``checks``."""
    on_run_start: tuple[HookSpec, ...] = ()
    """SQL run before a run builds anything (a dbt project's ``on-run-start``)."""
    on_run_end: tuple[HookSpec, ...] = ()
    """SQL run after a run's steps (a dbt project's ``on-run-end``), whatever their outcome."""
    input_types: Callable[[str], dict[str, exp.DataType] | None] | None = None
    """A dbt project's column types of an asset, known before anything runs: a dbt unit test's
    input rows get every column (NULL where not given) with these types, as dbt gives them."""
    semantic: tuple[SemanticSpec, ...] = ()
    """A dbt project's semantic models, metrics, saved queries and exposures, as declared: kept
    for serving metrics; nothing runs them."""
    metrics: MetricLayer = field(default_factory=MetricLayer)
    """The semantic models and metrics of ``metrics/*.yml`` (see docs/metrics.md)."""
    dashboards: dict[str, Dashboard] = field(default_factory=dict)
    """``dashboards/*.md`` by name, checked (see docs/dashboards.md)."""

    def path(self, setting: str) -> Path:
        """A storage path from the settings, relative to the project root."""
        return (self.root / setting).resolve()


def find_root(start: Path) -> Path:
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / PROJECT_FILE).is_file() or (folder / DBT_PROJECT_FILE).is_file():
            return folder
    raise ProjectError(
        f"no {PROJECT_FILE} (or dbt_project.yml) in {start.resolve()} or any folder above it",
        hint="run `gristmill init <name>` to create a project, or pass --project <folder>",
    )
