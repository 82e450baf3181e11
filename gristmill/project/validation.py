"""Turn pydantic validation errors into one readable ConfigError with file and line."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from gristmill._util.suggest import did_you_mean
from gristmill.config.secrets import mask_url
from gristmill.errors import ConfigError


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys the mapping at ``loc[:-1]`` may hold, following nested models through
    ``Optional``, ``dict[str, Model]`` (``[schedules.nightly]``) and lists of models."""
    current: Any = model
    skip = False
    for part in loc[:-1]:
        if skip:  # a key of a dict or an index of a list: the model stays the same
            skip = False
            continue
        field = getattr(current, "model_fields", {}).get(part) if isinstance(part, str) else None
        if field is None:
            return []
        current, skip = _model_in(field.annotation)
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def _model_in(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model an annotation holds, and whether a key or index comes before its fields."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = get_origin(annotation)
    if origin in (dict, list, tuple):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        found, _ = _model_in(args[-1]) if args else (None, False)
        return found, found is not None
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            found, skip = _model_in(arg)
            if found is not None:
                return found, skip
    return None, False


def _as_written(loc: tuple[int | str, ...], data: Any) -> tuple[int | str, ...]:
    """The error's path as keys the user wrote: pydantic also names validator functions and the
    members of a union it tried (``incremental._IncrementalDecl.cursr``)."""
    kept: list[int | str] = []
    node = data
    for index, part in enumerate(loc):
        if isinstance(part, str) and part.startswith("function-"):
            continue
        last = index == len(loc) - 1
        if isinstance(node, dict) and (part in node or last):
            kept.append(part)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            kept.append(part)
            node = node[part]
        elif data is None or not isinstance(node, dict | list):
            kept.append(part)  # nothing to compare with: keep pydantic's path
    return tuple(kept)


def _misspelt_instead(missing: Any, data: Any) -> Any:
    """For a required key that is missing beside a key that is not one (a model that lets
    unknown keys through to a connector): the misspelt key, as an ``extra_forbidden`` problem."""
    loc = tuple(missing["loc"])
    node = data
    for part in loc[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return None
    wanted = str(loc[-1])
    for key in node:
        if did_you_mean(str(key), [wanted]) is not None:
            return {**missing, "type": "extra_forbidden", "loc": (*loc[:-1], key)}
    return None


M = TypeVar("M", bound=BaseModel)


def validated(
    model: type[M],
    data: Any,
    *,
    file: str,
    line_of: Callable[[tuple[int | str, ...]], int | None],
    context: str = "",
) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise _as_config_error(err, model, file, line_of, context, data) from None


def _as_config_error(
    err: ValidationError,
    model: type[BaseModel],
    file: str,
    line_of: Callable[[tuple[int | str, ...]], int | None],
    context: str,
    data: Any = None,
) -> ConfigError:
    problems = err.errors()
    # A misspelt key also makes the right one "missing": name the misspelling, it is the cause.
    first = next((p for p in problems if p["type"] == "extra_forbidden"), problems[0])
    explained: set[tuple[int | str, ...]] = set()
    if first["type"] == "missing" and (typo := _misspelt_instead(first, data)) is not None:
        explained.add(_as_written(first["loc"], data)[:1])  # the missing key is the typo's
        first = typo
    loc = _as_written(first["loc"], data)
    dotted = ".".join(str(p) for p in (*([context] if context else []), *loc))
    line = line_of(loc)
    where = f"{file}:{line}" if line else file
    hint = None
    if first["type"] == "extra_forbidden":
        message = f'unknown key "{dotted}"'
        allowed = _allowed_keys(model, loc)
        hint = did_you_mean(str(loc[-1]), allowed)
        if hint is None and allowed:
            hint = "allowed keys: " + ", ".join(allowed)
    elif first["type"] == "missing":
        message = f'missing required key "{dotted}"'
    else:
        said = str(first["msg"]).removeprefix("Value error, ")  # pydantic's prefix for a validator's
        message = f"{dotted}: {said}{_got(first.get('input'))}" if dotted else said
    # A union reports each of its members' complaints about one value: count that value once.
    more = len({_as_written(p["loc"], data)[:1] for p in problems} - {loc[:1]} - explained)
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''} in this file)"
    return ConfigError(message, location=where, hint=hint)


def _got(value: Any) -> str:
    """The value an error is about, as the user wrote it, but never a whole table (the error
    says what in it is wrong) nor a connection string's password (it is not yet registered as a
    secret when the file is read)."""
    if isinstance(value, dict | list | tuple):
        return ""
    return f" (got {mask_url(value)!r})" if isinstance(value, str) else f" (got {value!r})"
