"""Loads a project folder: calls the reader of each kind of file and puts their specs together.
Every error a reader raises names the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gristmill.config.targets import choose
from gristmill.errors import ConfigError
from gristmill.project.checks import load_check_files
from gristmill.project.contracts import load_contracts, with_schema_contracts
from gristmill.project.dashboards import load_dashboards
from gristmill.project.definition import PROJECT_FILE, Project, find_root
from gristmill.project.metric_preaggregations import preaggregation_models
from gristmill.project.metrics import load_metrics
from gristmill.project.models import load_models
from gristmill.project.probe import ProbeFor
from gristmill.project.settings_file import check_model_folders, load_settings
from gristmill.project.sources import load_sources
from gristmill.project.unittests import load_unit_tests


def load_project(
    start: Path,
    dbt_vars: dict[str, Any] | None = None,
    probe: ProbeFor | None = None,
    *,
    target: str | None = None,
) -> Project:
    """``dbt_vars``: ``--vars`` for a dbt project (over the vars of dbt_project.yml); ``probe``:
    what compiling a dbt project asks, by engine kind (``gristmill.engines.registry.compile_probe``;
    None: only what needs no engine, see ``project/probe.py``); ``target``: ``--target`` (see
    config/targets.py: the project's settings are that target's)."""
    root = find_root(start)
    if not (root / PROJECT_FILE).is_file():
        if target:
            raise ConfigError(
                f"--target {target}: targets are declared in gristmill.toml; this is a dbt project",
                hint="a dbt project runs on the embedded engine",
            )
        from gristmill.project.dbt import load_dbt_project  # Jinja and the dbt layer only when needed

        return load_dbt_project(root, dbt_vars, probe)  # a dbt project folder, run as it is
    if dbt_vars:
        raise ConfigError(
            "--vars sets the vars of a dbt project; this is a Gristmill project",
            location=PROJECT_FILE,
            hint="use ${env:NAME} in gristmill.toml and the YAML files instead",
        )
    settings = choose(load_settings(root), target)
    check_model_folders(root, settings)
    sources, source_checks = load_sources(root)
    models, header_checks = load_models(root, settings)
    contracts = load_contracts(root)
    sources = with_schema_contracts(sources, contracts)
    checks = [
        *header_checks,
        *source_checks,
        *load_check_files(root),
        *(c for contract in contracts.values() for c in contract.checks),
    ]
    assets = [*models, *(t.asset for s in sources.values() for t in s.tables.values())]
    metrics = load_metrics(root, assets)
    models = {**models, **preaggregation_models(root, metrics, assets)}  # materialize: as models of the DAG
    return Project(
        root,
        settings,
        sources,
        models,
        tuple(checks),
        load_unit_tests(root),
        contracts,
        metrics=metrics,
        dashboards=load_dashboards(root, assets, metrics.metrics),
    )
