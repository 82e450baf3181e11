"""The manifest: what makes a backup complete. Written last (and atomically), it names every
file with its size and SHA-256; a backup without one, or whose files differ from it, is refused."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from gristmill.errors import GristmillError
from gristmill.runtime.backup.places import Place

FORMAT = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class FileEntry:
    path: str
    """Relative to the backup: ``catalog.sqlite``, ``state.sqlite`` or ``lake/<file in the lake>``."""
    size: int
    sha256: str


@dataclass(frozen=True)
class BackupInfo:
    """One backup: ``complete`` when its manifest is there (``files`` then lists every file)."""

    name: str
    url: str
    complete: bool
    project: str = ""
    storage: str = ""
    snapshot: int | None = None
    created_at: str = ""
    files: tuple[FileEntry, ...] = field(default=())

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> bytes:
        document = {
            "format": FORMAT,
            "project": self.project,
            "storage": self.storage,
            "snapshot": self.snapshot,
            "created_at": self.created_at,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
        }
        return json.dumps(document, indent=1).encode()


def read_manifest(place: Place, name: str) -> BackupInfo:
    """The backup at ``place``; refused with the reason when it is incomplete or unreadable."""
    if not place.exists(MANIFEST):
        raise GristmillError(
            f"{place.url} is not a complete backup: it has no {MANIFEST}",
            hint="the backup was interrupted (or this is not a backup folder); take a new one, "
            "`gristmill backups list` shows the complete ones",
        )
    try:
        document = json.loads(place.read_bytes(MANIFEST))
        if document["format"] != FORMAT:
            raise GristmillError(
                f"{place.url}: backup format {document['format']}, this version reads {FORMAT}"
            )
        files = tuple(FileEntry(f["path"], int(f["size"]), str(f["sha256"])) for f in document["files"])
        return BackupInfo(
            name=name,
            url=place.url,
            complete=True,
            project=str(document["project"]),
            storage=str(document["storage"]),
            snapshot=document["snapshot"],
            created_at=str(document["created_at"]),
            files=files,
        )
    except (ValueError, KeyError, TypeError) as err:
        raise GristmillError(f"{place.url}/{MANIFEST} is damaged: {err}") from None


def list_backups(url: str, options: dict[str, object] | None = None) -> list[BackupInfo]:
    """The backups in the folder ``url``, oldest first; interrupted ones as incomplete."""
    parent = Place(url, options)
    found = []
    for name in parent.listdir():
        child = parent.child(name)
        if child.exists(MANIFEST):
            found.append(read_manifest(child, name))
        elif child.exists("catalog.sqlite") or child.exists("database.duckdb"):
            found.append(BackupInfo(name=name, url=child.url, complete=False))
    return found
