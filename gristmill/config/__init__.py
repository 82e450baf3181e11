"""Project settings (``gristmill.toml``) and secret references: pure data, validated by pydantic."""

from gristmill.config.secrets import SecretRef, redact, resolve
from gristmill.config.settings import (
    EngineSettings,
    ModelDefaults,
    ProjectSettings,
    StorageSettings,
    TargetSettings,
)

__all__ = [
    "EngineSettings",
    "ModelDefaults",
    "ProjectSettings",
    "SecretRef",
    "StorageSettings",
    "TargetSettings",
    "redact",
    "resolve",
]
