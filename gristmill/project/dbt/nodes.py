"""Find a dbt project's models, snapshots and seeds, each with the configs dbt_project.yml and the
property files give it (the model's own ``config()`` call is added when it is rendered)."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gristmill.errors import ProjectError
from gristmill.project.dbt.config import DBT_PROJECT_FILE, DbtProject, folder_config, merge_config
from gristmill.project.dbt.jinja import Jinja
from gristmill.project.dbt.properties import Entry, Properties

_SNAPSHOT_BLOCK = re.compile(
    r"{%-?\s*snapshot\s+(?P<name>\w+)\s*-?%}(?P<body>.*?){%-?\s*endsnapshot\s*-?%}", re.DOTALL
)
NodeKind = Literal["model", "seed", "snapshot"]


@dataclass
class Node:
    kind: NodeKind
    name: str
    file: str
    """Path relative to the project folder, as errors show it."""
    path: Path
    fqn: tuple[str, ...]
    config: dict[str, Any]
    entry: Entry | None = None
    template: str | None = None
    """The Jinja template holding the SQL (models and snapshots)."""
    line: int = 1
    schema: str = ""
    alias: str = ""
    error: ProjectError | None = None
    """Why the template could not be loaded (a Jinja syntax error): raised when it is rendered."""

    @property
    def asset(self) -> str:
        return f"{self.schema}.{self.alias}"

    @property
    def materialized(self) -> str:
        if self.kind != "model":
            return self.kind
        return str(self.config.get("materialized") or "view")

    @property
    def enabled(self) -> bool:
        return _native(self.config.get("enabled", True)) is not False

    def as_jinja(self) -> dict[str, Any]:
        """The node as macros see it (``model`` in a model, ``node`` in generate_schema_name)."""
        return {
            "name": self.name,
            "alias": self.alias or self.name,
            "schema": self.schema,
            "resource_type": self.kind,
            "package_name": self.fqn[0],
            "fqn": list(self.fqn),
            "original_file_path": self.file,
            "path": self.file,
            "unique_id": f"{self.kind}.{self.fqn[0]}.{self.name}",
            "config": dict(self.config),
            "tags": list(self.config.get("tags", [])),
        }


Render = Callable[[Any, str], Any]
"""Renders Jinja in a YAML value at a ``file:line`` (var, env_var, target)."""

_RUN_TIME_CONFIGS = {"pre-hook", "post-hook", "pre_hook", "post_hook", "sql_header"}
"""Configs dbt renders when the node runs (with ``this``), not when it reads the config."""


def _native(text: Any) -> Any:
    """A rendered config as dbt's native rendering gives it: ``False`` is the boolean, ``3`` the
    number, ``['a']`` a list; anything else stays text."""
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    if stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    if stripped.lower() in ("none", "null", ""):
        return None
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    return value if isinstance(value, int | float | list | dict | tuple) else text


def _rendered(value: Any, where: str, render: Render | None) -> Any:
    if render is None:
        return value
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return _native(render(value, where))
    if isinstance(value, list):
        return [_rendered(v, where, render) for v in value]
    if isinstance(value, dict):
        return {k: _rendered(v, where, render) for k, v in value.items()}
    return value


def render_config(config: dict[str, Any], where: str, render: Render | None) -> dict[str, Any]:
    """Jinja in config values rendered (``+enabled: "{{ var('load', false) }}"``), hooks kept."""
    return {k: v if k in _RUN_TIME_CONFIGS else _rendered(v, where, render) for k, v in config.items()}


def _configured(
    project: DbtProject,
    tree_key: str,
    fqn: tuple[str, ...],
    entry: Entry | None,
    render: Render | None = None,
) -> dict[str, Any]:
    config = render_config(folder_config(project.configs.get(tree_key), fqn), DBT_PROJECT_FILE, render)
    if entry is None:
        return config
    return merge_config(config, render_config(entry.config, f"{entry.file}:{entry.line}", render))


def find_models(
    project: DbtProject, properties: Properties, jinja: Jinja, render: Render | None = None
) -> list[Node]:
    nodes: list[Node] = []
    for folder in project.model_paths:
        base = project.root / folder
        for path in sorted(base.rglob("*.py")) if base.is_dir() else ():
            raise ProjectError(
                "dbt Python models are not supported",
                location=path.relative_to(project.root).as_posix(),
                hint="rewrite it as a SQL model, or as a Gristmill Python model in a Gristmill project",
            )
        for path in sorted(base.rglob("*.sql")) if base.is_dir() else ():
            file = path.relative_to(project.root).as_posix()
            relative = path.relative_to(base)
            fqn = (project.name, *relative.parts[:-1], path.stem)
            entry = properties.entry("models", path.stem)
            config = _configured(project, "models", fqn, entry, render)
            try:
                jinja.add(file, file, path.read_text(encoding="utf-8"))
            except ProjectError as err:  # reported if the model is selected: -x leaves it out
                nodes.append(Node("model", path.stem, file, path, fqn, config, entry, error=err))
                continue
            nodes.append(Node("model", path.stem, file, path, fqn, config, entry, template=file))
    return nodes


def find_snapshots(
    project: DbtProject, properties: Properties, jinja: Jinja, render: Render | None = None
) -> list[Node]:
    """``{% snapshot name %}…{% endsnapshot %}`` blocks in the snapshot folders, and snapshots
    declared in YAML with ``relation:`` (dbt 1.9)."""
    nodes: list[Node] = []
    for folder in project.snapshot_paths:
        base = project.root / folder
        for path in sorted(base.rglob("*.sql")) if base.is_dir() else ():
            file = path.relative_to(project.root).as_posix()
            text = path.read_text(encoding="utf-8")
            for block in _SNAPSHOT_BLOCK.finditer(text):
                name = block.group("name")
                line = text.count("\n", 0, block.start("body")) + 1
                template = f"{file}#{name}"
                jinja.add(template, file, block.group("body"), first_line=line)
                fqn = (project.name, *path.relative_to(base).parts[:-1], name)
                entry = properties.entry("snapshots", name)
                config = _configured(project, "snapshots", fqn, entry, render)
                nodes.append(Node("snapshot", name, file, path, fqn, config, entry, template, line))
    declared = {n.name for n in nodes}
    for (kind, name), entry in properties.entries.items():
        if kind == "snapshots" and name not in declared and entry.data.get("relation"):
            template = f"{entry.file}#{name}"
            jinja.add(
                template, entry.file, "select * from {{ " + str(entry.data["relation"]) + " }}", entry.line
            )
            fqn = (project.name, name)
            config = _configured(project, "snapshots", fqn, entry, render)
            path = project.root / entry.file
            nodes.append(Node("snapshot", name, entry.file, path, fqn, config, entry, template, entry.line))
    return nodes


def find_seeds(project: DbtProject, properties: Properties, render: Render | None = None) -> list[Node]:
    nodes: list[Node] = []
    for folder in project.seed_paths:
        base = project.root / folder
        for path in sorted(base.rglob("*.csv")) if base.is_dir() else ():
            file = path.relative_to(project.root).as_posix()
            fqn = (project.name, *path.relative_to(base).parts[:-1], path.stem)
            entry = properties.entry("seeds", path.stem)
            config = _configured(project, "seeds", fqn, entry, render)
            nodes.append(Node("seed", path.stem, file, path, fqn, config, entry))
    return nodes
