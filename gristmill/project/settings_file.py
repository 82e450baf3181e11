"""Reads ``gristmill.toml``: the project's settings, errors naming the line the user wrote."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from gristmill._util.suggest import did_you_mean
from gristmill.config.settings import ProjectSettings
from gristmill.errors import ConfigError
from gristmill.project.definition import PROJECT_FILE
from gristmill.project.validation import validated


def load_settings(root: Path) -> ProjectSettings:
    text = (root / PROJECT_FILE).read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(err))
        where = f"{PROJECT_FILE}:{found.group(1)}:{found.group(2)}" if found else PROJECT_FILE
        raise ConfigError(f"invalid TOML: {str(err).split(' (at line')[0]}", location=where) from None
    return validated(ProjectSettings, data, file=PROJECT_FILE, line_of=lambda loc: _toml_line(text, loc))


def _toml_line(text: str, loc: tuple[int | str, ...]) -> int | None:
    """The line of the deepest key along ``loc`` that the TOML text declares (a key, a dotted
    key, or a ``[table]`` header), so an error names the line the user wrote."""
    lines = _toml_key_lines(text)
    for depth in range(len(loc), 0, -1):
        path = tuple(str(p) for p in loc[:depth])
        if path in lines:
            return lines[path]
    return None


def _toml_key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Each key path the text declares -> its (first) line. Keys are read by TOML's own parser,
    one header or ``key =`` at a time, so quoting and spacing count as TOML says; lines inside
    multi-line values do not parse alone and are passed over."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[\[?([^\[\]]+)\]\]?", stripped)
        if header:
            path = _toml_path(header.group(1))
            if path is not None:
                table = path
                for depth in range(1, len(table) + 1):
                    found.setdefault(table[:depth], number)
            continue
        key = re.match(r"^([A-Za-z0-9_\-\.\s\"']+?)\s*=", stripped)
        path = _toml_path(key.group(1)) if key else None
        for depth in range(1, len(path or ()) + 1):
            found.setdefault((*table, *(path or ())[:depth]), number)
    return found


def _toml_path(dotted: str) -> tuple[str, ...] | None:
    try:
        data: Any = tomllib.loads(f"{dotted} = 0")
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    while isinstance(data, dict) and len(data) == 1:
        [(name, data)] = data.items()
        path.append(name)
    return tuple(path)


def check_model_folders(root: Path, settings: ProjectSettings) -> None:
    """``[models.<folder>]`` for a folder that does not exist would set nothing, silently."""
    models = root / "models"
    folders = sorted(p.name for p in models.iterdir() if p.is_dir()) if models.is_dir() else []
    for folder in settings.models:
        if folder not in folders:
            text = (root / PROJECT_FILE).read_text(encoding="utf-8")
            line = _toml_line(text, ("models", folder))
            raise ConfigError(
                f"[models.{folder}] sets defaults for models/{folder}/, which does not exist",
                location=f"{PROJECT_FILE}:{line}" if line else PROJECT_FILE,
                hint=did_you_mean(folder, folders)
                or ("model folders: " + ", ".join(folders) if folders else "create models/<folder>/ first"),
            )
