"""Secret references: config files hold ``${scheme:name}`` (``env``, ``file``, ``keyring``,
``vault``; docs/secrets.md), never the value.

Values are resolved only when a connector opens a connection, and every resolved value is
registered so that :func:`redact` can blank it out of any text we log, store or show.
"""

from gristmill._util.redaction import RedactingStream, install_log_redaction, redact, register
from gristmill.config.secrets.providers import (
    SecretProvider,
    SecretUnavailable,
    known_schemes,
    register_provider,
)
from gristmill.config.secrets.references import (
    REFERENCE,
    SecretRef,
    mask_url,
    register_url_password,
    resolve,
    set_cache_ttl,
)

__all__ = [
    "REFERENCE",
    "RedactingStream",
    "SecretProvider",
    "SecretRef",
    "SecretUnavailable",
    "install_log_redaction",
    "known_schemes",
    "mask_url",
    "redact",
    "register",
    "register_provider",
    "register_url_password",
    "resolve",
    "set_cache_ttl",
]
