"""dbt property files (``schema.yml`` and friends): models, seeds and snapshots with their configs,
columns and tests, and the ``sources:`` they read, each remembering its file and line."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.errors import ConfigError
from gristmill.project import yamlfile
from gristmill.project.dbt.config import DbtProject

RESOURCE_KEYS = ("models", "seeds", "snapshots")
DECLARED_KEYS = ("unit_tests", "semantic_models", "metrics", "saved_queries", "exposures")
"""Property-file entries that are not nodes: unit tests, and the semantic layer and exposures."""
_DOCS_BLOCK = re.compile(r"{%-?\s*docs\s+(\w+)\s*-?%}(.*?){%-?\s*enddocs\s*-?%}", re.DOTALL)
_DOC_CALL = re.compile(r"""{{\s*doc\(\s*['"](\w+)['"]\s*\)\s*}}""")


@dataclass(frozen=True)
class Entry:
    """One model, seed or snapshot described in a property file."""

    kind: str
    name: str
    file: str
    line: int
    data: dict[str, Any]

    @property
    def config(self) -> dict[str, Any]:
        config = self.data.get("config")
        return dict(config) if isinstance(config, dict) else {}

    @property
    def columns(self) -> list[dict[str, Any]]:
        columns = self.data.get("columns")
        return (
            [c for c in columns if isinstance(c, dict) and c.get("name")] if isinstance(columns, list) else []
        )


@dataclass(frozen=True)
class SourceTable:
    """A table under ``sources:``; ``source('s', 't')`` reads ``<schema>.<identifier>``."""

    source: str
    name: str
    schema: str
    identifier: str
    file: str
    line: int
    data: dict[str, Any]

    @property
    def asset(self) -> str:
        return f"{self.schema}.{self.identifier}"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Properties:
    entries: dict[tuple[str, str], Entry] = field(default_factory=dict)
    """(kind, name) -> entry; kind is models, seeds or snapshots."""
    sources: dict[tuple[str, str], SourceTable] = field(default_factory=dict)
    docs: dict[str, str] = field(default_factory=dict)
    """``{% docs name %}`` blocks from the project's markdown files."""
    declared: dict[str, list[Entry]] = field(default_factory=dict)
    """unit_tests, semantic_models, metrics, saved_queries, exposures: entries in file order."""

    def describe(self, text: Any) -> str | None:
        """A description with its ``{{ doc('name') }}`` references filled in."""
        if not text:
            return None
        return _DOC_CALL.sub(lambda m: self.docs.get(m.group(1), m.group(0)), str(text)).strip()

    def entry(self, kind: str, name: str) -> Entry | None:
        return self.entries.get((kind, name))


def _line(data: Any, key: str, default: int) -> int:
    return int(getattr(data, "key_lines", {}).get(key, default))


def _items(data: Any, key: str, file: str) -> list[tuple[dict[str, Any], int]]:
    """The mappings listed under ``key``, each with its line."""
    items = data.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigError(
            f'"{key}" must be a list of entries with a name', location=f"{file}:{_line(data, key, 1)}"
        )
    lines = getattr(items, "item_lines", [_line(data, key, 1)] * len(items))
    found = []
    for item, line in zip(items, lines, strict=True):
        if not isinstance(item, dict) or not item.get("name"):
            raise ConfigError(f'each entry under "{key}" needs a "name"', location=f"{file}:{line}")
        found.append((item, line))
    return found


def read_properties(project: DbtProject, render: Callable[[Any, str], Any]) -> Properties:
    """Every property file under the project's folders. ``render`` fills in Jinja in source names
    (``schema: "{{ var('raw_schema') }}"``)."""
    properties = Properties()
    root = project.root
    paths: list[Path] = []
    for folder in project.property_paths:
        base = root / folder
        if base.is_dir():
            paths.extend(sorted([*base.rglob("*.yml"), *base.rglob("*.yaml")]))
    for folder in project.property_paths:
        for path in sorted((root / folder).rglob("*.md")) if (root / folder).is_dir() else ():
            text = path.read_text(encoding="utf-8")
            properties.docs.update((m.group(1), m.group(2).strip()) for m in _DOCS_BLOCK.finditer(text))
    for path in dict.fromkeys(paths):
        file = path.relative_to(root).as_posix()
        data = yamlfile.load(path, file)
        if not isinstance(data, dict):
            continue
        for kind in RESOURCE_KEYS:
            for item, line in _items(data, kind, file):
                name = str(item["name"])
                if (kind, name) in properties.entries:
                    other = properties.entries[(kind, name)]
                    raise ConfigError(
                        f'{kind[:-1]} "{name}" is described twice: {other.file}:{other.line} and here',
                        location=f"{file}:{line}",
                        hint="keep one entry per name",
                    )
                properties.entries[(kind, name)] = Entry(kind, name, file, line, item)
        for kind in DECLARED_KEYS:
            for item, line in _items(data, kind, file):
                properties.declared.setdefault(kind, []).append(
                    Entry(kind, str(item["name"]), file, line, item)
                )
        for source, line in _items(data, "sources", file):
            _add_source(properties, source, file, line, render)
    return properties


def _add_source(
    properties: Properties, source: dict[str, Any], file: str, line: int, render: Callable[[Any, str], Any]
) -> None:
    name = str(source["name"])
    config = source.get("config")
    config = config if isinstance(config, dict) else {}
    enabled = render(source.get("enabled", config.get("enabled", True)), f"{file}:{line}")
    if str(enabled).strip().lower() == "false":  # rendered Jinja gives the text "False"
        return
    schema = str(render(source.get("schema") or name, f"{file}:{_line(source, 'schema', line)}"))
    for table, table_line in _items(source, "tables", file):
        identifier = render(table.get("identifier") or table["name"], f"{file}:{table_line}")
        key = (name, str(table["name"]))
        if key in properties.sources:
            raise ConfigError(
                f'source("{name}", "{table["name"]}") is declared twice',
                location=f"{file}:{table_line}",
                hint=f"the other is at {properties.sources[key].where}",
            )
        properties.sources[key] = SourceTable(
            name, str(table["name"]), schema, str(identifier), file, table_line, table
        )
