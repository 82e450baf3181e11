"""dbt_project.yml and profiles.yml: the project's name, folders and vars, the target schema, and
configs declared per folder (``models: <project>: staging: +materialized: view``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from gristmill.errors import ConfigError
from gristmill.project import yamlfile
from gristmill.project.probe import CompileProbe, NoProbe

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
class Package:
    """An installed package: a folder of ``dbt_packages/`` (``dbt deps`` put it there) holding its
    own dbt_project.yml. Its macros and generic tests are loaded; its models are not built."""

    name: str
    root: Path
    macro_paths: tuple[str, ...]
    test_paths: tuple[str, ...]
    vars: dict[str, Any] = field(default_factory=dict)
    """The package's own ``vars:``: defaults the root project's vars override."""

    def file(self, path: Path, project_root: Path) -> str:
        """A path as errors show it: relative to the root project (``dbt_packages/x/macros/y.sql``)."""
        return path.relative_to(project_root).as_posix()


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
    packages: tuple[Package, ...] = ()
    """Installed packages, in the order dbt searches them (by name)."""
    declared_packages: tuple[str, ...] = ()
    """Packages listed in packages.yml / dependencies.yml (``package:`` or ``git:``), as written."""
    dispatch: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """``dispatch:`` in dbt_project.yml: macro namespace -> packages to search, in order."""
    hooks: dict[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    """``on-run-start`` / ``on-run-end``: each SQL statement (unrendered) with its line."""
    cli_vars: dict[str, Any] = field(default_factory=dict)
    """``--vars`` from the command line: over every var of the project and its packages."""

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
        """A var as dbt resolves it: ``--vars`` first, then dbt_project.yml (scoped under the
        project's name, then global), then a package's own default (scoped under the package
        in the root project, then its own dbt_project.yml)."""
        if name in self.cli_vars:
            return True, self.cli_vars[name]
        scoped = self.vars.get(self.name)
        if isinstance(scoped, dict) and name in scoped:
            return True, scoped[name]
        if name in self.vars and name not in self.package_names:
            return True, self.vars[name]
        for package in self.packages:
            scoped = self.vars.get(package.name)
            if isinstance(scoped, dict) and name in scoped:
                return True, scoped[name]
        for package in self.packages:
            if name in package.vars:
                return True, package.vars[name]
        return False, None

    @property
    def package_names(self) -> set[str]:
        return {self.name, *(p.name for p in self.packages)}


@dataclass(frozen=True)
class Target:
    """The profile's output the project runs against; only its names matter here."""

    name: str = "dev"
    schema: str = "main"
    type: str = "duckdb"
    database: str = "main"
    profile_name: str = "default"
    threads: int = 1
    probe: CompileProbe = field(default_factory=NoProbe, repr=False, compare=False)
    """The target's warehouse as compiling may ask it (``run_query`` on a constant query, column
    types for unit tests): the probe of the project's engine kind. Not a name: Jinja's ``target``
    does not show it."""

    def names(self) -> dict[str, Any]:
        """What Jinja's ``target`` shows."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "probe"}


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


def read_project(root: Path, cli_vars: dict[str, Any] | None = None) -> DbtProject:
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
    hooks = {hook: _hooks(data, hook) for hook in ("on-run-start", "on-run-end")}
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
        packages=read_packages(root, data),
        declared_packages=_declared_packages(root),
        dispatch=_dispatch(data),
        hooks={k: v for k, v in hooks.items() if v},
        cli_vars=dict(cli_vars or {}),
    )


def _hooks(data: dict[str, Any], key: str) -> tuple[tuple[str, int], ...]:
    value = data.get(key)
    line = int(getattr(data, "key_lines", {}).get(key, 1))
    items = value if isinstance(value, list) else [value] if value else []
    lines = getattr(value, "item_lines", [line] * len(items)) if isinstance(value, list) else [line]
    return tuple((str(item), int(at)) for item, at in zip(items, lines, strict=False) if str(item).strip())


def _dispatch(data: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """``dispatch: [{macro_namespace: dbt_utils, search_order: [my_project, dbt_utils]}]``."""
    found: dict[str, tuple[str, ...]] = {}
    entries = data.get("dispatch")
    line = getattr(data, "key_lines", {}).get("dispatch", 1)
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not entry.get("macro_namespace"):
            raise ConfigError(
                "each dispatch entry needs macro_namespace and search_order",
                location=f"{DBT_PROJECT_FILE}:{line}",
                hint="e.g. dispatch: [{macro_namespace: dbt_utils, search_order: [my_project, dbt_utils]}]",
            )
        order = entry.get("search_order") or []
        found[str(entry["macro_namespace"])] = tuple(str(p) for p in order)
    return found


PACKAGES_FOLDER = "dbt_packages"
_PACKAGE_FILES = ("packages.yml", "dependencies.yml")


def read_packages(root: Path, data: dict[str, Any]) -> tuple[Package, ...]:
    """Every package ``dbt deps`` installed (``packages-install-path``, default dbt_packages/),
    in name order, as dbt orders them. A folder without dbt_project.yml is not a package."""
    folder = root / str(data.get("packages-install-path") or PACKAGES_FOLDER)
    packages: dict[str, Package] = {}
    for path in sorted(folder.glob("*/" + DBT_PROJECT_FILE)) if folder.is_dir() else ():
        file = path.relative_to(root).as_posix()
        own = yamlfile.load(path, file)
        if not isinstance(own, dict) or not isinstance(own.get("name"), str):
            raise ConfigError(f"{file} has no name", location=file, hint="run `dbt deps` again")
        name = str(own["name"])
        if name in packages:
            raise ConfigError(
                f'two packages are both named "{name}": {packages[name].root} and {path.parent}',
                location=file,
                hint="remove one of them from dbt_packages/ (or run `dbt clean` and `dbt deps`)",
            )
        variables = own.get("vars") or {}
        scoped = variables.get(name) if isinstance(variables, dict) else None
        merged = {k: v for k, v in (variables.items() if isinstance(variables, dict) else ()) if k != name}
        merged.update(scoped if isinstance(scoped, dict) else {})
        packages[name] = Package(
            name=name,
            root=path.parent,
            macro_paths=_paths(own, "macro-paths", ["macros"]),
            test_paths=_paths(own, "test-paths", ["tests"]),
            vars=merged,
        )
    return tuple(sorted(packages.values(), key=lambda p: p.name))


def _declared_packages(root: Path) -> tuple[str, ...]:
    """What packages.yml (or dependencies.yml) asks ``dbt deps`` to install, as written:
    ``calogica/dbt_date``, a git URL, or a local path."""
    declared: list[str] = []
    for name in _PACKAGE_FILES:
        path = root / name
        if not path.is_file():
            continue
        data = yamlfile.load(path, name)
        entries = data.get("packages") if isinstance(data, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                spec = entry.get("package") or entry.get("git") or entry.get("local") or entry.get("name")
                if spec:
                    declared.append(str(spec))
    return tuple(declared)


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


HOOK_KEYS = {
    "pre_hook": "pre-hook",
    "pre-hook": "pre-hook",
    "post_hook": "post-hook",
    "post-hook": "post-hook",
}


def merge_config(base: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """``more`` over ``base``, as dbt layers configs: tags and hooks add up, meta-like mappings
    merge."""
    merged = dict(base)
    for key, value in more.items():
        if key in HOOK_KEYS:  # pre_hook and pre-hook are one config; each level adds its hooks
            name = HOOK_KEYS[key]
            hooks = value if isinstance(value, list) else [value] if value else []
            merged[name] = [*merged.get(name, []), *hooks]
        elif key == "tags":
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
