"""Secret references: config files hold ``${env:NAME}`` or ``${file:path}``, never the value.

Values are resolved only when a connector opens a connection, and every resolved value is
registered so that :func:`redact` can blank it out of any text we log, store or show.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gristmill.errors import ConfigError

_REFERENCE = re.compile(r"\$\{(env|file):([^}]+)\}")
_known_secrets: set[str] = set()


@dataclass(frozen=True)
class SecretRef:
    kind: str
    name: str

    def __str__(self) -> str:
        return f"${{{self.kind}:{self.name}}}"


def resolve(text: str, *, base: Path | None = None, where: str | None = None) -> str:
    """Replace every reference in ``text`` with its value, remembering values for redaction."""

    def _value(match: re.Match[str]) -> str:
        ref = SecretRef(match.group(1), match.group(2).strip())
        if ref.kind == "env":
            value = os.environ.get(ref.name)
            if value is None:
                raise ConfigError(
                    f"environment variable {ref.name} is not set",
                    location=where,
                    hint=f"export {ref.name}=… before running, or change the reference {ref}",
                )
        else:
            path = Path(ref.name) if base is None else base / ref.name
            try:
                value = path.read_text().strip()
            except OSError as err:
                raise ConfigError(f"cannot read secret file {path}: {err.strerror}", location=where) from None
        if value:
            _known_secrets.add(value)
        return value

    return _REFERENCE.sub(_value, text)


def register(value: str) -> None:
    """Remember a secret that did not come from a reference (an access token a connector obtained)."""
    if value:
        _known_secrets.add(value)


def redact(text: str) -> str:
    """Blank out every secret value resolved so far, longest first."""
    for secret in sorted(_known_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def register_url_password(url: str) -> None:
    """A password written in a URL (``postgresql://user:pw@host/db``) is a secret like a resolved
    reference: :func:`redact` blanks it wherever it shows up alone (a driver's error message)."""
    if _REFERENCE.search(url) or "://" not in url:
        return
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password:
        _known_secrets.add(password)


def mask_url(url: str) -> str:
    """A URL to show: ``user@host:port/path``, without scheme, password or query (which can hold
    one too). Text that is no URL is only redacted."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return redact(url)
    if not parts.scheme or not (host or parts.path):
        return redact(url)
    user = f"{parts.username}@" if parts.username else ""
    return redact(f"{user}{host}{port}{parts.path}")
