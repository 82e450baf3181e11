"""Turn pydantic validation errors into one readable ConfigError with file and line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gristmill._util.suggest import did_you_mean
from gristmill.errors import ConfigError


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    current: Any = model
    for part in loc[:-1]:
        field = getattr(current, "model_fields", {}).get(part) if isinstance(part, str) else None
        if field is None:
            return []
        annotation = field.annotation
        current = annotation if isinstance(annotation, type) else None
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


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
        raise _as_config_error(err, model, file, line_of, context) from None


def _as_config_error(
    err: ValidationError,
    model: type[BaseModel],
    file: str,
    line_of: Callable[[tuple[int | str, ...]], int | None],
    context: str,
) -> ConfigError:
    first = err.errors()[0]
    loc = tuple(part for part in first["loc"] if not (isinstance(part, str) and part.startswith("function-")))
    dotted = ".".join(str(p) for p in (*([context] if context else []), *loc))
    line = line_of(loc)
    where = f"{file}:{line}" if line else file
    hint = None
    if first["type"] == "extra_forbidden":
        message = f'unknown key "{dotted}"'
        hint = did_you_mean(str(loc[-1]), _allowed_keys(model, loc))
        allowed = _allowed_keys(model, loc)
        if hint is None and allowed:
            hint = "allowed keys: " + ", ".join(allowed)
    elif first["type"] == "missing":
        message = f'missing required key "{dotted}"'
    else:
        message = f"{dotted}: {first['msg']} (got {first.get('input')!r})" if dotted else first["msg"]
    more = len(err.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''} in this file)"
    return ConfigError(message, location=where, hint=hint)
