"""Choosing a target: ``--target``, else ``GRISTMILL_TARGET``, else the default named in
``gristmill.toml``. The choice gives the effective settings (that target's engine and storage)
once, so everything downstream reads ``settings.engine`` and ``settings.storage`` as before."""

from __future__ import annotations

import os
from collections.abc import Mapping

from gristmill.config.secrets import mask_url, register_url_password, resolve
from gristmill.config.settings import ProjectSettings
from gristmill.errors import ConfigError

TARGET_ENV = "GRISTMILL_TARGET"


def choose(
    settings: ProjectSettings, flag: str | None = None, environ: Mapping[str, str] = os.environ
) -> ProjectSettings:
    """The settings for the target ``flag`` names (else ``GRISTMILL_TARGET``, else the default).

    A project without ``[targets]`` runs on ``[engine]``/``[storage]`` as it always has: a flag
    is refused there, and the environment variable (set for other projects) left unread."""
    engine = settings.engine
    declared = [engine.url, engine.metastore, engine.ledger, settings.storage.catalog, settings.storage.data]
    for target in settings.targets.values():
        declared += [target.url, target.metastore, target.ledger]
        declared += (target.storage.catalog, target.storage.data) if target.storage else ()
    for text in declared:
        if text:
            register_url_password(text)
    if not settings.targets:
        if flag:
            raise ConfigError(
                f"--target {flag}: gristmill.toml declares no targets (it runs on [engine] and [storage])",
                location="gristmill.toml",
                hint=f"declare [targets.{flag}] (see docs/engines.md, Targets)",
            )
        return settings
    given, where = (flag, "--target") if flag else (environ.get(TARGET_ENV) or None, TARGET_ENV)
    name = given or settings.target or next(iter(settings.targets))
    if name not in settings.targets:
        raise ConfigError(
            f"{where} {name}: no such target; gristmill.toml declares {', '.join(sorted(settings.targets))}",
            location="gristmill.toml",
            hint=f"declare [targets.{name}], or choose one of those",
        )
    target = settings.targets[name]
    return settings.model_copy(
        update={"engine": target.engine_settings(), "storage": target.storage_settings(name), "target": name}
    )


def describe(settings: ProjectSettings) -> str | None:
    """``target prod (postgres user@host:5432/db)`` for chosen settings, passwords masked; None
    for a project without targets."""
    if settings.target is None:
        return None
    engine = settings.engine
    if engine.url:
        try:
            url = resolve(engine.url)
        except ConfigError:  # a reference not set here: show the reference, not an error
            url = engine.url
        register_url_password(url)
        where = mask_url(url)
    else:
        storage = settings.storage
        where = mask_url(storage.database if storage.format == "duckdb" else storage.catalog)
    return f"target {settings.target} ({engine.kind} {where})"
