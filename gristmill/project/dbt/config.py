"""dbt_project.yml and profiles.yml: the project's name, folders and vars, the target schema, and
configs declared per folder (``models: <project>: staging: +materialized: view``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from gristmill.errors import ConfigError
from gristmill.project import yamlfile

log = logging.getLogger("gristmill.dbt")
DBT_PROJECT_FILE = "dbt_project.yml"
PROFILES_FILE = "profiles.yml"

# Config keys whose value is a mapping, so that a mapping under them is not a sub-folder.
_MAPPING_CONFIGS = {
    "meta",
    "docs",
    "persist_docs",
    "column_types",
    "grants",
    "contract",
    "quote_columns",
    "quoting",
    "labels",
    "partition_by",
    "snapshot_meta_column_names",
    "hard_deletes",
}
_MERGED_CONFIGS = {"meta", "column_types", "grants", "persist_docs", "docs"}
"""Configs that combine across levels instead of the deepest one winning (``tags`` add up)."""


@dataclass(frozen=True)
class DbtProject:
    root: Path
    name: str
    profile: str | None
    model_paths: tuple[str, ...]
    seed_paths: tuple[str, ...]
    snapshot_paths: tuple[str, ...]
    macro_paths: tuple[str, ...]
    test_paths: tuple[str, ...]
    analysis_paths: tuple[str, ...]
    vars: dict[str, Any] = field(default_factory=dict)
    configs: dict[str, Any] = field(default_factory=dict)
    """``models``, ``seeds``, ``snapshots`` and ``data_tests`` trees, as written."""

    @property
    def property_paths(self) -> tuple[str, ...]:
        """Folders whose YAML files dbt reads for properties (models, seeds, sources, tests)."""
        return tuple(
            dict.fromkeys(
                (
                    *self.model_paths,
                    *self.seed_paths,
                    *self.snapshot_paths,
                    *self.analysis_paths,
                    *self.macro_paths,
                    *self.test_paths,
                )
            )
        )

    def var(self, name: str) -> tuple[bool, Any]:
        """A var from dbt_project.yml: scoped under the project's name first, then global."""
        scoped = self.vars.get(self.name)
        if isinstance(scoped, dict) and name in scoped:
            return True, scoped[name]
        if name in self.vars and name != self.name:
            return True, self.vars[name]
        return False, None


@dataclass(frozen=True)
class Target:
    """The profile's output the project runs against; only its names matter here."""

    name: str = "dev"
    schema: str = "main"
    type: str = "duckdb"
    database: str = "main"
    profile_name: str = "default"
    threads: int = 1


def is_dbt_project(root: Path) -> bool:
    return (root / DBT_PROJECT_FILE).is_file()


def _paths(data: dict[str, Any], key: str, default: Sequence[str], *aliases: str) -> tuple[str, ...]:
    for name in (key, *aliases):
        value = data.get(name)
        if isinstance(value, str):
            return (value.strip("/"),)
        if isinstance(value, list) and value:
            return tuple(str(v).strip("/") for v in value)
    return tuple(default)


def read_project(root: Path) -> DbtProject:
    data = yamlfile.load(root / DBT_PROJECT_FILE, DBT_PROJECT_FILE)
    if not isinstance(data, dict):
        raise ConfigError("dbt_project.yml must be a mapping with at least 'name'", location=DBT_PROJECT_FILE)
    name = data.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        line = getattr(data, "key_lines", {}).get("name", 1)
        raise ConfigError(
            f"the dbt project name must be letters, digits and underscores, not {name!r}",
            location=f"{DBT_PROJECT_FILE}:{line}",
        )
    for hook in ("on-run-start", "on-run-end"):
        if data.get(hook):
            line = getattr(data, "key_lines", {}).get(hook, 1)
            log.warning("%s:%s: %s not run: Gristmill runs no SQL around a run", DBT_PROJECT_FILE, line, hook)
    configs = {key: data.get(key) or {} for key in ("models", "seeds", "snapshots", "data_tests", "tests")}
    variables = data.get("vars") or {}
    return DbtProject(
        root=root,
        name=name,
        profile=str(data["profile"]) if data.get("profile") else None,
        model_paths=_paths(data, "model-paths", ["models"], "source-paths"),
        seed_paths=_paths(data, "seed-paths", ["seeds"], "data-paths"),
        snapshot_paths=_paths(data, "snapshot-paths", ["snapshots"]),
        macro_paths=_paths(data, "macro-paths", ["macros"]),
        test_paths=_paths(data, "test-paths", ["tests"]),
        analysis_paths=_paths(data, "analysis-paths", ["analyses"]),
        vars=dict(variables) if isinstance(variables, dict) else {},
        configs=configs,
    )


