"""Find the files a source reads: local paths and globs, or any fsspec URL (s3://, gs://, …),
with a marker that changes when any of them does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gristmill.config.secrets import redact, resolve
from gristmill.errors import SourceError

if TYPE_CHECKING:  # fsspec is imported only when a table reads a URL
    import fsspec

_GLOB = set("*?[")


@dataclass(frozen=True)
class FoundFile:
    url: str
    """What DuckDB reads: a local path, or ``protocol://bucket/key``."""
    shown: str
    """How messages name it: relative to the project when local."""
    size: int
    modified: datetime

    @property
    def suffixes(self) -> list[str]:
        return [s.lower() for s in Path(self.url.rsplit("/", 1)[-1]).suffixes]


def open_filesystem(protocol: str, options: dict[str, Any], base: Path) -> fsspec.AbstractFileSystem:
    """An fsspec filesystem with secret references in its options resolved."""
    import fsspec

    resolved = {k: resolve(v, base=base) if isinstance(v, str) else v for k, v in options.items()}
    try:
        return fsspec.filesystem(protocol, **resolved)
    except (ImportError, ValueError, TypeError) as err:
        raise SourceError(
            f"cannot open {protocol}:// storage: {redact(str(err))}",
            hint="check the source's storage options",
        ) from None


def find(pattern: str, root: Path, fs: fsspec.AbstractFileSystem | None, where: str) -> list[FoundFile]:
    if fs is None:
        return _local(pattern, root, where)
    protocol = pattern.split("://", 1)[0]
    try:
        paths = sorted(fs.glob(pattern)) if _GLOB & set(pattern) else [pattern.split("://", 1)[1]]
        infos = [fs.info(p) for p in paths]
    except FileNotFoundError:
        infos = []
    except Exception as err:  # any storage backend's error becomes one clear message
        raise SourceError(
            f"{where}: cannot list {pattern}: {redact(str(err))}",
            hint="check the path and the storage credentials",
        ) from None
    if not infos:
        raise SourceError(f"{where}: no file matches {pattern}", hint="check the path and bucket")
    return [
        FoundFile(
            f"{protocol}://{info['name']}",
            f"{protocol}://{info['name']}",
            int(info.get("size") or 0),
            _modified(info),
        )
        for info in infos
    ]


def _modified(info: dict[str, Any]) -> datetime:
    value = info.get("LastModified") or info.get("mtime") or info.get("updated") or info.get("last_modified")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return datetime.fromtimestamp(0, UTC)


def _local(pattern: str, root: Path, where: str) -> list[FoundFile]:
    path = Path(pattern)
    base = path if path.is_absolute() else root / path
    if _GLOB & set(pattern):
        anchor = Path(base.anchor)
        found = sorted(p for p in anchor.glob(str(base.relative_to(anchor))) if p.is_file())
    else:
        found = [base] if base.is_file() else []
    if not found:
        raise SourceError(
            f"{where}: no file matches {pattern} (looked in {base.parent})",
            hint="check the path; it is relative to the project folder",
        )
    files = []
    for p in found:
        stat = p.stat()
        shown = p.relative_to(root).as_posix() if p.is_relative_to(root) else p.as_posix()
        files.append(
            FoundFile(p.as_posix(), shown, stat.st_size, datetime.fromtimestamp(stat.st_mtime_ns / 1e9, UTC))
        )
    return files


def marker(files: list[FoundFile]) -> str:
    return "|".join(f"{f.url}:{f.size}:{f.modified.isoformat()}" for f in files)
