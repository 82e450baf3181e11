"""Where backups live: a local folder or any fsspec URL (``s3://bucket/prefix``), and copying one
file into or out of it while hashing it, so a file is read once for both."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import fsspec

CHUNK = 4 * 1024 * 1024
"""Large reads: hashlib and file I/O release the GIL on buffers this size, so threads copy in parallel."""


class Place:
    """A folder, local or remote, addressed by paths relative to it (``/``-separated)."""

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        import fsspec

        self.url = url.rstrip("/")
        fs, path = fsspec.core.url_to_fs(self.url, **(options or {}))
        self.fs: fsspec.AbstractFileSystem = fs
        self.root: str = path.rstrip("/")
        self.local = "://" not in url or url.startswith("file://")

    def path(self, relative: str) -> str:
        return f"{self.root}/{relative}" if relative else self.root

    def child(self, name: str) -> Place:
        child = Place.__new__(Place)
        child.url, child.fs, child.local = f"{self.url}/{name}", self.fs, self.local
        child.root = self.path(name)
        return child

    def exists(self, relative: str) -> bool:
        return bool(self.fs.exists(self.path(relative)))

    def read_bytes(self, relative: str) -> bytes:
        data: bytes = self.fs.cat_file(self.path(relative))
        return data

    def write_bytes_atomically(self, relative: str, data: bytes) -> None:
        """Whole or absent: a local file is renamed into place; an object store's PUT is atomic."""
        target = self.path(relative)
        if self.local:
            temp = Path(target + ".partial")
            temp.parent.mkdir(parents=True, exist_ok=True)
            temp.write_bytes(data)
            temp.replace(target)
        else:
            self.fs.pipe_file(target, data)

    def listdir(self) -> list[str]:
        if not self.fs.exists(self.root):
            return []
        return sorted(Path(p).name for p in self.fs.ls(self.root, detail=False))


def copy_hashing(
    src_fs: fsspec.AbstractFileSystem, src: str, dst_fs: fsspec.AbstractFileSystem, dst: str
) -> tuple[int, str]:
    """Copy one file, returning its size and SHA-256 as read (what was written)."""
    digest = hashlib.sha256()
    size = 0
    parent = dst.rsplit("/", 1)[0]
    if parent:
        dst_fs.makedirs(parent, exist_ok=True)
    if _is_local(src_fs) and _is_local(dst_fs):
        return _copy_local(src, dst)
    with src_fs.open(src, "rb") as reader, dst_fs.open(dst, "wb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def hash_file(fs: fsspec.AbstractFileSystem, path: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with fs.open(path, "rb") as reader:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def _copy_local(src: str, dst: str) -> tuple[int, str]:
    """Unbuffered reads into one reused buffer (a buffered writer writes each chunk whole): on
    local disks fsspec's file layer cost more than the copy itself (measured with bench/backup)."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(src, "rb", buffering=0) as reader, open(dst, "wb") as writer:
        while read := reader.readinto(view):
            chunk = view[:read]
            digest.update(chunk)
            writer.write(chunk)
            size += read
    return size, digest.hexdigest()
