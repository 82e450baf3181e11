"""One ``dashboards/*.md`` file read into a ``Dashboard``: front matter (title, filters), prose
and fenced blocks — ``sql name=...``, ``metric name=...`` (YAML) and ``chart`` (YAML) — each
with the line it starts on, so every error names ``file:line``.

Checks that need nothing but the file happen here (block kinds, chart types, references between
blocks, filter placeholders); what needs the project (tables, metrics) is ``loading.py``'s."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from markdown_it import MarkdownIt

from gristmill.errors import ConfigError

CHART_TYPES = ("line", "bar", "area", "scatter", "table", "big_number")
FILTER_TYPES = ("select", "text")
BLOCK_KINDS = ("sql", "metric", "chart")
FILTER_REF = re.compile(r"\{\{\s*filters\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
"""A page filter's value in a block: bound as a parameter, never pasted into SQL."""
_ANY_TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_FRONT_KEYS = {"title", "description", "filters"}
_FILTER_KEYS = {"name", "type", "label", "from", "options", "default"}
_METRIC_KEYS = {"name", "metric", "by", "grain", "where"}
_CHART_KEYS = {"type", "data", "x", "y", "color", "title", "format"}


@dataclass(frozen=True)
class FilterSpec:
    name: str
    type: str
    label: str
    options_sql: str | None
    """``from:``: a SELECT whose first column lists the choices of a ``select`` filter."""
    options: tuple[str, ...]
    default: str | None
    line: int


@dataclass(frozen=True)
class SqlBlock:
    name: str
    sql: str
    line: int

    @property
    def filters(self) -> tuple[str, ...]:
        return tuple(FILTER_REF.findall(self.sql))


@dataclass(frozen=True)
class MetricBlock:
    name: str
    metric: str
    by: tuple[str, ...]
    grain: str | None
    where: tuple[str, ...]
    """``dimension:op:value``; a value may be ``{{ filters.NAME }}`` (dropped when it is unset)."""
    line: int

    @property
    def columns(self) -> tuple[str, ...]:
        return (("metric_time",) if self.grain else ()) + self.by + (self.metric,)


@dataclass(frozen=True)
class ChartBlock:
    type: str
    data: str
    x: str | None
    y: str | None
    color: str | None
    title: str | None
    format: str | None
    line: int


@dataclass(frozen=True)
class Prose:
    html: str


Part = Prose | SqlBlock | MetricBlock | ChartBlock
DataBlock = SqlBlock | MetricBlock


@dataclass(frozen=True)
class Dashboard:
    name: str
    title: str
    description: str | None
    location: str
    """The file, relative to the project root."""
    filters: tuple[FilterSpec, ...]
    parts: tuple[Part, ...]
    digest: str
    """Of the file's text: part of every cache key, so an edited file is never served stale."""

    @property
    def data(self) -> dict[str, DataBlock]:
        return {p.name: p for p in self.parts if isinstance(p, (SqlBlock, MetricBlock))}

    @property
    def charts(self) -> tuple[ChartBlock, ...]:
        return tuple(p for p in self.parts if isinstance(p, ChartBlock))

    def at(self, line: int) -> str:
        return f"{self.location}:{line}"


def _markdown() -> MarkdownIt:
    # html off: prose is text, never markup a reader's browser runs
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def parse_dashboard(text: str, location: str, name: str) -> Dashboard:
    front, offset = _front_matter(text, location)
    body_lines = text.splitlines(keepends=True)[offset:]
    md = _markdown()
    parts: list[Part] = []
    done = 0
    for token in md.parse("".join(body_lines)):
        kind = token.info.split()[0] if token.info.split() else ""
        if token.type != "fence" or token.level != 0 or kind not in BLOCK_KINDS or token.map is None:
            continue
        start, end = token.map
        prose = "".join(body_lines[done:start])
        if prose.strip():
            parts.append(Prose(md.render(prose)))
        parts.append(_block(kind, token.info, token.content, location, offset + start + 1))
        done = end
    rest = "".join(body_lines[done:])
    if rest.strip():
        parts.append(Prose(md.render(rest)))
    filters = _filters(front, location)
    title = str(front.get("title") or _first_heading(body_lines) or name)
    dashboard = Dashboard(
        name,
        title,
        front.get("description"),
        location,
        filters,
        tuple(parts),
        hashlib.sha256(text.encode()).hexdigest()[:16],
    )
    _check_references(dashboard)
    return dashboard


def _front_matter(text: str, location: str) -> tuple[dict[str, Any], int]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, 0
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            try:
                data = yaml.safe_load("\n".join(lines[1:index])) or {}
            except yaml.YAMLError as error:
                mark = getattr(error, "problem_mark", None)
                at = f"{location}:{mark.line + 2}" if mark else location
                raise ConfigError(f"front matter is not YAML: {error}", location=at) from None
            if not isinstance(data, dict):
                raise ConfigError("front matter is a mapping (title, filters)", location=f"{location}:1")
            _known(data, _FRONT_KEYS, "front matter", f"{location}:1")
            return data, index + 1
    raise ConfigError("front matter opened with --- is never closed", location=f"{location}:1")


