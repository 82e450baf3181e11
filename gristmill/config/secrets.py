"""Secret references: config files hold ``${env:NAME}`` or ``${file:path}``, never the value.

Values are resolved only when a connector opens a connection, and every resolved value is
registered so that :func:`redact` can blank it out of any text we log, store or show.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

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


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"]+")
_KEYWORD_PASSWORD = re.compile(r"\bpassword\s*=\s*('[^']*'|\S+)", re.IGNORECASE)


def register_url_password(text: str) -> None:
    """A password written in a connection string (``postgresql://user:pw@host/db``, DuckLake's
    ``postgres:…`` catalog, libpq's ``password=pw``) is a secret like a resolved reference:
    :func:`redact` blanks it wherever it shows up, alone too (a driver's error message)."""
    if _REFERENCE.search(text):
        return
    found = [m.group(1).strip("'") for m in _KEYWORD_PASSWORD.finditer(text)]
    for url in _URL.findall(text):
        try:
            password = urlsplit(url).password or ""
        except ValueError:
            continue
        found += [password, unquote(password)]  # as written, and as the server is sent it
    for password in found:
        if password:
            _known_secrets.add(password)


def mask_url(text: str) -> str:
    """A connection string to show: each URL in it as ``user@host:port/path``, without password
    or query (which can hold one too); anything else only redacted."""

    def masked(match: re.Match[str]) -> str:
        try:
            parts = urlsplit(match.group(0))
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            return "***"
        user = f"{parts.username}@" if parts.username else ""
        # postgres:// says what the engine's name says already; s3:// and the like say more
        scheme = "" if parts.scheme in ("postgres", "postgresql") else f"{parts.scheme}://"
        return f"{scheme}{user}{parts.hostname or ''}{port}{parts.path}"

    return redact(_KEYWORD_PASSWORD.sub("password=***", _URL.sub(masked, text)))
