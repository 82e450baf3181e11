"""Loads a dbt project folder as a Gristmill project: reads its configs, properties and nodes,
compiles its models and maps its tests, each through the module that reads that part."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from gristmill.config.settings import ProjectSettings
from gristmill.errors import ConfigError
from gristmill.project.dbt.compile import Collecting, Compiler
from gristmill.project.dbt.config import (
    DBT_PROJECT_FILE,
    DbtProject,
    Target,
    read_project,
    read_target,
)
from gristmill.project.dbt.context import Scope, build_context
from gristmill.project.dbt.jinja import Jinja
from gristmill.project.dbt.nodes import find_models, find_seeds, find_snapshots
from gristmill.project.dbt.packages import load_macros
from gristmill.project.dbt.properties import read_properties
from gristmill.project.dbt.schemas import AssetTypes
from gristmill.project.dbt.seeds import SEEDS_SOURCE, seeds_source
from gristmill.project.dbt.semantic import semantic_specs
from gristmill.project.dbt.tests import dbt_checks
from gristmill.project.dbt.unit_tests import dbt_unit_tests
from gristmill.project.definition import Project
from gristmill.project.probe import NoProbe, ProbeFor
from gristmill.project.sources import load_sources
from gristmill.project.specs import CheckSpec, HookSpec, SourceSpec

log = logging.getLogger("gristmill.dbt")
GRISTMILL_SOURCES = "sources"


def load_dbt_project(
    root: Path, cli_vars: dict[str, Any] | None = None, probe: ProbeFor | None = None
) -> Project:
    """``cli_vars``: ``--vars``, over every var the project and its packages set; ``probe``: the
    probe of an engine kind, asked for the project's (None: constant queries fail and unit-test
    input types are unknown)."""
    project = read_project(root, cli_vars)
    settings = ProjectSettings(name=project.name)
    asked = probe(settings.engine.kind) if probe is not None else NoProbe()
    target = replace(read_target(root, project), probe=asked)
    jinja = Jinja()
    load_macros(jinja, project)
    render = _value_renderer(jinja, project, target)
    properties = read_properties(project, render)
    seeds = find_seeds(project, properties, render)
    for seed in seeds:
        if seed.enabled and (seed.config.get("pre-hook") or seed.config.get("post-hook")):
            log.warning("%s: the seed's hooks are not run: seeds land as a Gristmill source", seed.file)
    nodes = [
        *find_models(project, properties, jinja, render),
        *find_snapshots(project, properties, jinja, render),
        *seeds,
    ]
    tested = {
        name
        for (kind, name), entry in properties.entries.items()
        if kind == "models" and _has_tests(entry.data)
    }
    compiler = Compiler(project, target, jinja, properties, nodes)
    compiler.configure(tested)
    models = compiler.model_specs()

    sources, source_checks = _gristmill_sources(root, project)
    seed_spec = seeds_source([n for n in compiler.nodes if n.kind == "seed"], project.seed_paths[0])
    if seed_spec is not None:
        if SEEDS_SOURCE in sources:
            raise ConfigError(
                f'a Gristmill source is named "{SEEDS_SOURCE}", the name the dbt seeds take',
                location=sources[SEEDS_SOURCE].file,
                hint="rename that source file",
            )
        sources[SEEDS_SOURCE] = seed_spec
    landed = {t.asset for s in sources.values() for t in s.tables.values()}
    assets = {
        (f"{n.kind}s", n.name): n.asset for n in compiler.nodes if n.asset in models or n.asset in landed
    }

    def evaluate(expression: str, where: str) -> Any:
        scope = Scope("test", where.split(":")[0], "test")
        context = build_context(jinja, project, target, scope, compiler)
        return jinja.evaluate(expression, context, where=where)

    checks: list[CheckSpec] = [*source_checks, *dbt_checks(project, properties, assets, landed, evaluate)]
    for asset, error in compiler.unlanded_sources(landed).items():
        if asset in models and models[asset].error is None:
            models[asset] = replace(models[asset], error=error)
    unit_tests = dbt_unit_tests(compiler, properties.declared.get("unit_tests", []))
    semantic = semantic_specs(properties.declared, evaluate)
    seed_tables = {t.asset: t for t in seed_spec.tables.values()} if seed_spec is not None else {}
    hooks = {key: _run_hooks(jinja, project, target, compiler, key) for key in ("on-run-start", "on-run-end")}
    return Project(
        root,
        settings,
        sources,
        models,
        tuple(checks),
        unit_tests,
        on_run_start=hooks["on-run-start"],
        on_run_end=hooks["on-run-end"],
        input_types=AssetTypes(models, seed_tables, str(root), target.probe).types,
        semantic=semantic,
    )


def _run_hooks(
    jinja: Jinja, project: DbtProject, target: Target, compiler: Compiler, key: str
) -> tuple[HookSpec, ...]:
    """``on-run-start`` / ``on-run-end`` rendered as dbt renders them (``schemas`` lists the
    schemas models build in; ``results`` is empty: a run's outcome is in ``gristmill history``)."""
    found = []
    for text, line in project.hooks.get(key, ()):
        where = f"{DBT_PROJECT_FILE}:{line}"
        context = build_context(jinja, project, target, Scope(key, DBT_PROJECT_FILE, "operation"), compiler)
        schemas = sorted({n.schema for n in compiler.nodes if n.kind != "seed"})
        context.update(schemas=schemas, database_schemas=[(target.database, s) for s in schemas], results=[])
        rendered = jinja.render_text(text, context, where=where).strip().rstrip(";").strip()
        if rendered:
            found.append(HookSpec(rendered, where))
    return tuple(found)


def _has_tests(data: dict[str, Any]) -> bool:
    columns = data.get("columns")
    described = [data, *(columns if isinstance(columns, list) else [])]
    return any(isinstance(d, dict) and (d.get("tests") or d.get("data_tests")) for d in described)


def _gristmill_sources(root: Path, project: DbtProject) -> tuple[dict[str, SourceSpec], list[CheckSpec]]:
    """Gristmill sources in ``sources/*.yml`` next to dbt_project.yml land what dbt sources read."""
    if GRISTMILL_SOURCES in project.property_paths or not (root / GRISTMILL_SOURCES).is_dir():
        return {}, []
    return load_sources(root)  # the same loading as a Gristmill project's


def _value_renderer(jinja: Jinja, project: DbtProject, target: Target) -> Callable[[Any, str], Any]:
    """Renders Jinja in YAML values (``schema: "{{ var('raw_schema') }}"``) with var/env_var/target."""

    def render(value: Any, where: str) -> Any:
        if not isinstance(value, str) or "{" not in value:
            return value
        scope = Scope("yaml", where.split(":")[0], "source")
        context = build_context(jinja, project, target, scope, Collecting(target))
        return jinja.render_text(value, context, where=where)

    return render