def _filters(front: Mapping[str, Any], location: str) -> tuple[FilterSpec, ...]:
    raw = front.get("filters") or []
    if not isinstance(raw, list):
        raise ConfigError("filters: a list of {name, type, from|options}", location=f"{location}:1")
    found: list[FilterSpec] = []
    for item in raw:
        line = 1  # the front matter is short: its errors name where it starts
        at = f"{location}:{line}"
        if not isinstance(item, dict) or not _NAME.match(str(item.get("name", ""))):
            raise ConfigError("a filter needs a name (letters, digits, _)", location=at)
        _known(item, _FILTER_KEYS, f'filter "{item["name"]}"', at)
        kind = str(item.get("type", "select"))
        if kind not in FILTER_TYPES:
            raise ConfigError(
                f'filter "{item["name"]}": unknown type "{kind}"',
                location=at,
                hint=f"one of {', '.join(FILTER_TYPES)}",
            )
        options = item.get("options") or []
        default = item.get("default")
        found.append(
            FilterSpec(
                item["name"],
                kind,
                str(item.get("label") or item["name"]),
                item.get("from"),
                tuple(str(o) for o in options),
                None if default is None else str(default),
                line,
            )
        )
    names = [f.name for f in found]
    if len(set(names)) != len(names):
        raise ConfigError("two filters have the same name", location=f"{location}:1")
    return tuple(found)


def _block(kind: str, info: str, content: str, location: str, line: int) -> Part:
    at = f"{location}:{line}"
    attrs = _attributes(info, at)
    if kind == "sql":
        name = attrs.get("name")
        if not name:
            raise ConfigError("a sql block needs a name: ```sql name=revenue_by_month", location=at)
        _check_templates(content, at)
        return SqlBlock(name, content, line)
    data = _yaml_block(kind, content, at)
    if kind == "metric":
        _known(data, _METRIC_KEYS, "a metric block", at)
        metric = data.get("metric")
        if not isinstance(metric, str):
            raise ConfigError("a metric block needs `metric: NAME`", location=at)
        for text in _strings(data.get("where"), "where", at):
            _check_templates(text, at)
        return MetricBlock(
            str(attrs.get("name") or data.get("name") or metric),
            metric,
            _strings(data.get("by"), "by", at, split=True),
            None if data.get("grain") is None else str(data["grain"]),
            _strings(data.get("where"), "where", at),
            line,
        )
    _known(data, _CHART_KEYS, "a chart block", at)
    chart_type = str(data.get("type", ""))
    if chart_type not in CHART_TYPES:
        raise ConfigError(
            f'chart type "{chart_type}" is not one of {", ".join(CHART_TYPES)}',
            location=f"{location}:{_key_line(content, 'type', line)}",
        )
    if not isinstance(data.get("data"), str):
        raise ConfigError("a chart needs `data: <block name>`", location=at)

    def value(key: str) -> str | None:
        return None if data.get(key) is None else str(data[key])

    return ChartBlock(
        chart_type,
        data["data"],
        value("x"),
        value("y"),
        value("color"),
        value("title"),
        value("format"),
        line,
    )


def _attributes(info: str, at: str) -> dict[str, str]:
    found = {}
    for word in info.split()[1:]:
        key, equals, value = word.partition("=")
        if not equals or key != "name":
            raise ConfigError(f'"{word}" in the block header: only name=... is known', location=at)
        value = value.strip("'\"")
        if not _NAME.match(value):
            raise ConfigError(f'block name "{value}": letters, digits and _ only', location=at)
        found[key] = value
    return found


def _yaml_block(kind: str, content: str, at: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(content) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"the {kind} block is not YAML: {error}", location=at) from None
    if not isinstance(data, dict):
        raise ConfigError(f"a {kind} block is a YAML mapping", location=at)
    return data


def _strings(value: object, key: str, at: str, *, split: bool = False) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(i, (str, int, float)) for i in items):
        raise ConfigError(f"{key}: a string or a list of strings", location=at)
    if split:
        return tuple(p.strip() for i in items for p in str(i).split(",") if p.strip())
    return tuple(str(i) for i in items)


def _check_templates(text: str, at: str) -> None:
    for found in _ANY_TEMPLATE.findall(text):
        if not FILTER_REF.fullmatch(found):
            raise ConfigError(
                f"{found}: blocks take page filters only, as {{{{ filters.NAME }}}}",
                location=at,
                hint="declare the filter in the front matter's filters:",
            )


def _known(data: Mapping[str, Any], known: set[str], what: str, at: str) -> None:
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise ConfigError(
            f"{what}: unknown key {unknown[0]!r}", location=at, hint=f"known: {', '.join(sorted(known))}"
        )


def _key_line(content: str, key: str, line: int) -> int:
    for index, text in enumerate(content.splitlines()):
        if text.strip().startswith(f"{key}:"):
            return line + 1 + index
    return line


def _first_heading(lines: list[str]) -> str | None:
    for line in lines:
        if line.startswith("# "):
            return line[2:].strip()
    return None


def _check_references(dashboard: Dashboard) -> None:
    data: dict[str, DataBlock] = {}
    declared = {f.name for f in dashboard.filters}
    for part in dashboard.parts:
        if isinstance(part, (SqlBlock, MetricBlock)):
            if part.name in data:
                raise ConfigError(
                    f'block "{part.name}" is defined twice (first at line {data[part.name].line})',
                    location=dashboard.at(part.line),
                )
            data[part.name] = part
            texts = [part.sql] if isinstance(part, SqlBlock) else list(part.where)
            for ref in (r for t in texts for r in FILTER_REF.findall(t)):
                if ref not in declared:
                    raise ConfigError(
                        f'{{{{ filters.{ref} }}}}: no filter "{ref}" is declared',
                        location=dashboard.at(part.line),
                        hint=f"declared: {', '.join(sorted(declared)) or 'none'}",
                    )
    for chart in dashboard.charts:
        if chart.data not in data:
            raise ConfigError(
                f'chart data "{chart.data}": no sql or metric block has that name',
                location=dashboard.at(chart.line),
                hint=f"blocks: {', '.join(data) or 'none'}",
            )
