"""The API keys `gristmill serve` accepts: who they are for, what they may read, how fast, until when.

Only a salted digest of each key's secret is stored (the workspace makes and checks it, see
workspace/keys.py); a key is found by its public id, so checking one is a primary-key read. The
server reads a key on every request, so a revocation takes effect at the next request."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from gristmill.state.history.schema import Domain, locked, now


@dataclass(frozen=True)
class KeyRecord:
    """One key as stored, without its secret. ``schemas`` empty: every schema; ``rate`` None: the
    server's default (requests per second, ``burst`` the bucket's size)."""

    key_id: str
    name: str
    schemas: tuple[str, ...]
    rate: float | None
    burst: float | None
    created_at: str
    expires_at: str | None
    revoked_at: str | None


@dataclass(frozen=True)
class StoredKey:
    """A key with the salt and digest its secret is checked against."""

    record: KeyRecord
    salt: str
    digest: str


class ApiKeys(Protocol):
    def add(self, key: StoredKey) -> None: ...

    def get(self, key_id: str) -> StoredKey | None: ...

    def listing(self) -> list[KeyRecord]:
        """Every key, revoked and expired ones included, in the order they were created."""
        ...

    def revoke(self, key_id: str) -> KeyRecord | None:
        """Mark the key revoked (kept, for the listing); None when there is no such key."""
        ...


_COLUMNS = "key_id, name, schemas, rate, burst, created_at, expires_at, revoked_at, salt, digest"


def _stored(row: tuple[object, ...]) -> StoredKey:
    key_id, name, schemas, rate, burst, created, expires, revoked, salt, digest = row
    record = KeyRecord(
        str(key_id),
        str(name),
        tuple(json.loads(str(schemas))),
        None if rate is None else float(str(rate)),
        None if burst is None else float(str(burst)),
        str(created),
        None if expires is None else str(expires),
        None if revoked is None else str(revoked),
    )
    return StoredKey(record, str(salt), str(digest))


class SQLiteApiKeys(Domain):
    @locked
    def add(self, key: StoredKey) -> None:
        r = key.record
        self.db.execute(
            f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                *(r.key_id, r.name, json.dumps(list(r.schemas)), r.rate, r.burst, r.created_at),
                *(r.expires_at, r.revoked_at, key.salt, key.digest),
            ),
        )

    @locked
    def get(self, key_id: str) -> StoredKey | None:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        return _stored(row) if row else None

    @locked
    def listing(self) -> list[KeyRecord]:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY rowid").fetchall()
        return [_stored(row).record for row in rows]

    @locked
    def revoke(self, key_id: str) -> KeyRecord | None:
        self.db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (now(), key_id)
        )
        found = self.get(key_id)
        return found.record if found else None
