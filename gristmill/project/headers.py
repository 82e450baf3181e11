"""A model's header: the options in a SQL model's leading comment (or a Python model's ``@model``),
validated and checked against the model's kind."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from gristmill._util.durations import parse_duration
from gristmill._util.suggest import did_you_mean
from gristmill.errors import ConfigError
from gristmill.project import yamlfile
from gristmill.project.dialect import PROJECT_DIALECT
from gristmill.project.specs import Interval, LateRows, Lookup, ModelKind, PartitionValue, StreamWindow


class _LookupDecl(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    dimension: str
    on: str | list[str]
    at: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as the boolean true.
        if isinstance(data, dict) and True in data:
            return {("on" if key is True else key): value for key, value in data.items()}
        return data


class ModelHeader(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    kind: ModelKind | None = None
    tags: list[str] = []
    description: str | None = None
    owner: str | None = None
    columns: dict[str, str] = {}
    checks: list[Any] = []
    key: str | list[str] = []
    time: str | None = None
    interval: Interval = "day"
    start: str | date | None = None
    lookback: int = Field(default=0, ge=0)
    late_rows: LateRows | None = None
    partition_by: str | None = None
    partitions: list[StrictBool | int | float | date | str] = []
    window: str | None = None
    lateness: str | int | None = None
    idle_timeout: str | int | None = None
    publish: str | None = None
    dialect: str = PROJECT_DIALECT
    passthrough: StrictBool = False
    schedule: str | None = None
    surrogate_key: str | None = None
    type2: list[str] = []
    lookups: dict[str, _LookupDecl] = {}


HEADER_KEYS = tuple(ModelHeader.model_fields)


def _dialects() -> frozenset[str]:
    import sqlglot  # only for a model that names a dialect

    return frozenset(d.value for d in sqlglot.Dialects if d.value)


_COMMENT = re.compile(r"^\s*--\s?(.*)$")


def split_header(text: str) -> tuple[list[str], int]:
    """Leading ``--`` comment lines (without the dashes) and how many lines they span."""
    header: list[str] = []
    for line in text.splitlines():
        match = _COMMENT.match(line)
        if not match:
            break
        header.append(match.group(1))
    return header, len(header)


def parse_header(lines: list[str], file: str) -> dict[str, Any]:
    """A header is YAML in the leading comment block, if that block starts with a known key.

    A plain prose comment is not a header and never an error."""
    first = next((line for line in lines if line.strip()), "")
    key = re.match(r"^\s*([A-Za-z_]+)\s*:", first)
    if not key or (key.group(1) not in HEADER_KEYS and did_you_mean(key.group(1), HEADER_KEYS) is None):
        return {}
    data = yamlfile.parse("\n".join(lines), file)
    if not isinstance(data, dict):
        raise ConfigError("the model header must be 'key: value' lines", location=f"{file}:1")
    return data


def kind_options(header: ModelHeader, asset: str, file: str, data: Any) -> dict[str, Any]:
    """The header keys that say how a model's kind builds it, checked against that kind."""
    kind = header.kind
    line = partial(yamlfile.line_of, data)
    where = lambda key: f"{file}:{line((key,)) or 1}"  # noqa: E731
    key = (header.key,) if isinstance(header.key, str) else tuple(header.key)
    needs_key = {"snapshot": "the columns identifying a row", "dimension": "the natural key"}
    if kind in needs_key and not key:
        raise ConfigError(f"kind: {kind} needs key: {needs_key[kind]}", location=where("kind"))
    for option, kinds in (
        ("time", ("incremental", "snapshot", "dimension", "fact", "stream")),
        ("window", ("stream",)),
        ("lateness", ("stream",)),
        ("idle_timeout", ("stream",)),
        ("publish", ("stream",)),
        ("surrogate_key", ("dimension",)),
        ("type2", ("dimension",)),
        ("lookups", ("fact",)),
        ("start", ("incremental", "fact")),
        ("late_rows", ("incremental", "fact")),
        ("partition_by", ("incremental",)),
        ("partitions", ("incremental",)),
    ):
        if getattr(header, option) and kind not in kinds:
            raise ConfigError(
                f"{option} applies to kind: {' or '.join(kinds)}, not {kind or 'the default kind'}",
                location=where(option),
            )
    if header.late_rows and not header.time:
        raise ConfigError(
            "late_rows applies to a model built by time interval (with time:)",
            location=where("late_rows"),
            hint="a model merged on a key takes late rows as they come; remove late_rows:",
        )
    partitions = _partitions(header, where)
    stream = _stream_options(header, where) if kind == "stream" else {}
    lookups = {}
    for column, lookup in header.lookups.items():
        if "." not in lookup.dimension:
            raise ConfigError(
                f'lookups.{column}: dimension "{lookup.dimension}" needs its schema, e.g. marts.dim_customer',
                location=where("lookups"),
            )
        on = (lookup.on,) if isinstance(lookup.on, str) else tuple(lookup.on)
        lookups[column] = Lookup(lookup.dimension, on, lookup.at)
    if header.dialect != PROJECT_DIALECT and header.dialect not in _dialects():
        dialects = sorted(_dialects())
        raise ConfigError(
            f'unknown SQL dialect "{header.dialect}"',
            location=where("dialect"),
            hint=did_you_mean(header.dialect, dialects)
            or "e.g. duckdb, snowflake, bigquery, postgres, spark",
        )
    name = asset.split(".", 1)[1]
    return {
        "key": key,
        "time": header.time,
        "interval": header.interval,
        "start": header.start.isoformat() if isinstance(header.start, date) else header.start,
        "lookback": header.lookback,
        "late_rows": header.late_rows or "reprocess",
        "partition_by": header.partition_by,
        "partitions": partitions,
        **stream,
        "dialect": header.dialect,
        "passthrough": header.passthrough,
        "schedule": header.schedule,
        "surrogate_key": header.surrogate_key
        or (f"{name.removeprefix('dim_')}_key" if kind == "dimension" else None),
        "type2": tuple(header.type2),
        "lookups": lookups,
    }


