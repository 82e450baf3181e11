"""API keys for ``gristmill serve`` (``gristmill keys create/list/revoke``), and the check the
server runs on every request.

A key reads ``gmk_<id>_<secret>``: the prefix makes a leaked key easy to recognise (and to scan
for), the id finds its row, the secret is 256 random bits. Since the secret is that random, a
salted HMAC-SHA256 is the right digest to keep: a slow password hash (bcrypt, argon2) protects
guessable secrets and would cost milliseconds on every request for nothing. The key itself is
returned once, by ``create``, and kept nowhere."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gristmill.config.targets import choose
from gristmill.errors import ConfigError, GristmillError, KeyRefused
from gristmill.project.definition import find_root
from gristmill.project.settings_file import load_settings
from gristmill.state import open_history
from gristmill.state.history import KeyRecord, StoredKey
from gristmill.state.history.schema import now

PREFIX = "gmk_"
_ID_CHARS = 12
_KEY = re.compile(rf"^{PREFIX}(?P<id>[0-9a-f]{{{_ID_CHARS}}})_(?P<secret>[A-Za-z0-9_-]{{20,200}})$")
_SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$", re.I)
_PER = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


@dataclass(frozen=True)
class CreatedKey:
    """A new key: ``token`` is the key to hand over, shown this once; ``record`` what is kept."""

    token: str
    record: KeyRecord


def parse_rate(text: str) -> tuple[float, float]:
    """``50/s``, ``3000/min``, ``100/h`` -> (requests per second, bucket size). The bucket holds
    one second's worth (at least one request), so a client may burst that far, never more."""
    match = _RATE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(
            f'--rate "{text}": not a rate', hint="write COUNT/UNIT, e.g. 50/s, 3000/min or 100/h"
        )
    per_second = float(match.group(1)) / _PER[match.group(2).lower()]
    return per_second, max(1.0, per_second)


def _digest(salt: str, secret: str) -> str:
    return hmac.new(bytes.fromhex(salt), secret.encode(), hashlib.sha256).hexdigest()


def key_state(record: KeyRecord, at: datetime | None = None) -> str:
    """active, expired or revoked."""
    if record.revoked_at:
        return "revoked"
    if record.expires_at and datetime.fromisoformat(record.expires_at) <= (at or datetime.now(UTC)):
        return "expired"
    return "active"


class ApiKeys:
    """The project's API keys, in its run history (the target's state: each target has its own)."""

    def __init__(self, state_path: Path) -> None:
        self._history = open_history(state_path)

    @classmethod
    def for_project(cls, start: Path | str = ".", target: str | None = None) -> ApiKeys:
        """The keys of the project at or above ``start`` (reads only gristmill.toml)."""
        root = find_root(Path(start))
        settings = choose(load_settings(root), target)
        state = Path(settings.storage.state)
        return cls(state if state.is_absolute() else (root / state).resolve())

    def close(self) -> None:
        self._history.close()

    def create(
        self,
        name: str | None = None,
        *,
        expires: timedelta | None = None,
        schemas: tuple[str, ...] = (),
        rate: str | None = None,
    ) -> CreatedKey:
        for schema in schemas:
            if not _SCHEMA.match(schema):
                raise ConfigError(
                    f'--schemas: "{schema}" is not a schema name', hint="e.g. --schemas marts,sales"
                )
        per_second, burst = parse_rate(rate) if rate else (None, None)
        key_id, secret, salt = (
            secrets.token_hex(_ID_CHARS // 2),
            secrets.token_urlsafe(32),
            secrets.token_hex(16),
        )
        created = datetime.now(UTC)
        ends = (created + expires).isoformat(timespec="seconds") if expires else None
        record = KeyRecord(
            key_id, name or f"key-{key_id}", tuple(schemas), per_second, burst, now(), ends, None
        )
        self._history.api_keys.add(StoredKey(record, salt, _digest(salt, secret)))
        return CreatedKey(f"{PREFIX}{key_id}_{secret}", record)

    def listing(self) -> list[KeyRecord]:
        return self._history.api_keys.listing()

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoke by id (``gmk_<id>``, the id alone, or the whole key): refused from the next request."""
        wanted = key_id.removeprefix(PREFIX).split("_", 1)[0]
        record = self._history.api_keys.revoke(wanted)
        if record is None:
            raise GristmillError(f"no API key with id {wanted}", hint="`gristmill keys list` shows the ids")
        return record

    def check(self, token: str) -> KeyRecord:
        """The key's record if ``token`` is a live key; else ``KeyRefused`` saying why, in words
        that never repeat the secret (the id, public, is named)."""
        match = _KEY.match(token)
        if match is None:
            raise KeyRefused(f"not a Gristmill API key (they read {PREFIX}<id>_<secret>)")
        stored = self._history.api_keys.get(match["id"])
        if stored is None or not hmac.compare_digest(stored.digest, _digest(stored.salt, match["secret"])):
            raise KeyRefused(f"unknown API key {PREFIX}{match['id']}")
        state = key_state(stored.record)
        if state != "active":
            raise KeyRefused(f"API key {PREFIX}{match['id']} is {state}")
        return stored.record
