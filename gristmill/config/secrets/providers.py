"""Where a secret reference's value comes from: one small provider per scheme.

``${env:NAME}``, ``${file:path}``, ``${keyring:service/name}`` and ``${vault:mount/path#field}``
are built in; :func:`register_provider` adds another scheme. A provider returns the value or
raises :class:`SecretUnavailable` with a message that names the reference, never a value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol


class SecretUnavailable(Exception):
    """The provider could not produce the value; ``message`` and ``hint`` are shown to the user."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class SecretProvider(Protocol):
    scheme: str
    # Remote lookups (a keyring daemon, a Vault server) are cached for the run; env and files are
    # read each time since they are cheap and a test may change them.
    cacheable: bool

    def fetch(self, name: str, *, base: Path | None) -> str: ...


class EnvProvider:
    scheme: str = "env"
    cacheable: bool = False

    def fetch(self, name: str, *, base: Path | None) -> str:
        value = os.environ.get(name)
        if value is None:
            raise SecretUnavailable(
                f"environment variable {name} is not set",
                hint=f"export {name}=… before running, or change the reference ${{env:{name}}}",
            )
        return value


class FileProvider:
    scheme: str = "file"
    cacheable: bool = False

    def fetch(self, name: str, *, base: Path | None) -> str:
        path = Path(name) if base is None else base / name
        try:
            return path.read_text().strip()
        except OSError as err:
            raise SecretUnavailable(f"cannot read secret file {path}: {err.strerror}") from None


class KeyringProvider:
    """The OS keyring through the ``keyring`` package: whichever backend it picks (Secret Service,
    macOS Keychain, Windows Credential Locker) or the one ``PYTHON_KEYRING_BACKEND`` names."""

    scheme: str = "keyring"
    cacheable: bool = True

    def fetch(self, name: str, *, base: Path | None) -> str:
        import keyring  # imported on first use: finding a backend probes D-Bus and the like
        from keyring.errors import KeyringError

        service, sep, user = name.rpartition("/")
        if not sep or not service or not user:
            raise SecretUnavailable(
                f"keyring reference {name!r} is not service/name",
                hint="write ${keyring:SERVICE/NAME}, e.g. ${keyring:gristmill/warehouse}",
            )
        try:
            value = keyring.get_password(service, user)
        except KeyringError as err:
            raise SecretUnavailable(f"the OS keyring cannot be read: {type(err).__name__}") from None
        if value is None:
            raise SecretUnavailable(
                f"no keyring entry for service {service!r}, name {user!r}",
                hint=f"store it once: keyring set {service} {user}",
            )
        return value


PROVIDERS: dict[str, SecretProvider] = {}


def register_provider(provider: SecretProvider) -> None:
    """Make ``${<scheme>:…}`` resolve through ``provider`` (a later one replaces an earlier)."""
    PROVIDERS[provider.scheme] = provider


def known_schemes() -> list[str]:
    return sorted(PROVIDERS)