_WINDOW = re.compile(
    r"^\s*(?P<kind>tumble|hop|session)\s+(?P<size>.+?)(?:\s+every\s+(?P<every>.+?))?\s*$", re.I
)


def _stream_options(header: ModelHeader, where: Callable[[str], str]) -> dict[str, Any]:
    """A stream model's window, lateness and idle timeout, checked as written."""
    found: dict[str, Any] = {}
    if header.publish is not None:
        if not re.match(r"^[a-z0-9_]+\.[^\s]+$", header.publish):
            raise ConfigError(
                f'publish: "{header.publish}" must be <kafka source>.<topic>',
                location=where("publish"),
                hint="e.g. publish: shop.alerts (sources/shop.yml is a kafka source)",
            )
        found["publish"] = header.publish
    for option in ("lateness", "idle_timeout"):
        value = getattr(header, option)
        if value is None:
            continue
        duration = parse_duration(value) if value not in (0, "0", "0s") else timedelta(0)
        if duration is None:
            raise ConfigError(
                f'{option}: "{value}" is not a duration', location=where(option), hint="e.g. 5s, 2m"
            )
        found[option] = duration
    if header.window is None:
        return found
    match = _WINDOW.match(header.window)
    size = parse_duration(match.group("size")) if match else None
    every = parse_duration(match.group("every")) if match and match.group("every") else None
    kind = match.group("kind").lower() if match else ""
    if (
        match is None
        or size is None
        or (match.group("every") and every is None)
        or (kind == "hop") != (every is not None)
    ):
        raise ConfigError(
            f'window: "{header.window}" is not a window',
            location=where("window"),
            hint="tumble 1 minute | hop 10 minutes every 1 minute | session 30s",
        )
    if every is not None and (size % every or every > size):
        raise ConfigError(
            f"window: a hop of {size} every {every}: the size must be a whole multiple of the step",
            location=where("window"),
        )
    if not header.time:
        raise ConfigError(
            "a windowed stream model needs time: the event-time column", location=where("window")
        )
    if kind == "session" and not header.key:
        raise ConfigError(
            "a session window needs key: the columns a session belongs to (e.g. user_id)",
            location=where("window"),
        )
    found["window"] = StreamWindow(kind, size, every)  # type: ignore[arg-type]
    return found


def _partitions(header: ModelHeader, where: Callable[[str], str]) -> tuple[PartitionValue, ...]:
    """Static partitions: a column and its declared values, both or neither, never with time/key."""
    if bool(header.partition_by) != bool(header.partitions):
        missing = "partitions" if header.partition_by else "partition_by"
        raise ConfigError(
            f"partition_by and partitions go together: {missing} is missing",
            location=where("partition_by" if header.partition_by else "partitions"),
            hint="e.g. -- partition_by: region / -- partitions: [emea, amer, apac]",
        )
    if not header.partition_by:
        return ()
    for other in ("time", "key"):
        if getattr(header, other):
            raise ConfigError(
                f"partition_by and {other} split the table two ways; choose one",
                location=where(other),
                hint="time: builds by interval, key: merges rows, partition_by: replaces declared values",
            )
    values = tuple(v.isoformat() if isinstance(v, date) else v for v in header.partitions)
    seen: set[str] = set()
    for value in values:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if text in seen:
            raise ConfigError(f'partitions: "{text}" is listed twice', location=where("partitions"))
        seen.add(text)
    return values