def _profiles_file(root: Path) -> Path | None:
    folders = [os.environ.get("DBT_PROFILES_DIR"), str(root), str(Path.home() / ".dbt")]
    for folder in folders:
        if folder and (Path(folder) / PROFILES_FILE).is_file():
            return Path(folder) / PROFILES_FILE
    return None


def _render_env_vars(value: Any, where: str) -> Any:
    """profiles.yml values may read environment variables: ``{{ env_var('SCHEMA', 'main') }}``."""
    if not isinstance(value, str) or "{{" not in value:
        return value

    def env_var(name: str, default: str | None = None) -> str:
        found = os.environ.get(name, default)
        if found is None:
            raise ConfigError(
                f'environment variable "{name}" is not set', location=where, hint=f"export {name}=…"
            )
        return found

    try:
        return SandboxedEnvironment().from_string(value).render(env_var=env_var)
    except TemplateError as err:
        raise ConfigError(f"cannot render {value!r}: {err}", location=where) from None


def read_target(root: Path, project: DbtProject) -> Target:
    """The target named in the profile; every part defaults (DuckDB's ``main`` schema) when the
    profile, the output or the key is missing, since only names are taken from it."""
    path = _profiles_file(root)
    profile_name = project.profile or project.name
    if path is None:
        return Target(profile_name=profile_name)
    shown = PROFILES_FILE if path.parent == root else path.as_posix()
    profiles = yamlfile.load(path, shown)
    profile = profiles.get(profile_name) if isinstance(profiles, dict) else None
    if not isinstance(profile, dict) or not isinstance(profile.get("outputs"), dict):
        return Target(profile_name=profile_name)
    target_name = str(_render_env_vars(profile.get("target", "dev"), shown))
    output = profile["outputs"].get(target_name)
    if not isinstance(output, dict):
        return Target(name=target_name, profile_name=profile_name)
    line = getattr(output, "key_lines", {}).get("schema", getattr(output, "line", 1))
    kind = str(output.get("type", "duckdb"))
    schema = _render_env_vars(output.get("schema") or output.get("dataset"), f"{shown}:{line}")
    database = output.get("database") or (
        Path(str(output.get("path", "main"))).stem if kind == "duckdb" else ""
    )
    return Target(
        name=target_name,
        schema=str(schema or "main"),
        type=kind,
        database=str(database or "main"),
        profile_name=profile_name,
        threads=int(output.get("threads", 1) or 1),
    )


# --- configs by folder -----------------------------------------------------------------------------


def _config_items(level: dict[str, Any]) -> dict[str, Any]:
    """The configs set at one level of a tree: ``+key`` always, a plain key unless it is a folder."""
    found = {}
    for key, value in level.items():
        name = str(key)
        if name.startswith("+"):
            found[name[1:]] = value
        elif not isinstance(value, dict) or name in _MAPPING_CONFIGS:
            found[name] = value
    return found


def merge_config(base: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """``more`` over ``base``, as dbt layers configs: tags add up, meta-like mappings merge."""
    merged = dict(base)
    for key, value in more.items():
        if key == "tags":
            tags = [value] if isinstance(value, str) else list(value or [])
            merged["tags"] = list(dict.fromkeys([*merged.get("tags", []), *tags]))
        elif key in _MERGED_CONFIGS and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def folder_config(tree: Any, fqn: Sequence[str]) -> dict[str, Any]:
    """The configs a tree from dbt_project.yml gives the node at ``fqn`` ([project, folders…, name]):
    each level down the path overrides the one above."""
    if not isinstance(tree, dict):
        return {}
    merged = merge_config({"tags": []}, _config_items(tree))
    level: Any = tree
    for part in fqn:
        level = level.get(part) if isinstance(level, dict) else None
        if not isinstance(level, dict):
            break
        merged = merge_config(merged, _config_items(level))
    return merged
