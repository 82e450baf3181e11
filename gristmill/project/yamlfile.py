"""YAML that remembers where each key came from, so errors can name the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gristmill.errors import ConfigError


class LineDict(dict[Any, Any]):
    """A mapping that knows its own line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]
    handled_elsewhere: tuple[str, ...] = ()
    """Keys valid beside these that were taken out before this mapping is validated (a source
    table's ``write`` or ``checks``): a did-you-mean for a misspelt key considers them too."""


class LineList(list[Any]):
    line: int = 0
    item_lines: list[int]


# libyaml's parser when PyYAML was built with it (several times faster); node marks still give
# the lines.
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise ConfigError(
                f'duplicate key "{key}"', location=f"{loader.name}:{key_node.start_mark.line + 1}"
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def parse(text: str, name: str, *, line_offset: int = 0) -> Any:
    """Parse YAML text; syntax errors become ConfigError with ``name:line:col``."""
    loader = _Loader(text)
    loader.name = name
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{name}:{mark.line + 1 + line_offset}:{mark.column + 1}" if mark else name
        problem = str(err.problem or err.context)
        hint = (
            'a value containing ": " must be quoted' if "mapping values are not allowed" in problem else None
        )
        raise ConfigError(f"invalid YAML: {problem}", location=where, hint=hint) from None
    finally:
        loader.dispose()
    if line_offset:
        _shift(data, line_offset)
    return data


def _shift(data: Any, offset: int) -> None:
    if isinstance(data, LineDict):
        data.line += offset
        data.key_lines = {k: v + offset for k, v in data.key_lines.items()}
        for value in data.values():
            _shift(value, offset)
    elif isinstance(data, LineList):
        data.line += offset
        data.item_lines = [v + offset for v in data.item_lines]
        for value in data:
            _shift(value, offset)


def load(path: Path, display: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 text (byte {err.start})", location=display) from None
    return parse(text, display)


def line_of(data: Any, loc: tuple[int | str, ...]) -> int | None:
    """The line of the deepest key or item along ``loc`` that exists in ``data``."""
    line = getattr(data, "line", None)
    node = data
    for part in loc:
        if isinstance(node, LineDict) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line
