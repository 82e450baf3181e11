"""Options of a ``kind: files`` source (top level) and of each of its tables."""

from __future__ import annotations

from typing import Any, Literal

from gristmill.connectors.base import Options

Format = Literal["csv", "json", "ndjson", "parquet"]
EXTENSION_FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class FilesSourceOptions(Options):
    path: str | None = None
    """Default file or glob for every table, relative to the project folder."""
    format: Format | None = None
    """Default format; otherwise taken from the file extension."""


class FilesTableOptions(Options):
    path: str | None = None
    format: Format | None = None
    records: str | None = None
    """For a JSON document: the top-level key whose list holds the records (e.g. ``Invoice``)."""
    columns: list[str] | None = None
    """Land only these source columns."""
    options: dict[str, Any] = {}
    """Passed to DuckDB's reader as is, e.g. ``{delim: ";", header: true}``."""
