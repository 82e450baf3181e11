"""Option validation for REST sources: the first problem as a ConfigError at its file:line, with a
did-you-mean also for nested options (``paginate.next_cursr``) and the tags of ``type`` unions."""

from __future__ import annotations

import types
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from gristmill._util.suggest import did_you_mean
from gristmill.connectors.base import Options
from gristmill.errors import ConfigError

OptionsT = TypeVar("OptionsT", bound=Options)


def parse(model: type[OptionsT], data: dict[str, Any], where: str, *, key_lines: dict[str, int]) -> OptionsT:
    """Validate options; the first problem becomes a ConfigError at the line of the key concerned.

    ``key_lines`` gives the lines of the top-level keys; nested mappings from the YAML loader
    carry their own."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise _config_error(err, model, data, where, key_lines) from None


def _config_error(
    err: ValidationError, model: type[BaseModel], data: Any, where: str, key_lines: dict[str, int]
) -> ConfigError:
    problems = err.errors()
    # A misspelt key also makes the right one "missing": name the misspelling, it is the cause.
    first = next((p for p in problems if p["type"] == "extra_forbidden"), problems[0])
    keys, owner, tag_of = _walk(model, first["loc"])
    line = _line(data, keys, key_lines)
    location = f"{where.split(':')[0]}:{line}" if line else where
    dotted = ".".join(keys)
    kind = first["type"]
    if kind == "extra_forbidden":
        allowed = _names(owner) if owner else []
        if len(keys) == 1:  # also the keys the project loader took first (write, checks ...)
            allowed = sorted({*allowed, *getattr(data, "handled_elsewhere", ())})
        return ConfigError(
            f'unknown option "{dotted}"',
            location=location,
            hint=did_you_mean(keys[-1], allowed) or ("options: " + ", ".join(allowed) if allowed else None),
        )
    if kind == "missing":
        return ConfigError(f'missing required option "{dotted}"', location=location)
    if kind in ("union_tag_invalid", "union_tag_not_found") and tag_of is not None:
        tags = _tags(tag_of)
        given = first.get("ctx", {}).get("tag")
        if given is None:
            return ConfigError(f'{dotted} needs a "type": one of {", ".join(tags)}', location=location)
        return ConfigError(
            f'unknown {dotted} type "{given}"',
            location=location,
            hint=did_you_mean(str(given), tags) or "types: " + ", ".join(tags),
        )
    message = first["msg"].removeprefix("Value error, ")
    return ConfigError(f"{dotted}: {message}" if dotted else message, location=location)


def _walk(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[list[str], Any, Any]:
    """Follow a pydantic error location through the models: the keys as written in the YAML,
    the model that owns the last key, and the discriminated union met last (for its tags)."""
    keys: list[str] = []
    current: Any = model
    union: Any = None
    for index, part in enumerate(loc):
        if isinstance(current, list):  # a discriminated union: this part is the tag
            current = next((m for m in current if str(part) in _tags([m])), None)
            continue
        keys.append(str(part))
        fields = {(f.alias or name): f for name, f in getattr(current, "model_fields", {}).items()}
        field = fields.get(str(part))
        owner = current
        current = _models_in(field.annotation) if field is not None else None
        if isinstance(current, list):
            union = current
        if current is None:
            if field is not None and get_origin(field.annotation) is dict and index + 1 < len(loc):
                keys.append(str(loc[index + 1]))  # the mapping's key, e.g. params.status
            return keys, owner, union
    return keys, current if not isinstance(current, list) else None, union


def _models_in(annotation: Any) -> Any:
    """The model an annotation holds, a list of models for a union of several, else None."""
    found = _all_models(annotation)
    return found[0] if len(found) == 1 else (found or None)


def _all_models(annotation: Any) -> list[type[BaseModel]]:
    if get_origin(annotation) is Annotated:
        return _all_models(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in _all_models(arg)]
    return [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def _tags(models: Any) -> list[str]:
    return [arg for m in models for arg in get_args(m.model_fields["type"].annotation)]


def _names(model: type[BaseModel]) -> list[str]:
    return [(f.alias or name) for name, f in model.model_fields.items()]


def _line(data: Any, keys: list[str], key_lines: dict[str, int]) -> int | None:
    """The line of the deepest key along ``keys`` that the YAML data has."""
    line = key_lines.get(keys[0]) if keys else None
    node = data.get(keys[0]) if keys and isinstance(data, dict) else None
    for key in keys[1:]:
        if not isinstance(node, dict):
            break
        line = getattr(node, "key_lines", {}).get(key, getattr(node, "line", None) or line)
        node = node.get(key)
    return line
