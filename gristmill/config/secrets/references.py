"""Resolving ``${scheme:name}`` references through the provider registry, with a per-run cache."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from gristmill._util.redaction import redact, register
from gristmill.config.secrets.providers import (
    PROVIDERS,
    EnvProvider,
    FileProvider,
    KeyringProvider,
    SecretUnavailable,
    known_schemes,
    register_provider,
)
from gristmill.config.secrets.vault import VaultProvider
from gristmill.errors import ConfigError

for _provider in (EnvProvider(), FileProvider(), KeyringProvider(), VaultProvider()):
    register_provider(_provider)

# Any lower-case scheme is a reference, so a typo (``${evn:X}``) is an error naming the known
# schemes rather than text passed through; shell's ``${VAR:-default}`` is upper case and is not.
REFERENCE = re.compile(r"\$\{([a-z][a-z0-9-]*):([^}]+)\}")
_REFERENCE = REFERENCE


@dataclass(frozen=True)
class SecretRef:
    kind: str
    name: str

    def __str__(self) -> str:
        return f"${{{self.kind}:{self.name}}}"


class _Cache:
    """Values of cacheable providers for ``ttl`` seconds, so one run asks Vault once per secret.
    Held in this process only: never written anywhere."""

    def __init__(self) -> None:
        self.ttl = 300.0
        self._values: dict[SecretRef, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get(self, ref: SecretRef) -> str | None:
        with self._lock:
            hit = self._values.get(ref)
            if hit is None or time.monotonic() - hit[0] >= self.ttl:
                return None
            return hit[1]

    def put(self, ref: SecretRef, value: str) -> None:
        if self.ttl > 0:
            with self._lock:
                self._values[ref] = (time.monotonic(), value)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


_cache = _Cache()


def set_cache_ttl(seconds: float) -> None:
    """How long a keyring or Vault value is reused; 0 asks the provider every time. Clears the cache."""
    _cache.ttl = seconds
    _cache.clear()


def _lookup(ref: SecretRef, base: Path | None, where: str | None) -> str:
    provider = PROVIDERS.get(ref.kind)
    if provider is None:
        raise ConfigError(
            f"unknown secret provider {ref.kind!r} in {ref}",
            location=where,
            hint=f"known providers: {', '.join(known_schemes())} (docs/secrets.md)",
        )
    cached = _cache.get(ref) if provider.cacheable else None
    if cached is not None:
        return cached
    try:
        value = provider.fetch(ref.name, base=base)
    except SecretUnavailable as err:
        raise ConfigError(err.message, location=where, hint=err.hint) from None
    if provider.cacheable:
        _cache.put(ref, value)
    return value


def resolve(text: str, *, base: Path | None = None, where: str | None = None) -> str:
    """Replace every reference in ``text`` with its value, remembering values for redaction.
    ``where`` (``file:line`` of the reference) goes into any error."""

    def _value(match: re.Match[str]) -> str:
        value = _lookup(SecretRef(match.group(1), match.group(2).strip()), base, where)
        register(value)
        return value

    return REFERENCE.sub(_value, text)


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
        register(password)


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
